package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// managerBuild is the manager binary built for this test process, and its folder.
var managerBuild struct {
	once        sync.Once
	dir, binary string
	err         error
}

// ManagerBinaryEnv names a manager binary built before the tests: make test builds cmd/manager
// once for every package of the run (a go test of its own builds per package: each test
// binary is its own process).
const ManagerBinaryEnv = "DLCSYNC_TEST_MANAGER_BINARY"

// ManagerBinary returns the binary ManagerBinaryEnv names, or builds cmd/manager once per test
// process; RemoveManagerBinary (from TestMain) deletes what it built.
func ManagerBinary() (string, error) {
	managerBuild.once.Do(func() {
		if prebuilt := os.Getenv(ManagerBinaryEnv); prebuilt != "" {
			if _, err := os.Stat(prebuilt); err != nil {
				managerBuild.err = fmt.Errorf("%s: %w", ManagerBinaryEnv, err)
				return
			}
			managerBuild.binary = prebuilt
			return
		}
		if managerBuild.dir, managerBuild.err = os.MkdirTemp("", "dlcsync-manager-"); managerBuild.err != nil {
			return
		}
		binary := filepath.Join(managerBuild.dir, "manager")
		build := exec.Command("go", "build", "-o", binary, "./cmd/manager")
		build.Dir = RepoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			managerBuild.err = fmt.Errorf("building the manager: %w: %s", err, out)
			return
		}
		managerBuild.binary = binary
	})
	return managerBuild.binary, managerBuild.err
}

// RunRemovingManagerBinary is the TestMain body of a package whose tests run the manager binary:
// it runs the tests, then deletes the binary, and returns the exit code.
func RunRemovingManagerBinary(m *testing.M) int {
	code := m.Run()
	RemoveManagerBinary()
	return code
}

// RemoveManagerBinary deletes the binary ManagerBinary built, if any.
func RemoveManagerBinary() {
	if managerBuild.dir != "" {
		_ = os.RemoveAll(managerBuild.dir)
	}
}

// StartManager runs the manager binary against env as the chart's Deployment does: its own
// kubeconfig user, the simulators' loopback origin allowed the way an administrator would, the
// given environment (e.g. DLCSYNC_MEMORY_LIMIT) and flags. It is stopped with the test, its log
// shown when the test failed.
func StartManager(t testing.TB, env *envtest.Environment, environ []string, args ...string) *Process {
	t.Helper()
	binary, err := ManagerBinary()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(ManagerBinaryEnv) != "" {
		// Said, so that a binary older than the code under test is noticed.
		t.Logf("running the manager binary %s (%s)", binary, ManagerBinaryEnv)
	}
	kubeconfigPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := WriteKubeconfig(env, "dlcsync-manager", kubeconfigPath); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{"--health-probe-bind-address", "0", "--allowed-endpoints", LoopbackEndpoints}, args...)...)
	cmd.Env = ManagerEnv(append([]string{"KUBECONFIG=" + kubeconfigPath}, environ...)...)
	return RunProcess(t, "manager", cmd, managerStopGrace, false)
}

// managerStopGrace is the manager's time to stop before it is killed.
const managerStopGrace = 20 * time.Second

// StopManager stops a manager StartManager started (again: a no-op), showing its log when the
// test failed.
func StopManager(t testing.TB, p *Process) { StopProcess(t, "manager", p, managerStopGrace, false) }
