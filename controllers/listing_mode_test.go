package controllers

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// A job whose mutable fields change (UpdateJob makes it public or private) starts or stops
// matching a filter on them at the next syncs: such a filter always lists in full.
func TestAJobThatStartsOrStopsMatchingAMutableFilterIsSeen(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcmutable", 3, "TFJob") // PUBLIC
	private := dlc.AccessibilityPrivate
	_, ok, err := sim.UpdateJob(ids[2], dlcsim.JobUpdate{Accessibility: &private})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeTrue())
	q := queryFor(ns, "public", "dlcmutable")
	q.Spec.Filter.ShowOwn = dlc.Ptr(true)
	q.Spec.Filter.Accessibility = dlc.AccessibilityPublic
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(HaveLen(2)) }).WithTimeout(10 * time.Second).Should(Succeed())

	public := dlc.AccessibilityPublic
	_, _, err = sim.UpdateJob(ids[2], dlcsim.JobUpdate{Accessibility: &public})
	g.Expect(err).NotTo(HaveOccurred())
	_, _, err = sim.UpdateJob(ids[0], dlcsim.JobUpdate{Accessibility: &private})
	g.Expect(err).NotTo(HaveOccurred())
	got := resync(t, ns, "public", dlcv1alpha1.ReasonSynced)
	g.Expect(got.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeFull))
	g.Expect(snapshots(g, ns)).To(HaveKey(ids[2]), "a job that became public is mirrored at the next sync")
	resync(t, ns, "public", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).NotTo(HaveKey(ids[0]), "a job that became private goes after two listings")
	g.Expect(snapshots(g, ns)).To(HaveLen(2))
}

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
	q := queryFor(ns, "incr", "dlcincr")
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
	q := queryFor(ns, "visible", "dlcfullvis")
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
	q := queryFor(ns, "running", "dlcfullst")
	q.Spec.Filter.Status = dlc.StatusRunning
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	q = resync(t, ns, "running", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeFull))
	g.Expect(q.Status.Snapshots).To(Equal(int32(5)))
}

func TestIncrementalListingOnlyForFiltersFixedAtCreationAndAfterARecentFullListing(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	base := func() *dlcv1alpha1.JobQuery {
		q := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
		q.Spec.FullResyncInterval = &metav1.Duration{Duration: time.Hour}
		q.Spec.Filter = dlcv1alpha1.JobFilter{WorkspaceID: "268", JobType: "PyTorchJob", ShowOwn: dlc.Ptr(true)}
		q.Status.Snapshots = 300
		return q
	}
	// 300 jobs, 50 of them running: 2 calls instead of 3 pages.
	known := make([]dlc.KnownJob, 0, 300)
	for i := range 300 {
		status := dlc.StatusSucceeded
		if i < 50 {
			status = dlc.StatusRunning
		}
		known = append(known, dlc.KnownJob{JobID: fmt.Sprint("dlc", i), GmtCreateTime: "2026-01-01T10:00:00Z", Status: status})
	}
	fresh := func(q *dlcv1alpha1.JobQuery) *queryState {
		return &queryState{lastFull: now.Add(-10 * time.Minute), fullKey: fullKey(q)}
	}
	if q := base(); !incrementalDue(q, fresh(q), known, now) {
		t.Fatal("a fixed filter after a recent full listing must list incrementally")
	}
	for name, mutate := range map[string]func(*dlcv1alpha1.JobQuery){
		"status filter": func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.Status = dlc.StatusRunning },
		"reason search": func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.ReasonSearch = "OOM" },
		"numeric range": func(q *dlcv1alpha1.JobQuery) {
			q.Spec.Filter.NumericRange = &dlcv1alpha1.NumericRange{Field: "Duration"}
		},
		"finish-time window": func(q *dlcv1alpha1.JobQuery) {
			q.Spec.Filter.TimeRange = &dlcv1alpha1.TimeRange{Field: "GmtFinishTime"}
		},
		// Fields UpdateJob or scheduling can change (dlc.FilterRules).
		"accessibility":         func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.Accessibility = "PUBLIC" },
		"image search":          func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.ImageSearch = "pytorch" },
		"oversold":              func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.OversoldInfo = "ForceQuotaJob" },
		"payment type":          func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.PaymentType = "Spot" },
		"tags":                  func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.Tags = map[string]string{"team": "a"} },
		"others' jobs":          func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.ShowOwn = dlc.Ptr(false) },
		"showOwn unset":         func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.ShowOwn = nil },
		"assigned nodes":        func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.EnableAssignNode = dlc.Ptr(true) },
		"full listing disabled": func(q *dlcv1alpha1.JobQuery) { q.Spec.FullResyncInterval = &metav1.Duration{} },
		"truncated":             func(q *dlcv1alpha1.JobQuery) { q.Status.Truncated = true },
	} {
		q := base()
		mutate(q)
		if incrementalDue(q, fresh(q), known, now) {
			t.Errorf("%s: must list in full", name)
		}
	}
	if q := base(); incrementalDue(q, fresh(q), known[1:], now) {
		t.Error("a snapshot was deleted by hand: must list in full to restore it")
	}
	q := base()
	if incrementalDue(q, &queryState{}, known, now) {
		t.Error("no full listing since the process started: must list in full")
	}
	if incrementalDue(q, &queryState{lastFull: now.Add(-time.Hour), fullKey: fullKey(q)}, known, now) {
		t.Error("fullResyncInterval passed: must list in full")
	}
	state := fresh(q)
	q.Generation++
	if incrementalDue(q, state, known, now) {
		t.Error("the spec changed since the full listing: must list in full")
	}
	if q := base(); incrementalDue(q, fresh(q), nil, now) {
		t.Error("no known job to start from: must list in full")
	}
	few := base()
	few.Status.Snapshots = 150
	if incrementalDue(few, fresh(few), known[:150], now) {
		t.Error("150 jobs, 50 moving: the full listing takes 2 calls too, and finds deletions: must list in full")
	}
	withinDay := base()
	withinDay.Spec.Filter.TimeRange = &dlcv1alpha1.TimeRange{Within: &metav1.Duration{Duration: 24 * time.Hour}}
	if !incrementalDue(withinDay, fresh(withinDay), known, now) {
		t.Error("a creation-time window is fixed at creation: must list incrementally")
	}
}

func TestARestoredStateFromAClockThatRanAheadIsNotTrusted(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for ahead, trusted := range map[time.Duration]bool{-10 * time.Minute: true, 30 * time.Second: true, time.Hour: false} {
		state := &queryState{}
		restoreState(state, incrementalQuery(now.Add(ahead), nil), now)
		g.Expect(state.lastFull.IsZero()).To(Equal(!trusted), "a last full listing %s ahead", ahead)
	}
}

// A leader whose clock ran ahead wrote a nextSyncTime hours in this process's future: restored
// as is, the query would stay silent until this clock caught up. It is capped at the longest
// wait a sync can schedule: the interval and its jitter, or the backoff of a failing query.
func TestARestoredNextSyncFromAClockThatRanAheadIsCapped(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	restored := func(ahead time.Duration, failures int32) *dlcv1alpha1.JobQuery {
		q := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "q", Generation: 1}}
		q.Spec.Interval = metav1.Duration{Duration: time.Minute}
		last, next := metav1.NewTime(now.Add(ahead-time.Minute)), metav1.NewTime(now.Add(ahead))
		q.Status = dlcv1alpha1.JobQueryStatus{ObservedGeneration: 1, LastSyncTime: &last, NextSyncTime: &next,
			ConsecutiveFailures: failures}
		return q
	}
	for name, tc := range map[string]struct {
		ahead    time.Duration
		failures int32
		wait     time.Duration
	}{
		"two hours ahead":                       {ahead: 2 * time.Hour, wait: time.Minute + time.Minute/10},
		"a month ahead":                         {ahead: 30 * 24 * time.Hour, wait: time.Minute + time.Minute/10},
		"within the interval, kept as written":  {ahead: 50 * time.Second, wait: 50 * time.Second},
		"a failing query keeps its backoff":     {ahead: 9 * time.Minute, failures: 8, wait: 9 * time.Minute},
		"a failing query two hours ahead":       {ahead: 2 * time.Hour, failures: 8, wait: retryDelay(8)},
		"a failing query within its short wait": {ahead: 3 * time.Second, failures: 1, wait: 3 * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			q := restored(tc.ahead, tc.failures)
			state := &queryState{}
			restoreState(state, q, now)
			wait, isDue := due(q, state, false, "", now)
			g.Expect(isDue).To(BeFalse())
			g.Expect(wait).To(Equal(tc.wait), "the wait after a restart of a query scheduled %s ahead", tc.ahead)
			// The cap is decided once, at the restore: later looks do not push it further.
			later := now.Add(wait)
			wait, isDue = due(q, state, true, "", later)
			g.Expect(isDue).To(BeTrue(), "still waiting %s at the capped time", wait)
		})
	}
}

func TestARestoredStateTheSnapshotsDisagreeWithIsDroppedWhole(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	known := []dlc.KnownJob{{JobID: "dlc1", GmtCreateTime: "2026-12-01T10:00:00Z", Status: dlc.StatusRunning}}
	state := &queryState{}
	restoreState(state, incrementalQuery(now.Add(-time.Minute), known), now)
	g.Expect(restoredAgrees(state, known)).To(BeTrue())
	g.Expect(state.absent).To(HaveKey("dlcgone"))

	// The running job finished while no process watched: the snapshots no longer agree.
	changed := []dlc.KnownJob{{JobID: "dlc1", GmtCreateTime: "2026-12-01T10:00:00Z", Status: dlc.StatusSucceeded}}
	g.Expect(restoredAgrees(state, changed)).To(BeFalse())
	state.forgetRestored()
	g.Expect(state.absent).To(BeEmpty(), "a pending prune of a stale state counted as the first absence")
	g.Expect(state.lastFull.IsZero()).To(BeTrue(), "the next listing must be a full one")
	g.Expect(restoredAgrees(state, changed)).To(BeTrue(), "nothing restored is left to disagree with")
}

func TestAShortFullResyncIntervalDoesNotRewriteTheLastFullListingAtEverySync(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var known []dlc.KnownJob
	for i := range 300 {
		known = append(known, dlc.KnownJob{JobID: fmt.Sprintf("dlc%04d", i), GmtCreateTime: "2026-12-01T10:00:00Z", Status: dlc.StatusSucceeded})
	}
	q := incrementalQuery(now.Add(-2*time.Minute), known)
	q.Spec.FullResyncInterval = &metav1.Duration{Duration: 30 * time.Second}
	q.Status.Incremental.Fingerprint = fullKey(q)
	q.Status.Incremental.PendingPrune = nil
	recorded := q.Status.Incremental.LastFullListingTime
	state := &queryState{lastFull: now, fullKey: fullKey(q)}
	recordIncremental(q, state, known)
	g.Expect(q.Status.Incremental).NotTo(BeNil())
	g.Expect(q.Status.Incremental.LastFullListingTime).To(Equal(recorded), "rewritten after 2 minutes: a status write per sync")

	state.lastFull = now.Add(4 * time.Minute)
	recordIncremental(q, state, known)
	g.Expect(q.Status.Incremental.LastFullListingTime.Time).To(Equal(now.Add(4*time.Minute)), "kept for longer than 5 minutes")
}
