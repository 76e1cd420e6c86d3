package controllers

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// After a full listing, a query with a filter fixed at creation reads only the new jobs and the
// jobs still moving; terminal jobs are not read again until a full listing, which is also what
// finds a deleted terminal job.
func TestIncrementalSyncsReadOnlyNewAndMovingJobs(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcincr", 250, "XGBoostJob")
	// 200 finished jobs, 50 running.
	for _, id := range ids[50:] {
		g.Expect(sim.Patch(id, func(j *dlcsim.Job) { j.Status = dlc.StatusSucceeded })).To(BeTrue())
	}
	q := query(ns, "incr")
	q.Spec.Filter.DisplayName = "dlcincr"
	q.Spec.Filter.JobType = "XGBoostJob"
	// The caller's own jobs: fixed at creation (another user's job can turn public later).
	q.Spec.Filter.ShowOwn = dlc.Ptr(true)
	q = createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeFull))
	g.Expect(q.Status.Snapshots).To(Equal(int32(250)))

	// Nothing changed: one call for new jobs (none), one batch for the 50 running ones.
	q = resync(t, ns, "incr", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeIncremental))
	g.Expect(q.Status.LastSyncStats.APICalls).To(Equal(int32(2)))
	g.Expect(q.Status.LastSyncStats.Unchanged).To(Equal(int32(250)))
	g.Expect(q.Status.Snapshots).To(Equal(int32(250)))
	g.Expect(q.Status.MatchedJobs).To(Equal(int64(250)))
	g.Expect(q.Status.JobStatusCounts).To(Equal(map[string]int32{"Running": 50, "Succeeded": 200}))

	// A finished job's snapshot deleted by hand comes back at the next sync: the query counts
	// fewer snapshots than it kept and lists in full.
	handDeleted := snapshots(g, ns)[snapshot.Name(ids[200])]
	g.Expect(k8s.Delete(testCtx, &handDeleted)).To(Succeed())
	NewWithT(t).Eventually(func(g Gomega) {
		q := resync(t, ns, "incr", dlcv1alpha1.ReasonSynced)
		g.Expect(q.Status.LastSyncStats.Created).To(Equal(int32(1)))
		g.Expect(q.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeFull))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	g.Expect(snapshots(g, ns)).To(HaveKey(snapshot.Name(ids[200])))
	resync(t, ns, "incr", dlcv1alpha1.ReasonSynced)

	checkAnIncrementalSyncReadsOnlyTheChanges(t, ns, ids)

	// A snapshot waits for its removal: the next sync lists in full, confirms the deletion and
	// sees the finished job gone for the first time.
	q = resync(t, ns, "incr", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeFull))
	g.Expect(q.Status.LastSyncStats.Deleted).To(Equal(int32(1)))
	snaps := snapshots(g, ns)
	g.Expect(snaps).NotTo(HaveKey(snapshot.Name(ids[4])))
	g.Expect(snaps).To(HaveKey(snapshot.Name(ids[100])))

	// A spec change lists in full, and the next full listing removes the deleted finished job.
	patch := client.MergeFrom(q.DeepCopy())
	q.Spec.FullResyncInterval = &metav1.Duration{Duration: 2 * time.Hour}
	g.Expect(k8s.Patch(testCtx, q, patch)).To(Succeed())
	NewWithT(t).Eventually(func(g Gomega) {
		q := getQuery(g, ns, "incr")
		g.Expect(q.Status.ObservedGeneration).To(Equal(q.Generation))
		g.Expect(q.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeFull))
		g.Expect(q.Status.Snapshots).To(Equal(int32(251)))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	resync(t, ns, "incr", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).NotTo(HaveKey(snapshot.Name(ids[100])))
}

// checkAnIncrementalSyncReadsOnlyTheChanges: a running job fails, another is deleted, a finished
// one is deleted, and three jobs arrive; the next sync reads only those in two calls.
func checkAnIncrementalSyncReadsOnlyTheChanges(t *testing.T, ns string, ids []string) {
	t.Helper()
	g := NewWithT(t)
	g.Expect(sim.Patch(ids[3], func(j *dlcsim.Job) { j.Status = dlc.StatusFailed })).To(BeTrue())
	sim.Delete(ids[4], ids[100])
	now := time.Now()
	fresh := make([]dlcsim.Job, 0, 3)
	for i := range 3 {
		job, ok := sim.Job(ids[0])
		g.Expect(ok).To(BeTrue())
		job.JobID = fmt.Sprintf("dlcincrnew%d", i)
		job.GmtCreateTime = dlc.FormatTime(now.Add(-3 * time.Second))
		fresh = append(fresh, job)
	}
	sim.Upsert(fresh...)
	q := resync(t, ns, "incr", dlcv1alpha1.ReasonSynced)
	st := q.Status.LastSyncStats
	g.Expect(st.Mode).To(Equal(dlcv1alpha1.SyncModeIncremental))
	g.Expect(st.APICalls).To(Equal(int32(2)))
	g.Expect([]int32{st.Created, st.Updated, st.Deleted}).To(Equal([]int32{3, 1, 0}))
	snaps := snapshots(g, ns)
	g.Expect(snaps).To(HaveLen(253))
	g.Expect(snaps).To(HaveKey(snapshot.Name(ids[4])), "one listing without a job does not delete its snapshot")
	g.Expect(snaps).To(HaveKey(snapshot.Name(ids[100])), "a terminal job is not read again before the full listing")
	g.Expect(snaps[snapshot.Name(ids[3])].Status.Phase).To(Equal(dlc.StatusFailed))
	g.Expect(q.Status.JobStatusCounts).To(Equal(map[string]int32{"Running": 51, "Failed": 1, "Succeeded": 200}))
}

// A filter on a field that changes during a job's life lists in full every time; so does one
// that sees other users' jobs, since UpdateJob can make a private job public.
func TestAQueryOfOtherUsersJobsAlwaysListsInFull(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcfullvis", 250, "OneFlowJob")
	q := query(ns, "visible")
	q.Spec.Filter.DisplayName = "dlcfullvis"
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	q = resync(t, ns, "visible", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeFull))
	g.Expect(q.Status.Snapshots).To(Equal(int32(250)))
}

// A filter on a field that changes during a job's life lists in full every time.
func TestAStatusFilterAlwaysListsInFull(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcfullst", 5, "OneFlowJob")
	q := query(ns, "running")
	q.Spec.Filter.DisplayName = "dlcfullst"
	q.Spec.Filter.Status = dlc.StatusRunning
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	q = resync(t, ns, "running", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeFull))
	g.Expect(q.Status.Snapshots).To(Equal(int32(5)))
}

// A periodic sync that finds nothing new makes no Kubernetes write at all: no snapshot, no
// event, and not the JobQuery status either; the sync shows in the metric instead.
func TestAPeriodicSyncWithoutChangeWritesNothing(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcquiet", 120, "MPIJob")
	q := query(ns, "quiet")
	q.Spec.Filter.DisplayName = "dlcquiet"
	q.Spec.Interval = metav1.Duration{Duration: 10 * time.Second}
	q = createReady(t, q, dlcv1alpha1.ReasonSynced)
	synced := func() float64 { return testutil.ToFloat64(lastSyncTimestamp.WithLabelValues(ns, "quiet")) }
	firstSync, queryVersion, snapshotVersions := synced(), q.ResourceVersion, resourceVersions(g, ns)
	eventCount := len(events(g, ns))

	NewWithT(t).Eventually(synced).WithTimeout(20*time.Second).WithPolling(200*time.Millisecond).Should(BeNumerically(">", firstSync),
		"the periodic sync ran")
	g.Expect(getQuery(g, ns, "quiet").ResourceVersion).To(Equal(queryVersion), "the JobQuery was written")
	g.Expect(resourceVersions(g, ns)).To(Equal(snapshotVersions))
	g.Expect(events(g, ns)).To(HaveLen(eventCount))
}
