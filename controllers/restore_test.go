package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlc/dlcfake"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// incrementalQuery is a query whose status.incremental was written at lastFull for jobs known.
func incrementalQuery(lastFull time.Time, known []dlc.KnownJob) *dlcv1alpha1.JobQuery {
	q := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "q", Generation: 1}}
	q.Spec.Filter.ShowOwn = dlc.Ptr(true)
	watermark, running, digest := summarize(known)
	q.Status.Incremental = &dlcv1alpha1.IncrementalState{Fingerprint: fullKey(q), LastFullListingTime: metav1.NewTime(lastFull),
		Watermark: watermark, RunningJobs: running, RunningDigest: digest, PendingPrune: []string{"dlcgone"}}
	return q
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

// A snapshot already retained (prunePolicy Retain) is not counted absent again at every full
// listing: its absence would come and go, and with it status.incremental.pendingPrune.
func TestARetainedSnapshotIsNotTrackedAsAbsentAgain(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcretainedabsent", 3, "TFJob")
	q := query(ns, "retain")
	q.Spec.Filter.DisplayName = "dlcretainedabsent"
	q.Spec.Snapshot.PrunePolicy = dlcv1alpha1.PrunePolicyRetain
	q.Spec.FullResyncInterval = &metav1.Duration{}
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	sim.Delete(ids[0])
	resync(t, ns, "retain", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "retain", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)[ids[0]].Status.Matching).To(BeFalse(), "not retained after two listings")
	for range 2 {
		resync(t, ns, "retain", dlcv1alpha1.ReasonSynced)
		state, _ := testReconciler.state(types.NamespacedName{Namespace: ns, Name: "retain"})
		g.Expect(state.absent).NotTo(HaveKey(ids[0]))
	}
}

// The listing phase after a restart: a restored state the snapshots agree with lists
// incrementally and keeps its pending prunes; one they disagree with lists in full and is
// forgotten whole, its pending prunes too, so that a stale absence never counts as the first of
// the two listings a prune needs.
func TestTheListingPhaseForgetsARestoredStateTheSnapshotsDisagreeWith(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	created := dlc.FormatTime(now.Add(-2 * time.Hour))
	var known []dlc.KnownJob
	var jobs []dlc.JobItem
	for i := range 300 {
		status := dlc.StatusSucceeded
		if i == 0 {
			status = dlc.StatusRunning
		}
		id := fmt.Sprintf("dlc%04d", i)
		known = append(known, dlc.KnownJob{JobID: id, GmtCreateTime: created, Status: status})
		jobs = append(jobs, dlc.JobItem{JobID: id, GmtCreateTime: created, Status: status})
	}
	owned := func(known []dlc.KnownJob) map[string]*dlcv1alpha1.DLCJobSnapshot {
		out := map[string]*dlcv1alpha1.DLCJobSnapshot{}
		for _, k := range known {
			at, _ := time.Parse(dlc.TimeLayout, k.GmtCreateTime)
			s := &dlcv1alpha1.DLCJobSnapshot{Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: k.JobID}}
			s.Status.Matching, s.Status.Phase, s.Status.CreatedAt = true, k.Status, &metav1.Time{Time: at}
			out[snapshot.Name(k.JobID)] = s
		}
		return out
	}
	// The running job finished while no process watched.
	finished := slices.Clone(known)
	finished[0].Status = dlc.StatusSucceeded

	for name, tc := range map[string]struct {
		snapshots   []dlc.KnownJob
		mode        string
		keepsPrunes bool
	}{
		"agreeing":    {snapshots: known, mode: dlcv1alpha1.SyncModeIncremental, keepsPrunes: true},
		"disagreeing": {snapshots: finished, mode: dlcv1alpha1.SyncModeFull},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			q := incrementalQuery(now.Add(-time.Minute), known)
			q.Status.Snapshots = int32(len(known))
			state := &queryState{}
			restoreState(state, q, now)
			r := &JobQueryReconciler{Listers: fixedListers{&dlcfake.Lister{Jobs: jobs}}, Now: func() time.Time { return now }}
			l, err := r.list(context.Background(), &syncScope{query: q, state: state, started: now, owned: owned(tc.snapshots)})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(l.mode).To(Equal(tc.mode))
			if tc.keepsPrunes {
				g.Expect(state.absent).To(HaveKey("dlcgone"))
				g.Expect(state.restored).NotTo(BeNil())
			} else {
				g.Expect(state.absent).To(BeEmpty(), "a pending prune of a stale state counted as the first absence")
				g.Expect(state.restored).To(BeNil())
				g.Expect(state.lastFull.IsZero()).To(BeTrue())
			}
		})
	}
}
