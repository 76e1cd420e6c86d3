// Package reliability runs whole managers against a real kube-apiserver and etcd (envtest) and
// the simulator, and stops them at the worst moments: a restart in the middle of a sync, and a
// leader that goes away.
package reliability

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/controllers"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

var (
	cfg    *rest.Config
	k8s    client.Client
	sim    *dlcsim.Server
	simURL string
	admin  = dlcsim.Identity{AccessKeyID: "rel-key", AccessKeySecret: "rel-secret-0123456789", UserID: "1001", Username: "admin", Admin: true}
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	env, c, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	cfg = c
	k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sim = dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{admin}, Seed: 5})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	simURL = srv.URL
	return m.Run()
}

// manager is one running dlcsync manager.
type manager struct {
	name string
	mgr  ctrl.Manager
	// requests counts what this manager sent to the apiserver; paths records its writes.
	requests *testenv.RequestCounter
	paths    *writeRecorder
	stop     context.CancelFunc
	stopped  chan struct{}
}

// managerOptions are the settings in which the tests' managers differ.
type managerOptions struct {
	leaderElect bool
	// watchLabelSelector is the manager's --watch-label-selector (its shard).
	watchLabelSelector string
	// cloudEventsBacklog is the manager's --cloudevents-backlog (0: the default).
	cloudEventsBacklog int
}

// startManager starts a manager with its own connection, counting its writes.
func startManager(t *testing.T, name string, leaderElect bool) *manager {
	t.Helper()
	return startManagerWith(t, name, managerOptions{leaderElect: leaderElect})
}

// startManagerWith starts a manager as cmd/manager builds it from its flags.
func startManagerWith(t *testing.T, name string, o managerOptions) *manager {
	t.Helper()
	requests, paths := testenv.NewRequestCounter(), &writeRecorder{}
	own := paths.instrument(requests.Instrument(cfg))
	lease, renew, retry := 3*time.Second, 2*time.Second, 250*time.Millisecond
	cacheOptions, err := controllers.ShardCacheOptions(nil, o.watchLabelSelector)
	if err != nil {
		t.Fatal(err)
	}
	leaseID, err := controllers.LeaderElectionID("dlcsync-reliability", nil, o.watchLabelSelector)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(own, ctrl.Options{
		Scheme: testenv.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache:          cacheOptions,
		LeaderElection: o.leaderElect, LeaderElectionID: leaseID, LeaderElectionNamespace: "default",
		LeaderElectionReleaseOnCancel: true, LeaseDuration: &lease, RenewDeadline: &renew, RetryPeriod: &retry,
		// Several managers run in this one test process, each with the jobquery controller.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := controllers.Setup(ctx, mgr, controllers.Options{
		AllowedEndpoints: testenv.LoopbackEndpoints, AllowedSinks: testenv.LoopbackEndpoints, CloudEventsBacklog: o.cloudEventsBacklog,
		DLCQPS: 1000, DLCBurst: 1000,
		Retry: dlc.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond},
	}); err != nil {
		cancel()
		t.Fatal(err)
	}
	m := &manager{name: name, mgr: mgr, requests: requests, paths: paths, stop: cancel, stopped: make(chan struct{})}
	go func() {
		defer close(m.stopped)
		if err := mgr.Start(ctx); err != nil {
			t.Logf("manager %s: %v", name, err)
		}
	}()
	t.Cleanup(m.shutdown)
	return m
}

// shutdown stops the manager and waits until it has stopped.
func (m *manager) shutdown() {
	m.stop()
	<-m.stopped
}

// writes counts the manager's writes to resources whose name starts with resourcePrefix.
func (m *manager) writes(resourcePrefix string) int {
	return m.requests.Snapshot().Writes(resourcePrefix)
}

func (m *manager) elected() bool {
	select {
	case <-m.mgr.Elected():
		return true
	default:
		return false
	}
}

var nsSeq atomic.Int32

func newNamespace(t *testing.T) string {
	t.Helper()
	g := NewWithT(t)
	name := fmt.Sprintf("rel%d", nsSeq.Add(1))
	g.Expect(testenv.CreateTenant(context.Background(), k8s, name, admin.AccessKeyID, admin.AccessKeySecret)).To(Succeed())
	return name
}

func newQuery(namespace, name, displayName string) *dlcv1alpha1.JobQuery {
	q := testenv.JobQuery(namespace, name, simURL)
	q.Spec.Filter.DisplayName = displayName
	return q
}

// addJobs adds n running jobs named prefix-job-i to the simulator and returns their IDs.
func addJobs(prefix string, n int) []string {
	now := time.Now()
	ids := make([]string, n)
	jobs := make([]dlcsim.Job, n)
	for i := range jobs {
		ids[i] = fmt.Sprintf("%s%04d", prefix, i)
		jobs[i] = dlcsim.Job{JobItem: dlc.JobItem{JobID: ids[i], DisplayName: fmt.Sprintf("%s-job-%d", prefix, i), JobType: "PyTorchJob",
			Status: dlc.StatusRunning, WorkspaceID: "268", UserID: "1001", Username: "admin",
			GmtCreateTime: dlc.FormatTime(now.Add(-time.Duration(i+1) * time.Minute))}}
	}
	sim.Upsert(jobs...)
	return ids
}

// waitSynced waits until the query's Ready reason is Synced for its current generation and
// annotation, with want snapshots.
func waitSynced(t *testing.T, namespace, name string, want int32) {
	t.Helper()
	var q dlcv1alpha1.JobQuery
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: name}, &q)).To(Succeed())
		g.Expect(q.Status.ObservedGeneration).To(Equal(q.Generation))
		g.Expect(q.Status.LastHandledReconcileAt).To(Equal(q.Annotations[dlcv1alpha1.AnnotationRequestedAt]))
		c := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(dlcv1alpha1.ReasonSynced), c.Message)
		g.Expect(q.Status.Snapshots).To(Equal(want))
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

// snapshotsOf lists the snapshots of a namespace by job ID, failing on a duplicate job ID.
func snapshotsOf(g Gomega, namespace string) map[string]dlcv1alpha1.DLCJobSnapshot {
	var list dlcv1alpha1.DLCJobSnapshotList
	g.Expect(k8s.List(context.Background(), &list, client.InNamespace(namespace))).To(Succeed())
	out := map[string]dlcv1alpha1.DLCJobSnapshot{}
	for _, s := range list.Items {
		g.Expect(out).NotTo(HaveKey(s.Spec.JobID), "two snapshots of job %s", s.Spec.JobID)
		out[s.Spec.JobID] = s
	}
	return out
}

// expectRight fails unless every job has exactly one snapshot that shows its current data.
func expectRight(g Gomega, namespace string, ids []string) {
	snaps := snapshotsOf(g, namespace)
	g.Expect(snaps).To(HaveLen(len(ids)))
	for _, id := range ids {
		job, ok := sim.Job(id)
		g.Expect(ok).To(BeTrue())
		s, ok := snaps[id]
		g.Expect(ok).To(BeTrue(), "no snapshot of %s", id)
		converted, err := snapshot.ConvertJob(&job.JobItem, snapshot.Options{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.Status.ContentHash).To(Equal(snapshot.Hash(converted)), "snapshot of %s is stale", id)
		g.Expect(s.Status.Phase).To(Equal(job.Status))
		g.Expect(s.Name).To(Equal(snapshot.Name(id)))
	}
}

// A manager killed in the middle of its first sync leaves part of the snapshots written; the
// next manager finishes the job: every snapshot right, none twice, and only the missing ones
// written.
func TestARestartMidSyncFinishesWithoutDuplicatesOrAMassRewrite(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcrestart", 600)
	first := startManager(t, "first", false)
	g.Expect(k8s.Create(context.Background(), newQuery(ns, "restart", "dlcrestart"))).To(Succeed())
	// Stop it once a fifth of the snapshots exist: mid-write.
	NewWithT(t).Eventually(func(g Gomega) int {
		var list dlcv1alpha1.DLCJobSnapshotList
		g.Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
		return len(list.Items)
	}).WithTimeout(60 * time.Second).WithPolling(20 * time.Millisecond).Should(BeNumerically(">=", 120))
	first.shutdown()

	var list dlcv1alpha1.DLCJobSnapshotList
	g.Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	complete := 0
	for _, s := range list.Items {
		if s.Status.ContentHash != "" {
			complete++
		}
	}
	g.Expect(complete).To(BeNumerically("<", 600), "the first manager was to be stopped mid-sync")
	t.Logf("stopped after %d snapshots (%d with status) of 600", len(list.Items), complete)

	second := startManager(t, "second", false)
	waitSynced(t, ns, "restart", 600)
	expectRight(g, ns, ids)
	// Every snapshot that was complete is left alone: at most one create for each of the others
	// (a snapshot is written whole, its status in its create).
	g.Expect(second.writes("dlcjobsnapshots")).To(BeNumerically("<=", 600-complete),
		"the restarted manager rewrote snapshots that were already right")
	second.shutdown()
}

// Two managers, one lease: only the leader writes; when it goes away, the other takes over and
// completes the next sync.
func TestOnlyTheLeaderWritesAndAFailoverCompletesASync(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcleader", 50)
	a := startManager(t, "a", true)
	b := startManager(t, "b", true)
	NewWithT(t).Eventually(func() bool { return a.elected() || b.elected() }).WithTimeout(30 * time.Second).Should(BeTrue())
	leader, standby := a, b
	if b.elected() {
		leader, standby = b, a
	}
	g.Expect(standby.elected()).To(BeFalse())

	g.Expect(k8s.Create(context.Background(), newQuery(ns, "ha", "dlcleader"))).To(Succeed())
	waitSynced(t, ns, "ha", 50)
	expectRight(g, ns, ids)
	g.Expect(leader.writes("dlcjobsnapshots")).To(BeNumerically(">=", 50), "one create per snapshot")
	g.Expect(standby.writes("dlcjobsnapshots")+standby.writes("jobqueries")).To(BeZero(), "the standby wrote")

	// The leader goes away (releasing its lease); jobs arrive and a sync is asked for.
	leader.shutdown()
	more := addJobs("dlcleadermore", 20) // "dlcleadermore-job-i" matches the filter too
	var q dlcv1alpha1.JobQuery
	g.Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "ha"}, &q)).To(Succeed())
	patch := client.MergeFrom(q.DeepCopy())
	q.Annotations = map[string]string{dlcv1alpha1.AnnotationRequestedAt: "failover"}
	g.Expect(k8s.Patch(context.Background(), &q, patch)).To(Succeed())

	NewWithT(t).Eventually(standby.elected).WithTimeout(30 * time.Second).Should(BeTrue())
	waitSynced(t, ns, "ha", 70)
	expectRight(g, ns, append(ids, more...))
	g.Expect(standby.writes("dlcjobsnapshots")).To(BeNumerically(">=", 20), "the new leader wrote the new snapshots")
}
