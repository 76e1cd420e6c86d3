package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dlcsync/dlcsync/internal/testenv"
)

func freePort(t *testing.T) int {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestTheManagerBinaryStartsAndServesProbes builds the manager, runs it against a real
// kube-apiserver with --kubeconfig, and checks /healthz and /readyz.
func TestTheManagerBinaryStartsAndServesProbes(t *testing.T) {
	env, _, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	dir := t.TempDir()
	if err := testenv.WriteKubeconfig(env, "manager", filepath.Join(dir, "kubeconfig")); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "manager")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the manager: %v\n%s", err, out)
	}

	probe := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--kubeconfig", filepath.Join(dir, "kubeconfig"),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probe), "--metrics-bind-address=0",
		"--ambient-credentials-namespaces=dlcsync-system", "--max-concurrent-syncs=2", "--zap-log-level=info")
	logs, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(dir, "manager.log"))
			t.Logf("manager log:\n%s", out)
		}
	}()

	for _, path := range []string{"/healthz", "/readyz"} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", probe, path))
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not answer 200 within 30s (last error %v)", path, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// The JobQuery controller is registered and its workers start.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := os.ReadFile(filepath.Join(dir, "manager.log"))
		if strings.Contains(string(out), `"msg":"Starting workers","controller":"jobquery"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the jobquery controller did not start its workers")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAnInvalidWatchLabelSelectorStopsTheManagerAtStart: a selector that does not parse ends the
// manager before it connects anywhere (no kubeconfig is given), with exit code 1 and a log line
// naming the flag and the selector, rather than a manager that syncs no JobQuery at all.
func TestAnInvalidWatchLabelSelectorStopsTheManagerAtStart(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "manager")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the manager: %v\n%s", err, out)
	}
	for _, selector := range []string{"sharding.dlcsync.io/key in (shard1", "!", "sharding.dlcsync.io/key shard1"} {
		cmd := exec.Command(bin, "--watch-label-selector", selector, "--health-probe-bind-address=0")
		cmd.Env = append(os.Environ(), "KUBECONFIG=/nonexistent")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("selector %q: want exit code 1, got %v\n%s", selector, err, out)
		}
		for _, want := range []string{"Invalid --watch-label-selector", fmt.Sprintf("%q", selector)} {
			if !strings.Contains(string(out), strings.Trim(fmt.Sprintf("%q", want), `"`)) {
				t.Errorf("selector %q: the log does not say %s:\n%s", selector, want, out)
			}
		}
	}
}

// TestReleasesShardedByNamespaceElectApartFromEachOther: the binary names its lease after its
// shard, --watch-namespaces included, so two releases sharded by namespace whose leases live in
// one namespace do not elect one leader between them and leave the other's queries unsynced
// (issue 23, finding 6). Read from the binary's own start line, which names the lease.
func TestReleasesShardedByNamespaceElectApartFromEachOther(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "manager")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the manager: %v\n%s", err, out)
	}
	env, _, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := testenv.WriteKubeconfig(env, "manager", kubeconfig); err != nil {
		t.Fatal(err)
	}
	leaseOf := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig, "--health-probe-bind-address=0",
			"--metrics-bind-address=0"}, args...)...)
		var out testenv.LockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		for ctx.Err() == nil {
			if _, rest, ok := strings.Cut(out.String(), `"leaderElectionID":"`); ok {
				if id, _, ok := strings.Cut(rest, `"`); ok {
					return id
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%v: no start line naming the lease:\n%s", args, out.String())
		return ""
	}
	all, teamA, teamB := leaseOf(), leaseOf("--watch-namespaces=team-a"), leaseOf("--watch-namespaces=team-b")
	if all != "dlcsync.dlcsync.io" || teamA == all || teamB == all || teamA == teamB {
		t.Errorf("leases: every namespace %q, team-a %q, team-b %q; want the base name and two of their own", all, teamA, teamB)
	}
}
