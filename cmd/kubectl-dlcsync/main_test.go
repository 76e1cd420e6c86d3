package main

// Integration tests: the cobra commands run in-process against a real kube-apiserver and etcd
// (envtest) through a kubeconfig written for it, with the real dlcsync manager syncing from the
// simulator on loopback, as a user's cluster would.

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/controllers"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

var (
	kubeconfig string
	k8s        client.Client
	sim        *dlcsim.Server
	simURL     string
	testCtx    context.Context
	nsSeq      atomic.Int32
	simAdmin   = dlcsim.Identity{AccessKeyID: "cli-admin", AccessKeySecret: "cli-admin-secret", UserID: "1001", Username: "admin", Admin: true}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	env, cfg, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()

	sim = dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{simAdmin}, Seed: 14})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	simURL = srv.URL

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testCtx = ctx
	if err := startManager(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if kubeconfig, err = writeKubeconfig(env); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(filepath.Dir(kubeconfig)) }()
	if k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startManager runs the real JobQuery controller, allowed to call the simulator on loopback as an
// administrator would allow it with --allowed-endpoints.
func startManager(ctx context.Context, cfg *rest.Config) error {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: testenv.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: controllers.CacheOptions(nil)})
	if err != nil {
		return err
	}
	if _, err := controllers.Setup(ctx, mgr, controllers.Options{AllowedEndpoints: testenv.LoopbackEndpoints,
		DLCQPS: 1000, DLCBurst: 1000}); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return nil
}

// writeKubeconfig writes a kubeconfig for a user of the envtest apiserver, as a user's own
// kubeconfig would name their cluster.
func writeKubeconfig(env *envtest.Environment) (string, error) {
	dir, err := os.MkdirTemp("", "kubectl-dlcsync-test")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, testenv.WriteKubeconfig(env, "cli-user", path)
}

// runCLI runs the plugin in-process with the test kubeconfig, as `kubectl dlcsync ARGS`.
func runCLI(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	out, errOut := &testenv.LockedBuffer{}, &testenv.LockedBuffer{}
	err = runCLITo(ctx, out, errOut, args...)
	return out.String(), errOut.String(), err
}

func runCLITo(ctx context.Context, out, errOut io.Writer, args ...string) error {
	return runCLIRaw(ctx, out, errOut, append(args, "--kubeconfig", kubeconfig)...)
}

// runCLIRaw runs the plugin in-process with exactly these arguments.
func runCLIRaw(ctx context.Context, out, errOut io.Writer, args ...string) error {
	cmd := newRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut})
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}

// newNamespace creates a namespace with a labelled credentials Secret for the simulator.
func newNamespace(t *testing.T) string {
	t.Helper()
	g := NewWithT(t)
	name := fmt.Sprintf("cli%d", nsSeq.Add(1))
	g.Expect(testenv.CreateTenant(testCtx, k8s, name, simAdmin.AccessKeyID, simAdmin.AccessKeySecret)).To(Succeed())
	return name
}

// newQuery is a JobQuery on the simulator that keeps the jobs whose name contains prefix.
func newQuery(namespace, name, prefix string) *dlcv1alpha1.JobQuery {
	q := testenv.JobQuery(namespace, name, simURL)
	q.Spec.Filter = dlcv1alpha1.JobFilter{DisplayName: prefix,
		TimeRange: &dlcv1alpha1.TimeRange{Within: &metav1.Duration{Duration: 31 * 24 * time.Hour}}}
	return q
}

// job is a simulator job named prefix-suffix, created 5h5m before base; started and finished are
// offsets from base (zero: not set).
func job(prefix, suffix, jobType, status string, base time.Time, started, finished time.Duration) dlcsim.Job {
	it := dlc.JobItem{JobID: "dlc" + prefix + suffix, DisplayName: prefix + "-" + suffix, JobType: jobType, Status: status,
		UserID: "2002", Username: "alice", WorkspaceID: "268", WorkspaceName: "team-ws", RequestGPU: "8",
		GmtCreateTime: dlc.FormatTime(base.Add(-305 * time.Minute))}
	if started != 0 {
		it.GmtRunningTime = dlc.FormatTime(base.Add(started))
	}
	if finished != 0 {
		it.GmtFinishTime = dlc.FormatTime(base.Add(finished))
	}
	if status == dlc.StatusFailed {
		it.ReasonCode, it.ReasonMessage = "JobFailed", "worker-0 exited with code 137 (OOMKilled)"
	}
	return dlcsim.Job{JobItem: it}
}

// createSynced creates the query and waits until its first sync succeeded.
func createSynced(t *testing.T, q *dlcv1alpha1.JobQuery) *dlcv1alpha1.JobQuery {
	t.Helper()
	g := NewWithT(t)
	g.Expect(k8s.Create(testCtx, q)).To(Succeed())
	got := &dlcv1alpha1.JobQuery{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(testCtx, client.ObjectKeyFromObject(q), got)).To(Succeed())
		c := meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(dlcv1alpha1.ReasonSynced), c.Message)
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return got
}

// tableRows splits a printed table into its header's column names and its rows by name, each
// row's cells split on runs of two or more spaces (cells such as "3h30m" hold no spaces).
func tableRows(t *testing.T, out string) (header []string, rows map[string][]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	rows = map[string][]string{}
	for i, l := range lines {
		cells := splitCells(l)
		if i == 0 {
			header = cells
			continue
		}
		if len(cells) != len(header) {
			t.Fatalf("row %q has %d cells, header %v has %d", l, len(cells), header, len(header))
		}
		rows[cells[0]] = cells
	}
	return header, rows
}

func splitCells(line string) []string {
	var cells []string
	for _, c := range strings.Split(line, "  ") {
		if c = strings.TrimSpace(c); c != "" {
			cells = append(cells, c)
		}
	}
	return cells
}

// cell returns a row's value in the named column.
func cell(t *testing.T, header, row []string, column string) string {
	t.Helper()
	for i, h := range header {
		if h == column {
			return row[i]
		}
	}
	t.Fatalf("no column %s in %v", column, header)
	return ""
}
