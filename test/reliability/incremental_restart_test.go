package reliability

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// incrementalJobs adds n jobs of which every tenth runs and the rest succeeded: 450 jobs list
// in full in 5 calls, incrementally in 2 (new jobs, then the 45 running ones by ID).
func incrementalJobs(prefix string, n int) []string {
	ids := addJobs(prefix, n)
	for i, id := range ids {
		if i%10 != 0 {
			sim.Patch(id, func(j *dlcsim.Job) { j.Status = dlc.StatusSucceeded })
		}
	}
	return ids
}

// incrementalQuery is a query whose filter is fixed at creation: it lists incrementally.
func incrementalQuery(namespace, name, displayName string) *dlcv1alpha1.JobQuery {
	q := newQuery(namespace, name, displayName)
	q.Spec.Filter.ShowOwn = dlc.Ptr(true)
	q.Spec.Filter.JobType = "PyTorchJob"
	q.Spec.Filter.TimeRange = &dlcv1alpha1.TimeRange{Within: &metav1.Duration{Duration: 31 * 24 * time.Hour}}
	return q
}

// syncNow asks for a sync through the requestedAt annotation, waits for it and returns the query.
func syncNow(t *testing.T, namespace, name string, want int32) *dlcv1alpha1.JobQuery {
	t.Helper()
	g := NewWithT(t)
	key := types.NamespacedName{Namespace: namespace, Name: name}
	_, err := testenv.RequestSync(context.Background(), k8s, namespace, name)
	g.Expect(err).NotTo(HaveOccurred())
	waitSynced(t, namespace, name, want)
	var q dlcv1alpha1.JobQuery
	g.Expect(k8s.Get(context.Background(), key, &q)).To(Succeed())
	return &q
}

// After a restart, the first sync of a query goes on from the state its status keeps: an
// incremental listing of a few calls and no snapshot write, not a full listing. A prune that
// waited for confirmation before the restart is confirmed by the first listing after it.
func TestARestartedManagerGoesOnListingIncrementally(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := incrementalJobs("dlcpersist", 450)
	first := startManager(t, "first", false)
	g.Expect(k8s.Create(context.Background(), incrementalQuery(ns, "persist", "dlcpersist"))).To(Succeed())
	waitSynced(t, ns, "persist", 450)
	q := syncNow(t, ns, "persist", 450)
	g.Expect(q.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeIncremental))
	inc := q.Status.Incremental
	g.Expect(inc).NotTo(BeNil())
	g.Expect(inc.RunningJobs).To(Equal(int32(45)))
	g.Expect(inc.Watermark).To(Equal(dlc.FormatTime(mustParse(g, mustJob(g, ids[0]).GmtCreateTime))))
	first.shutdown()

	second := startManager(t, "second", false)
	calls := sim.Stats().Requests
	q = syncNow(t, ns, "persist", 450)
	g.Expect(q.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeIncremental), "the restarted manager listed in full")
	g.Expect(sim.Stats().Requests - calls).To(BeNumerically("<=", 3))
	g.Expect(q.Status.LastSyncStats.APICalls).To(BeNumerically("<=", 3))
	g.Expect(second.writes("dlcjobsnapshots")).To(BeZero())

	// A running job is deleted: the incremental listing finds it gone, and its snapshot waits
	// for a second listing. The manager restarts before that listing.
	sim.Delete(ids[10])
	q = syncNow(t, ns, "persist", 449)
	g.Expect(q.Status.LastSyncStats.Deleted).To(BeZero())
	g.Expect(q.Status.Incremental.PendingPrune).To(Equal([]string{snapshot.Name(ids[10])}))
	second.shutdown()

	third := startManager(t, "third", false)
	q = syncNow(t, ns, "persist", 449)
	g.Expect(q.Status.LastSyncStats.Deleted).To(Equal(int32(1)), "the absence seen before the restart was forgotten")
	g.Expect(snapshotsOf(g, ns)).NotTo(HaveKey(ids[10]))
	g.Expect(q.Status.Incremental.PendingPrune).To(BeEmpty())
	third.shutdown()
}

// The state a status keeps is trusted only for the spec and credentials it was built under, and
// only while the snapshots agree with it: after a spec change, a credentials change or a
// snapshot edited while no manager ran, the first sync lists in full.
func TestAPersistedStateOfAnotherSpecOrCredentialsIsNotTrusted(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := incrementalJobs("dlcstale", 450)
	m := startManager(t, "before", false)
	g.Expect(k8s.Create(context.Background(), incrementalQuery(ns, "stale", "dlcstale"))).To(Succeed())
	waitSynced(t, ns, "stale", 450)
	g.Expect(syncNow(t, ns, "stale", 450).Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeIncremental))
	m.shutdown()
	restartAndExpectFull := func(why string) {
		t.Helper()
		m := startManager(t, why, false)
		q := syncNow(t, ns, "stale", 450)
		g.Expect(q.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeFull), why)
		g.Expect(q.Status.Incremental).NotTo(BeNil())
		// The full listing is the new base: the next sync is incremental again.
		g.Expect(syncNow(t, ns, "stale", 450).Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeIncremental), why)
		m.shutdown()
	}

	// The spec changes while no manager runs.
	key := types.NamespacedName{Namespace: ns, Name: "stale"}
	var q dlcv1alpha1.JobQuery
	g.Expect(k8s.Get(context.Background(), key, &q)).To(Succeed())
	patch := client.MergeFrom(q.DeepCopy())
	q.Spec.FullResyncInterval = &metav1.Duration{Duration: 2 * time.Hour}
	g.Expect(k8s.Patch(context.Background(), &q, patch)).To(Succeed())
	restartAndExpectFull("spec changed")

	// The credentials Secret changes (another AccessKey may see other jobs).
	var secret = mustSecret(g, ns)
	secretPatch := client.MergeFrom(secret.DeepCopy())
	secret.Data["rotatedAt"] = []byte(time.Now().String())
	g.Expect(k8s.Patch(context.Background(), secret, secretPatch)).To(Succeed())
	restartAndExpectFull("credentials changed")

	// A running job's snapshot is edited by hand to look finished: the snapshots no longer hash
	// to the running jobs the status recorded, so they cannot stand in for a full listing.
	var s dlcv1alpha1.DLCJobSnapshot
	g.Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: snapshot.Name(ids[20])}, &s)).To(Succeed())
	s.Status.Phase = dlc.StatusSucceeded
	g.Expect(k8s.Update(context.Background(), &s)).To(Succeed())
	restartAndExpectFull("snapshot edited")
}

func mustJob(g Gomega, id string) dlcsim.Job {
	j, ok := sim.Job(id)
	g.Expect(ok).To(BeTrue())
	return j
}

func mustParse(g Gomega, v string) time.Time {
	t, err := time.Parse(dlc.TimeLayout, v)
	g.Expect(err).NotTo(HaveOccurred())
	return t
}

func mustSecret(g Gomega, namespace string) *corev1.Secret {
	var s corev1.Secret
	g.Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: "dlc-credentials"}, &s)).To(Succeed())
	return &s
}
