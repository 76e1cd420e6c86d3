package controllers

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// defaultFullResyncInterval applies when spec.fullResyncInterval is unset; with a longer
// interval every sync is then a full one.
const defaultFullResyncInterval = time.Hour

// queryState is what this process remembers of a JobQuery between syncs. It is not persisted: a
// sync that changes nothing writes nothing, and after a restart the first sync lists in full.
type queryState struct {
	// nextSync is when the next periodic sync is due (zero: unknown, use the status).
	nextSync time.Time
	// lastFull is when the last successful full listing ran, and fullKey what it listed for.
	lastFull time.Time
	fullKey  string
	// absent are the snapshots a complete listing did not return. Note: one listing's word is
	// not enough to delete: a snapshot is pruned only when the next complete listing does not
	// return its job either, so a single wrong answer can never remove anything.
	absent map[string]bool
	// absentKey is the fullKey the absences were seen under: a new spec or new credentials
	// start over.
	absentKey string
	// requestIDs are the RequestIds of the listing of the sync in progress (nil in between).
	requestIDs *requestIDs
}

// state returns the memory of a query and whether it existed before this call.
func (r *JobQueryReconciler) state(key types.NamespacedName) (*queryState, bool) {
	v, loaded := r.queries.LoadOrStore(key, &queryState{})
	return v.(*queryState), loaded
}

// fullKey names what a full listing listed for: the spec generation and the credentials (other
// credentials may see other jobs). A change of either calls for a full listing; a requested
// reconcile (requestedAt) does not: it asks for a sync now, not for a more expensive one.
func fullKey(q *dlcv1alpha1.JobQuery) string {
	return fmt.Sprintf("%d|%s", q.Generation, q.Status.ObservedCredentialsVersion)
}

// incrementalFilter reports whether every criterion of the query is fixed when a job is created,
// so that a job matches for its whole life or never: only then can a sync skip terminal jobs.
// The rules, with the API reference's reasons, are in one place: dlc.FilterRules.
func incrementalFilter(spec *dlcv1alpha1.JobQuerySpec) bool {
	req, _ := buildRequest(spec)
	return dlc.FixedAtCreation(req)
}

// incrementalDue reports whether this sync may list changes only: the filter allows it, a full
// listing of the same spec and credentials ran within fullResyncInterval, the query was not
// truncated, it keeps at least one job to start from, and every snapshot it counted last time is
// still there (one deleted by hand is restored by a full listing, at the next sync).
func incrementalDue(q *dlcv1alpha1.JobQuery, state *queryState, known []dlc.KnownJob, now time.Time) bool {
	every := defaultFullResyncInterval
	if q.Spec.FullResyncInterval != nil {
		every = q.Spec.FullResyncInterval.Duration
	}
	return every > 0 && len(known) > 0 && len(known) == int(q.Status.Snapshots) && !q.Status.Truncated && incrementalFilter(&q.Spec) &&
		!state.lastFull.IsZero() && state.fullKey == fullKey(q) && now.Sub(state.lastFull) < every &&
		cheaperThanFull(known)
}

// cheaperThanFull reports whether listing changes takes fewer calls than listing every known
// job: one call for new jobs and one per page of moving jobs, against one per page of jobs. When
// most jobs are moving, the full listing costs no more and also finds deletions.
func cheaperThanFull(known []dlc.KnownJob) bool {
	moving := 0
	for _, k := range known {
		if !dlc.IsTerminal(k.Status) {
			moving++
		}
	}
	pages := func(n int) int { return (n + dlc.MaxPageSize - 1) / dlc.MaxPageSize }
	return 1+pages(moving) < pages(len(known))
}

// knownJobs are the jobs of the snapshots that still match, as ListChanges needs them.
func knownJobs(owned map[string]*dlcv1alpha1.DLCJobSnapshot) []dlc.KnownJob {
	out := make([]dlc.KnownJob, 0, len(owned))
	for _, s := range owned {
		// Note: status.job is not cached (TrimForCache); createdAt holds the creation time.
		if !s.Status.Matching || s.Status.CreatedAt == nil {
			continue
		}
		out = append(out, dlc.KnownJob{JobID: s.Spec.JobID, GmtCreateTime: dlc.FormatTime(s.Status.CreatedAt.Time), Status: s.Status.Phase})
	}
	return out
}

// listing is what a sync learnt from the API.
type listing struct {
	mode string
	// jobs are the listed jobs: every kept job (Full) or the new and moving ones (Incremental).
	jobs []dlc.JobItem
	// gone are the snapshot names of jobs no longer listed (Incremental).
	gone map[string]bool
	walk dlc.WalkStats
}

// kept counts the jobs the query keeps as snapshots after the listing, by status: the listed
// jobs but those whose snapshot could not be written and does not exist (unmirrored) and, in an
// incremental listing, the matching snapshots it did not need to read.
func (l *listing) kept(owned map[string]*dlcv1alpha1.DLCJobSnapshot, unmirrored []string) (int, map[string]int32) {
	counts := map[string]int32{}
	listed := make(map[string]bool, len(l.jobs))
	missing := sets.New(unmirrored...)
	n := 0
	for i := range l.jobs {
		name := snapshot.Name(l.jobs[i].JobID)
		listed[name] = true
		if missing.Has(name) {
			continue
		}
		counts[countedStatus(l.jobs[i].Status)]++
		n++
	}
	if l.mode == dlcv1alpha1.SyncModeIncremental {
		for name, s := range owned {
			if s.Status.Matching && !listed[name] && !l.gone[name] {
				counts[countedStatus(s.Status.Phase)]++
				n++
			}
		}
	}
	return n, counts
}
