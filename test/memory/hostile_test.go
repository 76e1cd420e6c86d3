// Package memory runs the real manager binary, configured the way the Helm chart runs it
// (its Go soft limit set from the container's 256 MiB limit), against endpoints that answer with hostile
// bodies, and checks that it stays up, stays within that limit, and says why it wrote nothing.
package memory

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/procfs"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// containerLimit is the memory limit of the chart's default values (resources.limits.memory),
// which the chart also passes to the manager in DLCSYNC_MEMORY_LIMIT.
const containerLimit = 256 << 20

var admin = dlcsim.Identity{AccessKeyID: "mem-key", AccessKeySecret: "mem-secret-0123456789", UserID: "1001",
	Username: "admin", Admin: true}

func TestHostileAnswersKeepTheRealManagerUpAndWithinItsMemoryLimit(t *testing.T) {
	g := NewWithT(t)
	env, k8s := testenv.StartWithClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)

	// Two endpoints, answered at once: a 200 MiB body, and 200,000 jobs on a page of 100.
	cases := map[string]dlcsim.Faults{"huge-body": {PadMB: 200}, "huge-page": {TinyJobs: 200_000}}
	sims := map[string]*dlcsim.Server{}
	for name, faults := range cases {
		sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{admin}, Seed: 3})
		sim.Generate(50)
		sim.SetFaults(faults)
		srv := httptest.NewServer(sim.Handler())
		t.Cleanup(srv.Close)
		sims[name] = sim
		createQuery(ctx, t, k8s, name, srv.URL)
	}

	mgr := startManager(t, env)
	// The soft limit the binary set from the container's limit: 80% of it by default.
	g.Eventually(mgr.Log).Should(MatchRegexp(`Go soft memory limit set.*"bytes": ?%d[,}]`, containerLimit*8/10))
	for name, sim := range sims {
		// Refused at least twice: the first failure and a retry, so the memory of more than one
		// read is measured.
		g.Eventually(func(g Gomega) {
			if mgr.Exited() {
				StopTrying("the manager exited").Now()
			}
			if peak := mgr.peakResident(t); peak >= containerLimit {
				StopTrying(fmt.Sprintf("the manager's resident set reached %.1f MiB", float64(peak)/(1<<20))).Now()
			}
			var q dlcv1alpha1.JobQuery
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: name, Name: "hostile"}, &q)).To(Succeed())
			ready := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal(dlcv1alpha1.ReasonBadResponse), name)
			g.Expect(ready.Message).NotTo(BeEmpty())
			g.Expect(sim.Stats().Requests).To(BeNumerically(">=", 2), name)
		}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(Succeed(), func() string { return mgr.Tail(60) })
		g.Expect(mgr.Exited()).To(BeFalse(), "the manager exited")
	}

	peak := mgr.peakResident(t)
	t.Logf("peak resident set of the manager: %.1f MiB (limit %d MiB)", float64(peak)/(1<<20), containerLimit>>20)
	g.Expect(peak).To(BeNumerically("<", containerLimit), "the container would have been OOM-killed")
	var snaps dlcv1alpha1.DLCJobSnapshotList
	g.Expect(k8s.List(ctx, &snaps)).To(Succeed())
	g.Expect(snaps.Items).To(BeEmpty(), "a refused answer wrote snapshots")
}

// createQuery creates a namespace with a labelled credentials Secret and a JobQuery named hostile
// for the endpoint.
func createQuery(ctx context.Context, t *testing.T, k8s client.Client, namespace, endpoint string) {
	t.Helper()
	g := NewWithT(t)
	g.Expect(testenv.CreateTenant(ctx, k8s, namespace, admin.AccessKeyID, admin.AccessKeySecret)).To(Succeed())
	q := testenv.JobQuery(namespace, "hostile", endpoint)
	q.Spec.Interval.Duration = 2 * time.Minute
	g.Expect(k8s.Create(ctx, q)).To(Succeed())
}

// manager is the real manager binary running against the test's control plane.
type manager struct{ *testenv.Process }

func TestMain(m *testing.M) { os.Exit(testenv.RunRemovingManagerBinary(m)) }

// startManager runs cmd/manager as the chart's Deployment does, the container's limit in
// DLCSYNC_MEMORY_LIMIT (the manager sets its Go soft limit from it).
func startManager(t *testing.T, env *envtest.Environment) *manager {
	t.Helper()
	return &manager{testenv.StartManager(t, env, []string{fmt.Sprintf("DLCSYNC_MEMORY_LIMIT=%d", containerLimit)},
		"--metrics-bind-address", "0")}
}

// stop stops the manager (again: a no-op), showing its log when the test failed.
func (m *manager) stop(t *testing.T) { testenv.StopManager(t, m.Process) }

// peakResident is the process's high-water mark of resident memory (VmHWM), which the kernel
// keeps, so no peak between two samples is missed.
func (m *manager) peakResident(t *testing.T) uint64 { return m.status(t).VmHWM }

// resident is the process's resident memory now (VmRSS).
func (m *manager) resident(t *testing.T) uint64 { return m.status(t).VmRSS }

// status reads the process's /proc status.
func (m *manager) status(t *testing.T) procfs.ProcStatus {
	t.Helper()
	proc, err := procfs.NewProc(m.Pid())
	if err != nil {
		t.Fatal(err)
	}
	status, err := proc.NewStatus()
	if err != nil {
		t.Fatal(err)
	}
	return status
}
