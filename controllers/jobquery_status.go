package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// The functions in this file compute JobQuery conditions; they are pure and table-tested. They
// use meta.SetStatusCondition, which keeps lastTransitionTime while a status does not change.

// outcome is how a sync ended, as the conditions report it.
type outcome int

const (
	outcomeSynced outcome = iota
	outcomeRetrying
	outcomeStalled
	outcomeSuspended
)

// setConditions writes Ready, Reconciling and Stalled (kstatus) for an outcome.
func setConditions(conds *[]metav1.Condition, generation int64, o outcome, reason, message string) {
	set := func(t string, s metav1.ConditionStatus, r, m string) {
		meta.SetStatusCondition(conds, metav1.Condition{Type: t, Status: s, Reason: r, Message: m, ObservedGeneration: generation})
	}
	switch o {
	case outcomeSynced:
		if reason == "" {
			reason = dlcv1alpha1.ReasonSynced
		}
		set(dlcv1alpha1.ConditionReady, metav1.ConditionTrue, reason, message)
		set(dlcv1alpha1.ConditionReconciling, metav1.ConditionFalse, dlcv1alpha1.ReasonSynced, "The last sync succeeded")
		set(dlcv1alpha1.ConditionStalled, metav1.ConditionFalse, dlcv1alpha1.ReasonSynced, "The last sync succeeded")
	case outcomeRetrying:
		set(dlcv1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
		set(dlcv1alpha1.ConditionReconciling, metav1.ConditionTrue, reason, "Retrying: "+message)
		set(dlcv1alpha1.ConditionStalled, metav1.ConditionFalse, reason, "The failure may pass without a change")
	case outcomeStalled:
		set(dlcv1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
		set(dlcv1alpha1.ConditionReconciling, metav1.ConditionFalse, reason, "Waiting for a change to the spec or the credentials")
		set(dlcv1alpha1.ConditionStalled, metav1.ConditionTrue, reason, message)
	case outcomeSuspended:
		set(dlcv1alpha1.ConditionReady, metav1.ConditionFalse, dlcv1alpha1.ReasonSuspended, "Syncing is suspended")
		set(dlcv1alpha1.ConditionReconciling, metav1.ConditionFalse, dlcv1alpha1.ReasonSuspended, "Syncing is suspended")
		set(dlcv1alpha1.ConditionStalled, metav1.ConditionFalse, dlcv1alpha1.ReasonSuspended, "Syncing is suspended")
	}
}

// readyReason returns the reason of the Ready condition, "" when there is none.
func readyReason(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, dlcv1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// readyMessage returns the message of the Ready condition, "" when there is none.
func readyMessage(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, dlcv1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

// maxSkippedBytes bounds skippedMessage, "..." included, so that the Ready message, which adds
// at most syncedMessage and pendingMessage before it, always keeps it whole within its 1 KiB.
// The next sync decides whether the skipped jobs changed by looking for this text in the
// stored message; cut there instead (three refusals quoting the apiserver's errors reach 1 KiB),
// it was never found, and every sync emitted JobsSkipped again.
const maxSkippedBytes = 768

// skippedMessage says which jobs a successful sync could not mirror: those the API sent without
// an ID, and those whose snapshot the apiserver refused (up to three named), cut to
// maxSkippedBytes. "" when none.
func skippedMessage(withoutID int, refused []string) string {
	var parts []string
	if withoutID > 0 {
		parts = append(parts, fmt.Sprintf("skipped %d job(s) the API sent without a JobId", withoutID))
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		named := refused[:min(len(refused), 3)]
		parts = append(parts, fmt.Sprintf("could not write the snapshot of %d job(s): %s", len(refused), strings.Join(named, "; ")))
	}
	return cut(strings.Join(parts, "; "), maxSkippedBytes-len("..."))
}

// noJobsMessage is the Synced message of a complete listing that matched no job: what to check.
func noJobsMessage(q *dlcv1alpha1.JobQuery) string {
	where := "region " + q.Spec.RegionID
	if q.Spec.Endpoint != "" {
		where += " at " + q.Spec.Endpoint
	}
	return truncateMessage(fmt.Sprintf("Keeping 0 matching jobs: the complete listing of %s matched no job. Check that the jobs "+
		"run in this region (spec.regionId), the filter (workspaceId, jobType, timeRange: the last 168h unless set), "+
		"showOwn, and that the credentials' RAM identity may list the workspace's jobs", where))
}

// pendingMessage counts, in the Synced message, the snapshots of jobs one listing found gone.
func pendingMessage(pending int) string {
	return fmt.Sprintf("; %d snapshot(s) of jobs no longer listed are removed if the next listing confirms it", pending)
}

// isStalled reports whether Stalled is True.
func isStalled(conds []metav1.Condition) bool {
	return meta.IsStatusConditionTrue(conds, dlcv1alpha1.ConditionStalled)
}

// syncedMessage is the stable message of a successful sync.
func syncedMessage(kept int, matched int64, truncated bool) string {
	if truncated {
		return fmt.Sprintf("Keeping %d of %d matching jobs (maxJobs)", kept, matched)
	}
	return fmt.Sprintf("Keeping %d matching jobs", kept)
}

// DefaultStatusRefreshInterval is the shortest time between two JobQuery status writes made only
// to keep lastSyncTime fresh, unless Options.StatusRefreshInterval says otherwise.
const DefaultStatusRefreshInterval = 5 * time.Minute

// Reasons of a JobQuery status write, the reason label of dlcsync_jobquery_status_writes_total.
const (
	statusWriteChange    = "change"
	statusWriteFreshness = "freshness"
)

// statusWrite says why a reconcile writes the JobQuery status, "" when it does not. A change
// beyond the sync times and stats is always written (statusWriteChange). A sync that changed
// only those is written when the written lastSyncTime is at least refresh old
// (statusWriteFreshness), so that lastSyncTime and lastSuccessfulSyncTime stay readable as
// freshness at a cost of at most one write per refresh. The times and lastSyncStats are
// always written together, so the stats describe the sync that started at lastSyncTime.
func statusWrite(before, after *dlcv1alpha1.JobQueryStatus, refresh time.Duration) string {
	switch {
	case equality.Semantic.DeepEqual(before, after):
		return ""
	case !onlySyncTimesChanged(before, after):
		return statusWriteChange
	case after.LastSyncTime == nil:
		return ""
	case before.LastSyncTime == nil || after.LastSyncTime.Sub(before.LastSyncTime.Time) >= refresh:
		return statusWriteFreshness
	}
	return ""
}

// statusRefresh is how often a quiet query's status is refreshed: every max(interval, the
// administrator's refresh interval). The interval counts less its 10% jitter, because
// syncs are that much closer at times; with the full interval a long-interval query would skip
// every other refresh and read up to two intervals old. It still writes at most once per sync.
func (r *JobQueryReconciler) statusRefresh(q *dlcv1alpha1.JobQuery) time.Duration {
	refresh := r.StatusRefreshInterval
	if refresh <= 0 {
		refresh = DefaultStatusRefreshInterval
	}
	interval := q.Spec.Interval.Duration
	return max(interval-interval/10, refresh)
}

// retryDelay is the wait after the n-th consecutive transient failure: 5s doubling, capped at
// 10m, so a throttled or failing API is not hammered.
func retryDelay(n int32) time.Duration { return doubling(5*time.Second, 10*time.Minute, n) }

// truncateMessage keeps condition messages within a readable size: 1 KiB with the marker.
func truncateMessage(s string) string {
	const maxLen = 1024
	return cut(s, maxLen-len("..."))
}

// cut shortens s to at most n bytes and a "..." marker, on a rune boundary, so that a cut
// message stays valid UTF-8 (an event's note and a condition's message hold at most 1 KiB).
func cut(s string, n int) string {
	if len(s) <= n+len("...") {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
