package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/queryspec"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// syncScope is what one sync of one JobQuery reads and produces, passed from phase to phase.
type syncScope struct {
	query *dlcv1alpha1.JobQuery
	state *queryState
	// access holds the credentials; accessErr, when set, is a refusal decided before the sync.
	access    access
	accessErr error
	started   time.Time
	// owned are the query's snapshots before the sync, by name.
	owned  map[string]*dlcv1alpha1.DLCJobSnapshot
	listed *listing
	// memory is what the listing holds of the listing memory budget (released as each job is
	// written, and at the end of the sync).
	memory *dlc.Reservation
	// requestIDs are the RequestIds of the listing's answers, by job, for the snapshots written
	// from it (status.requestId).
	requestIDs *requestIDs
	// claims judges which queries hold a snapshot, memoizing what it reads for this sync.
	claims  *claimJudge
	written writeCounts
	stats   *dlcv1alpha1.SyncStats
}

// syncPhase is one step of a sync. A phase that fails ends the sync; nothing after it runs.
type syncPhase func(ctx context.Context, sc *syncScope) error

// sync runs the phases of a sync under its deadline and records the outcome in the status.
func (r *JobQueryReconciler) sync(ctx context.Context, sc *syncScope) ctrl.Result {
	q, st := sc.query, &sc.query.Status
	nowMeta := metav1.NewTime(sc.started)
	st.LastSyncTime = &nowMeta
	st.ObservedGeneration = q.Generation
	st.LastHandledReconcileAt = handledValue(q.Annotations[dlcv1alpha1.AnnotationRequestedAt])
	st.ObservedCredentialsVersion = sc.access.version

	ctx, cancel := context.WithTimeout(ctx, r.syncTimeout(q))
	defer cancel()
	sc.memory = r.ListingMemory.Reserve()
	defer sc.memory.Release()
	err := sc.accessErr
	for _, phase := range []syncPhase{
		r.readCredentials, // the Secret's AccessKey, read only now that a sync runs
		r.readSnapshots,   // what the query keeps now
		r.listJobs,        // what PAI-DLC lists (all, or only what changed)
		r.writeSnapshots,  // create, update and prune snapshots
	} {
		if err != nil {
			break
		}
		err = phase(ctx, sc)
	}
	err = timedOut(ctx, err)
	sc.stats.Duration = metav1.Duration{Duration: r.now().Sub(sc.started)}
	st.LastSyncStats = sc.stats
	if sc.listed != nil && r.AfterSync != nil {
		r.AfterSync(len(sc.listed.jobs))
	}
	lastSyncTimestamp.WithLabelValues(q.Namespace, q.Name).Set(float64(r.now().Unix()))
	if err != nil {
		return r.failed(ctx, sc, err)
	}
	return r.succeeded(ctx, sc)
}

// readSnapshots reads the query's snapshots from the cache.
func (r *JobQueryReconciler) readSnapshots(ctx context.Context, sc *syncScope) error {
	owned, err := r.ownedSnapshots(ctx, sc.query)
	sc.owned = owned
	return kubernetesError(err)
}

// listJobs lists the query's jobs and refuses a listing that moved under every walk.
func (r *JobQueryReconciler) listJobs(ctx context.Context, sc *syncScope) error {
	listed, err := r.list(ctx, sc)
	if listed == nil {
		return err
	}
	sc.listed = listed
	walk := &listed.walk
	sc.stats.Mode = listed.mode
	sc.stats.APICalls, sc.stats.Pages, sc.stats.Retries = int32(walk.APICalls), int32(walk.Pages), int32(walk.Retries)
	if err == nil && !walk.Consistent {
		err = &inconsistentError{walk.Inconsistency}
	}
	return err
}

// writeSnapshots brings the snapshots in step with the listing.
func (r *JobQueryReconciler) writeSnapshots(ctx context.Context, sc *syncScope) error {
	written, err := r.reconcileSnapshots(ctx, sc)
	sc.written = written
	sc.stats.Created, sc.stats.Updated = written.created, written.updated
	sc.stats.Deleted, sc.stats.Unchanged = written.deleted, written.unchanged
	if err != nil {
		return kubernetesError(err)
	}
	if written.conflicts > 0 {
		return &conflictError{written.conflicts}
	}
	return nil
}

// succeeded records a successful sync: what the query keeps, conditions, events, metrics and
// when to sync next.
func (r *JobQueryReconciler) succeeded(ctx context.Context, sc *syncScope) ctrl.Result {
	q, state, listed, written, now := sc.query, sc.state, sc.listed, sc.written, sc.started
	st := &q.Status
	walk := &listed.walk
	after := listed.kept(sc.owned, written.unmirrored, true)
	kept, counts := after.n, after.counts
	matched := walk.TotalCount
	if listed.mode == dlcv1alpha1.SyncModeFull {
		state.lastFull, state.fullKey = now, fullKey(q)
	} else {
		// An incremental listing keeps every matching job (a truncated query lists in full).
		matched = int64(kept)
	}
	if walk.Truncated && !st.Truncated {
		r.Recorder.Eventf(q, nil, corev1.EventTypeWarning, "Truncated", "Sync",
			"More jobs match than spec.maxJobs (%d) allows; the first %d in sortBy order are kept", q.Spec.MaxJobs, q.Spec.MaxJobs)
	}
	previous := readyReason(st.Conditions)
	previousMessage := readyMessage(st.Conditions)
	st.MatchedJobs, st.Snapshots, st.Truncated, st.JobStatusCounts = matched, int32(kept), walk.Truncated, counts
	recordIncremental(q, state, after.known)
	st.LastSuccessfulSyncTime = st.LastSyncTime
	st.ConsecutiveFailures = 0
	next := metav1.NewTime(now.Add(jitter(q.Spec.Interval.Duration)))
	st.NextSyncTime, state.nextSync = &next, next.Time
	message, reason := syncedMessage(kept, matched, walk.Truncated), dlcv1alpha1.ReasonSynced
	if listed.mode == dlcv1alpha1.SyncModeFull && walk.Complete && matched == 0 {
		// A wrong region, workspace or showOwn gives a successful, empty listing; say what
		// to check instead of a bare "0", and once as an event (the previous message had it).
		message = noJobsMessage(q)
		// A prefix, since the stored message may go on (snapshots waiting to be pruned).
		if !strings.HasPrefix(previousMessage, message) {
			r.Recorder.Eventf(q, nil, corev1.EventTypeWarning, "NoJobsMatched", "Sync", "%s", message)
		}
	}
	if pending := len(state.absent); pending > 0 {
		message += pendingMessage(pending)
	}
	if skipped := skippedMessage(walk.WithoutID, written.skipped); skipped != "" {
		message, reason = truncateMessage(message+"; "+skipped), dlcv1alpha1.ReasonJobsSkipped
		// Skipped fits whole in the message (maxSkippedBytes), so the previous one holds
		// it whenever the same jobs were skipped.
		if !strings.Contains(previousMessage, skipped) {
			r.Recorder.Eventf(q, nil, corev1.EventTypeWarning, reason, "Sync", "%s", skipped)
		}
	}
	setConditions(&st.Conditions, q.Generation, outcomeSynced, reason, message)
	if previous != "" && previous != dlcv1alpha1.ReasonSynced && previous != dlcv1alpha1.ReasonJobsSkipped {
		r.Recorder.Eventf(q, nil, corev1.EventTypeNormal, dlcv1alpha1.ReasonSynced, "Sync", "Syncing works again")
	}
	setJobCounts(q.Namespace, q.Name, counts)
	syncsTotal.WithLabelValues(q.Namespace, q.Name, "success").Inc()
	stats := st.LastSyncStats
	syncDuration.WithLabelValues("success", listed.mode).Observe(stats.Duration.Seconds())
	ctrl.LoggerFrom(ctx).V(1).Info("Synced", "mode", listed.mode, "jobs", kept, "matched", matched, "created", stats.Created,
		"updated", stats.Updated, "deleted", stats.Deleted, "unchanged", stats.Unchanged, "apiCalls", stats.APICalls)
	return ctrl.Result{RequeueAfter: next.Sub(now)}
}

// list resolves the lister and lists the query's jobs: only what changed when an incremental
// listing is due, otherwise every page.
func (r *JobQueryReconciler) list(ctx context.Context, sc *syncScope) (*listing, error) {
	q, now := sc.query, sc.started
	lister, err := r.Listers.Lister(dlc.Config{RegionID: q.Spec.RegionID, Endpoint: q.Spec.Endpoint, Static: sc.access.static,
		RoleArn: sc.access.roleArn, Tenant: q.Namespace})
	if err != nil {
		return nil, stalledError(dlcv1alpha1.ReasonInvalidSecret, "%v", err)
	}
	sc.requestIDs = &requestIDs{}
	lister = sc.requestIDs.wrap(lister)
	req, within := queryspec.Request(&q.Spec)
	// Every listing is held packed until it is known complete and consistent (a third of
	// its decoded size; writeListed restores each job as it writes it), within the memory
	// budget of all listings.
	opts := dlc.PageOptions{MaxJobs: int(q.Spec.MaxJobs), Within: within, Now: r.now, Pack: true, Memory: sc.memory}
	var spent dlc.WalkStats
	known := knownJobs(sc.owned)
	incremental := incrementalDue(q, sc.state, known, now)
	if incremental && !restoredAgrees(sc.state, known) {
		// The snapshots changed since the restored state was written: list in full.
		sc.state.forgetRestored()
		incremental = false
	}
	if incremental {
		changes, err := dlc.ListChanges(ctx, lister, req, known, dlc.ChangeOptions{PageOptions: opts})
		l := &listing{mode: dlcv1alpha1.SyncModeIncremental, jobs: changes.Jobs, walk: changes.Stats, gone: map[string]bool{}}
		for _, id := range changes.Gone {
			l.gone[snapshot.Name(id)] = true
		}
		var overBudget *dlc.OverBudgetError
		switch kept := l.kept(sc.owned, nil, false).n; {
		case errors.As(err, &overBudget):
			// The new and the moving jobs together may hold more than a full listing,
			// which keeps at most maxJobs: try that.
		case err != nil:
			return l, err
		case changes.Stats.Complete && (q.Spec.MaxJobs <= 0 || kept <= int(q.Spec.MaxJobs)):
			return l, nil
		}
		// More jobs than maxJobs now (which ones to keep depends on every job), or more
		// new jobs than one filter can page through: list in full, counting the calls spent.
		spent = changes.Stats
	}
	// The jobs of the incremental listing are dropped; the full one starts from none.
	sc.memory.Release()
	jobs, walk, err := dlc.ListAll(ctx, lister, req, opts)
	walk.APICalls, walk.Pages, walk.Retries = walk.APICalls+spent.APICalls, walk.Pages+spent.Pages, walk.Retries+spent.Retries
	return &listing{mode: dlcv1alpha1.SyncModeFull, jobs: jobs, walk: walk}, err
}

// onlySyncTimesChanged reports whether two statuses differ at most in the times and stats every
// sync sets; such a change is not worth a write.
func onlySyncTimesChanged(before, after *dlcv1alpha1.JobQueryStatus) bool {
	a := after.DeepCopy()
	a.LastSyncTime, a.LastSuccessfulSyncTime, a.NextSyncTime, a.LastSyncStats =
		before.LastSyncTime, before.LastSuccessfulSyncTime, before.NextSyncTime, before.LastSyncStats
	return equality.Semantic.DeepEqual(before, a)
}

// failed records a failed sync: conditions, an event when the reason changes, and when to retry.
func (r *JobQueryReconciler) failed(ctx context.Context, sc *syncScope, err error) ctrl.Result {
	q, state, now := sc.query, sc.state, sc.started
	st := &q.Status
	reason, retryable := listingReason(err)
	message := truncateMessage(errorMessage(err))
	previous := readyReason(st.Conditions)
	st.ConsecutiveFailures++
	outcome, delay := outcomeRetrying, retryDelay(st.ConsecutiveFailures)
	switch {
	case reason == dlcv1alpha1.ReasonSnapshotConflict:
		// Another writer raced us: retry soon, but back off if it keeps happening.
		delay = conflictDelay(st.ConsecutiveFailures)
	case !retryable && recheckedWhenStalled(reason):
		outcome, delay = outcomeStalled, stalledRecheck
	case !retryable:
		outcome, delay = outcomeStalled, 0
	}
	setConditions(&st.Conditions, q.Generation, outcome, reason, message)
	forgetUnconfirmedPrunes(q, state)
	st.NextSyncTime, state.nextSync = nil, time.Time{}
	var result ctrl.Result
	if delay > 0 {
		next := metav1.NewTime(now.Add(delay))
		st.NextSyncTime, state.nextSync = &next, next.Time
		result = ctrl.Result{RequeueAfter: delay}
	}
	if reason != previous {
		r.Recorder.Eventf(q, nil, corev1.EventTypeWarning, reason, "Sync", "%s", eventNote(reason, err))
	}
	syncsTotal.WithLabelValues(q.Namespace, q.Name, reason).Inc()
	syncDuration.WithLabelValues("failure", st.LastSyncStats.Mode).Observe(st.LastSyncStats.Duration.Seconds())
	ctrl.LoggerFrom(ctx).Info("Sync failed", "reason", reason, "retrying", retryable, "consecutiveFailures", st.ConsecutiveFailures,
		"error", message)
	return result
}

// errorMessage is the condition message of a failure: the API's code and message, without the
// request ID, which would change the status at every retry.
func errorMessage(err error) string {
	var e *dlc.Error
	if errors.As(err, &e) {
		code := e.Code
		if code == "" {
			code = string(e.Kind)
		}
		if e.Message == "" {
			return "ListJobs failed: " + code
		}
		return "ListJobs failed: " + code + ": " + e.Message
	}
	return err.Error()
}

// eventNote is the stable note of a failure event: no request IDs, times or counts.
func eventNote(reason string, err error) string {
	var e *dlc.Error
	if errors.As(err, &e) && e.Code != "" {
		return fmt.Sprintf("Syncing failed: %s (%s)", reason, e.Code)
	}
	var refused *reasonError
	if errors.As(err, &refused) && !refused.retryable {
		return truncateMessage(refused.Error())
	}
	return "Syncing failed: " + reason
}
