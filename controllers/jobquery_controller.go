// Package controllers holds the reconcilers of dlcsync.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/endpoints"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// FieldOwner is the server-side apply field manager of everything dlcsync writes.
const FieldOwner = "dlcsync"

// snapshotsFinalizer holds every JobQuery until its deletion has been applied to its snapshots
// under the deletionPolicy the query has when it is deleted (Orphan: released; Delete: claimed by
// owner references, which the garbage collector follows). Note: on every query, not only Orphan
// ones: a finalizer cannot be added once a deletion has started, so a query switched to Orphan and
// deleted before the manager saw the switch would otherwise lose its snapshots.
const snapshotsFinalizer = "dlc.dlcsync.io/snapshots"

// legacyOrphanFinalizer is what releases before 0.4 put on Orphan queries only; it is replaced by
// snapshotsFinalizer and honoured the same way.
const legacyOrphanFinalizer = "dlc.dlcsync.io/orphan-snapshots"

// JobQueryReconciler keeps the DLCJobSnapshots of a JobQuery in step with PAI-DLC ListJobs.
type JobQueryReconciler struct {
	client.Client
	// APIReader reads Secrets uncached: the manager never caches Secret data.
	APIReader client.Reader
	// events sends the CloudEvents of queries with spec.cloudEvents (nil: none are sent).
	events   *cloudEvents
	Recorder recorder.EventRecorder
	Listers  ListerFactory
	// Endpoints are the endpoints JobQueries may call (PAI-DLC's own plus --allowed-endpoints).
	Endpoints endpoints.Policy
	// AmbientNamespaces are the namespaces whose JobQueries may use the operator's own credentials.
	AmbientNamespaces map[string]bool
	// AssumableRoles are the RAM roles JobQueries of each namespace may assume (ambient.roleArn).
	AssumableRoles RolePolicy
	// RevealNamespaces are the namespaces whose JobQueries may mirror fields redacted by default.
	RevealNamespaces map[string]bool
	// SyncTimeout, if set, replaces the deadline of every sync (see syncTimeout).
	SyncTimeout time.Duration
	// StatusRefreshInterval is the shortest time between two status writes of a query whose
	// syncs change nothing (see statusRefresh); 0 means DefaultStatusRefreshInterval.
	StatusRefreshInterval time.Duration
	// MaxConcurrentSyncs bounds parallel syncs (default 4).
	MaxConcurrentSyncs int
	// Now returns the current time (tests pin it).
	Now func() time.Time
	// AfterSync, if set, is called after every sync that listed jobs, with how many the listing
	// held (see Options.AfterSync).
	AfterSync func(listedJobs int)
	// ListingMemory bounds what the listings of all syncs hold at once (nil: no bound).
	ListingMemory *dlc.MemoryBudget

	// queries holds a *queryState per JobQuery seen since this process started: its schedule
	// and its last full listing.
	queries sync.Map
	// fairness counts the running syncs of each namespace.
	fairness namespaceSlots
	// claimsChecked holds, per JobQuery, the generation whose claims on its snapshots this
	// process has put in the form of its deletionPolicy (see reconcileDeletionPolicy).
	claimsChecked sync.Map
}

// +kubebuilder:rbac:groups=dlc.dlcsync.io,resources=jobqueries,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=dlc.dlcsync.io,resources=jobqueries/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=dlc.dlcsync.io,resources=jobqueries/finalizers,verbs=update
// +kubebuilder:rbac:groups=dlc.dlcsync.io,resources=dlcjobsnapshots,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core,resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile syncs one JobQuery when it is due: on creation, on a spec, annotation or Secret
// change, and every interval.
func (r *JobQueryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	q := &dlcv1alpha1.JobQuery{}
	if err := r.Get(ctx, req.NamespacedName, q); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.events.forget(req.NamespacedName)
			forgetQuery(req.Namespace, req.Name)
			r.queries.Delete(req.NamespacedName)
			r.claimsChecked.Delete(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !q.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, q)
	}
	if state, ok := r.knownState(q); ok && cacheBehind(q, state, r.now()) {
		return ctrl.Result{RequeueAfter: cacheLagWait}, nil
	}
	if err := r.reconcileDeletionPolicy(ctx, q); err != nil {
		return ctrl.Result{}, err
	}
	sinkRefused, err := r.events.prepare(q, func() ([]*dlcv1alpha1.DLCJobSnapshot, error) {
		owned, err := r.ownedSnapshots(ctx, q)
		return slices.Collect(maps.Values(owned)), err
	})
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("reading the snapshots of %s for its CloudEvents: %w", klog.KObj(q), err)
	}

	original := q.DeepCopy()
	result, err := r.reconcileSync(ctx, q)
	r.events.report(q, sinkRefused)
	r.events.refusedEvent(r, q, original.Status.Conditions, sinkRefused)
	// Note: one status patch per reconcile; when nothing but the sync times and stats changed,
	// none unless the written times are older than statusRefresh (statusWrite).
	if why := statusWrite(&original.Status, &q.Status, r.statusRefresh(q)); why != "" {
		if patchErr := r.patchStatus(ctx, original, q); patchErr != nil {
			if errors.Is(patchErr, errStaleStatus) {
				// The stored status is newer than the one this reconcile read: it stays, and
				// the query waits until the cache shows it (cacheBehind).
				return ctrl.Result{RequeueAfter: cacheLagWait}, err
			}
			return ctrl.Result{}, errors.Join(err, fmt.Errorf("patching status of %s: %w", klog.KObj(q), patchErr))
		}
		queryStatusWritesTotal.WithLabelValues(why).Inc()
		r.wroteStatus(q)
	}
	return result, err
}

// errStaleStatus says a status was computed from a query older than the stored one's status.
var errStaleStatus = errors.New("the status was computed from a query older than the stored one")

// patchStatus writes q's status, computed from original, guarded by the resourceVersion this
// reconcile last read or wrote. Note: a merge patch sends only what differs from its base, so one
// computed from an older query than the stored one would keep fields of a newer status (a failure
// count beside Ready=True). When the query changed meanwhile, the status is written onto the
// stored query if the stored status is still the one it was computed from (a user's edit during
// the sync); otherwise it is dropped with errStaleStatus: the stored one is newer, and this
// process waits for its cache to show it (cacheBehind) before it looks at the query again.
func (r *JobQueryReconciler) patchStatus(ctx context.Context, original, q *dlcv1alpha1.JobQuery) error {
	// Note: the sync may have patched q itself (its finalizer): q carries that version.
	original.ResourceVersion = q.ResourceVersion
	err := r.Status().Patch(ctx, q, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{}))
	if !apierrors.IsConflict(err) {
		return err
	}
	stored := &dlcv1alpha1.JobQuery{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(q), stored); err != nil {
		return fmt.Errorf("reading %s after a conflict: %w", klog.KObj(q), err)
	}
	if !equality.Semantic.DeepEqual(stored.Status, original.Status) {
		r.wroteStatus(stored)
		return errStaleStatus
	}
	onto := stored.DeepCopy()
	onto.Status = q.Status
	if err := r.Status().Patch(ctx, onto, client.MergeFromWithOptions(stored, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			return errStaleStatus
		}
		return err
	}
	q.ResourceVersion = onto.ResourceVersion
	return nil
}

// wroteStatus records the lastSyncTime this process just wrote for q (see cacheBehind).
func (r *JobQueryReconciler) wroteStatus(q *dlcv1alpha1.JobQuery) {
	if q.Status.LastSyncTime == nil {
		return
	}
	if state, ok := r.knownState(q); ok {
		state.wroteSync, state.wroteAt = q.Status.LastSyncTime.Time, r.now()
	}
}

// knownState is the state of q when this process has one (r.state makes one).
func (r *JobQueryReconciler) knownState(q *dlcv1alpha1.JobQuery) (*queryState, bool) {
	v, ok := r.queries.Load(types.NamespacedName{Namespace: q.Namespace, Name: q.Name})
	if !ok {
		return nil, false
	}
	return v.(*queryState), true
}

// cacheBehind reports whether q, read from the manager's cache, predates the status this process
// wrote a moment ago: the status' watch event has not reached the cache yet. A reconcile woken
// in that moment (by a Secret's late add event, a CloudEvents wake) would take the query for
// never synced and sync it again. Trusted for cacheLagLimit only: a status someone else reset
// must not hold the query back for good.
func cacheBehind(q *dlcv1alpha1.JobQuery, state *queryState, now time.Time) bool {
	if state.wroteAt.IsZero() || now.Sub(state.wroteAt) > cacheLagLimit {
		return false
	}
	// Note: metav1.Time is stored in whole seconds.
	wrote := state.wroteSync.Truncate(time.Second)
	return q.Status.LastSyncTime == nil || q.Status.LastSyncTime.Time.Before(wrote)
}

const (
	// cacheLagLimit is how long after its own status write this process waits for its cache to
	// show it.
	cacheLagLimit = 30 * time.Second
	// cacheLagWait is the wait before a query read from a lagging cache is looked at again.
	cacheLagWait = 200 * time.Millisecond
)

// reconcileSync decides whether the query is due and syncs it if so.
func (r *JobQueryReconciler) reconcileSync(ctx context.Context, q *dlcv1alpha1.JobQuery) (ctrl.Result, error) {
	now := r.now()
	if q.Spec.Suspend {
		q.Status.ObservedGeneration = q.Generation
		q.Status.NextSyncTime = nil
		setConditions(&q.Status.Conditions, q.Generation, outcomeSuspended, "", "")
		// Note: a suspended query does not sync; its last-sync gauge would grow old and fire
		// every staleness alert (DLCSyncStale) for a pause someone chose.
		lastSyncTimestamp.DeleteLabelValues(q.Namespace, q.Name)
		return ctrl.Result{}, nil
	}
	acc, accessErr := r.resolveAccess(ctx, q)
	var refused *reasonError
	if accessErr != nil && (!errors.As(accessErr, &refused) || refused.retryable) {
		return ctrl.Result{}, accessErr
	}
	state, seen := r.state(types.NamespacedName{Namespace: q.Namespace, Name: q.Name})
	if !seen {
		// A restart or a failover: go on from where the last process left the query.
		restoreState(state, q, now)
	}
	if wait, due := due(q, state, seen, acc.version, now); !due {
		if wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		return ctrl.Result{}, nil
	}
	// Note: one namespace may hold at most half of the sync workers, so a tenant whose endpoint
	// hangs cannot starve the others; its queries wait their turn without a status write.
	release, ok := r.fairness.acquire(q.Namespace, r.concurrency())
	if !ok {
		return ctrl.Result{RequeueAfter: fairnessWait}, nil
	}
	defer release()
	defer r.events.hold(q.Namespace, now)()
	sc := &syncScope{query: q, state: state, access: acc, accessErr: accessErr, started: now, stats: &dlcv1alpha1.SyncStats{}}
	return r.sync(ctx, sc), nil
}

// due reports whether a sync must run now; when not, it returns how long to wait (0: until
// something changes). seen is false for the first look at a query since this process started.
func due(q *dlcv1alpha1.JobQuery, state *queryState, seen bool, credVersion string, now time.Time) (time.Duration, bool) {
	st := &q.Status
	// Note: after a restart, restoreState took the schedule from the status, capped.
	next := state.nextSync
	switch {
	case st.LastSyncTime == nil, // never synced: first in line
		st.ObservedGeneration != q.Generation,
		handledValue(q.Annotations[dlcv1alpha1.AnnotationRequestedAt]) != st.LastHandledReconcileAt,
		credVersion != "" && credVersion != st.ObservedCredentialsVersion:
		return 0, true
	case isStalled(st.Conditions) && !seen:
		// A new process may run with other flags (--allowed-endpoints, --reveal-namespaces,
		// --ambient-credentials-namespaces): look again once.
		return 0, true
	case isStalled(st.Conditions):
		// Nothing in the cluster changed since a failure that only a change can fix; but a RAM
		// policy or a disabled AccessKey is fixed in Alibaba Cloud, where no watch can see it:
		// look again now and then.
		if !recheckedWhenStalled(readyReason(st.Conditions)) {
			return 0, false
		}
		last := now
		if st.LastSyncTime != nil {
			last = st.LastSyncTime.Time
		}
		if wait := last.Add(stalledRecheck).Sub(now); wait > 0 {
			return wait, false
		}
		return 0, true
	case next.IsZero() || !now.Before(next):
		if !seen {
			// Note: after a restart every overdue query would sync at once; spread them over
			// up to a minute (at most their interval).
			spread := min(q.Spec.Interval.Duration, time.Minute)
			return time.Duration(rand.Int64N(int64(spread))) + time.Second, false
		}
		return 0, true
	}
	return next.Sub(now), false
}

// stalledRecheck is how often a query stalled by a cause outside the cluster is tried again.
const stalledRecheck = 10 * time.Minute

// recheckedWhenStalled reports whether a stalled reason can be fixed outside the cluster.
func recheckedWhenStalled(reason string) bool {
	// Note: a listing too large for the memory budget may fit once jobs are deleted.
	return reason == dlcv1alpha1.ReasonUnauthorized || reason == dlcv1alpha1.ReasonForbidden ||
		reason == dlcv1alpha1.ReasonListingTooLarge
}

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
	memory  *dlc.Reservation
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
	sc.state.requestIDs = nil
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
	sc.stats.Created, sc.stats.Updated, sc.stats.Deleted, sc.stats.Unchanged = written.created, written.updated, written.deleted, written.unchanged
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
	kept, counts := listed.kept(sc.owned, written.unmirrored)
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
	recordIncremental(q, state, listed.knownAfter(sc.owned, written.unmirrored))
	st.LastSuccessfulSyncTime = st.LastSyncTime
	st.ConsecutiveFailures = 0
	next := metav1.NewTime(now.Add(jitter(q.Spec.Interval.Duration)))
	st.NextSyncTime, state.nextSync = &next, next.Time
	message, reason := syncedMessage(kept, matched, walk.Truncated), dlcv1alpha1.ReasonSynced
	if listed.mode == dlcv1alpha1.SyncModeFull && walk.Complete && matched == 0 {
		// Note: a wrong region, workspace or showOwn gives a successful, empty listing; say what
		// to check instead of a bare "0", and once as an event (the previous message had it).
		message = noJobsMessage(q)
		// Note: a prefix, since the stored message may go on (snapshots waiting to be pruned).
		if !strings.HasPrefix(previousMessage, message) {
			r.Recorder.Eventf(q, nil, corev1.EventTypeWarning, "NoJobsMatched", "Sync", "%s", message)
		}
	}
	if pending := len(state.absent); pending > 0 {
		message += pendingMessage(pending)
	}
	if skipped := skippedMessage(walk.WithoutID, written.skipped); skipped != "" {
		message, reason = truncateMessage(message+"; "+skipped), dlcv1alpha1.ReasonJobsSkipped
		// Note: skipped fits whole in the message (maxSkippedBytes), so the previous one holds
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
	sc.state.requestIDs = &requestIDs{}
	lister = sc.state.requestIDs.wrap(lister)
	req, within := buildRequest(&q.Spec)
	// Note: every listing is held packed until it is known complete and consistent (a third of
	// its decoded size; reconcileSnapshots unpacks each job as it writes it), within the memory
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
		switch kept, _ := l.kept(sc.owned, nil); {
		case errors.As(err, &overBudget):
			// Note: the new and the moving jobs together may hold more than a full listing,
			// which keeps at most maxJobs: try that.
		case err != nil:
			return l, err
		case changes.Stats.Complete && (q.Spec.MaxJobs <= 0 || kept <= int(q.Spec.MaxJobs)):
			return l, nil
		}
		// Note: more jobs than maxJobs now (which ones to keep depends on every job), or more
		// new jobs than one filter can page through: list in full, counting the calls spent.
		spent = changes.Stats
	}
	// Note: the jobs of the incremental listing are dropped; the full one starts from none.
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

// jitter spreads an interval by ±10%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// maxJitter is the longest wait jitter returns for an interval.
func maxJitter(d time.Duration) time.Duration { return d + d/10 }

func (r *JobQueryReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// reconcileFinalizer puts snapshotsFinalizer on the query, in place of the legacy one.
func (r *JobQueryReconciler) reconcileFinalizer(ctx context.Context, q *dlcv1alpha1.JobQuery) error {
	if controllerutil.ContainsFinalizer(q, snapshotsFinalizer) && !controllerutil.ContainsFinalizer(q, legacyOrphanFinalizer) {
		return nil
	}
	original := q.DeepCopy()
	controllerutil.AddFinalizer(q, snapshotsFinalizer)
	controllerutil.RemoveFinalizer(q, legacyOrphanFinalizer)
	// Note: finalizers are a list; a merge patch replaces it whole, so without the lock a
	// finalizer another controller added since our read would be dropped.
	if err := r.Patch(ctx, q, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("updating the finalizer of %s: %w", klog.KObj(q), err)
	}
	return nil
}

// reconcileDelete applies the deletionPolicy the query has now to its snapshots, then lets the
// query go: under Orphan it releases them; under Delete it makes sure every one it holds carries
// its owner reference (a claim may still be in the holders form of an earlier Orphan policy), so
// that the garbage collector deletes those no other query holds.
func (r *JobQueryReconciler) reconcileDelete(ctx context.Context, q *dlcv1alpha1.JobQuery) error {
	r.events.forget(types.NamespacedName{Namespace: q.Namespace, Name: q.Name})
	forgetQuery(q.Namespace, q.Name)
	r.forgetClaims(q)
	if !controllerutil.ContainsFinalizer(q, snapshotsFinalizer) && !controllerutil.ContainsFinalizer(q, legacyOrphanFinalizer) {
		return nil
	}
	var err error
	if q.Spec.Snapshot.DeletionPolicy == dlcv1alpha1.DeletionPolicyOrphan {
		err = r.releaseAll(ctx, q)
	} else {
		err = r.reconcileClaims(ctx, q)
	}
	if err != nil {
		return err
	}
	original := q.DeepCopy()
	controllerutil.RemoveFinalizer(q, snapshotsFinalizer)
	controllerutil.RemoveFinalizer(q, legacyOrphanFinalizer)
	if err := r.Patch(ctx, q, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("removing the finalizer of %s: %w", klog.KObj(q), err)
	}
	return nil
}

// SetupWithManager registers the reconciler: JobQueries (spec and annotation changes) and the
// metadata of Secrets that JobQueries reference.
func (r *JobQueryReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := SetupIndexes(ctx, mgr); err != nil {
		return err
	}
	concurrency := r.concurrency()
	bld := ctrl.NewControllerManagedBy(mgr).
		For(&dlcv1alpha1.JobQuery{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{},
			predicate.AnnotationChangedPredicate{}))).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.queriesOfSecret))
	if r.events != nil {
		if err := r.setupCloudEvents(ctx, mgr); err != nil {
			return err
		}
		// The delivery workers ask for status writes of their queries through this channel.
		bld = bld.WatchesRawSource(source.Channel(r.events.wake, &handler.EnqueueRequestForObject{}))
	}
	// Note: snapshots are not watched for reconciles (Owns): every change to them comes from
	// this controller, and each sync compares against the cache anyway.
	return bld.
		WithOptions(controller.Options{
			// Note: one more goroutine than sync slots, so that a reconcile that only finds its
			// namespace's share taken (or a status write) is never stuck behind hanging syncs.
			MaxConcurrentReconciles: concurrency + 1,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute),
		}).
		Named("jobquery").
		Complete(r)
}

// setupCloudEvents runs the CloudEvents sender with the manager's leadership and feeds it the
// transitions of snapshot updates (another query's write of a shared snapshot).
func (r *JobQueryReconciler) setupCloudEvents(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.Add(r.events); err != nil {
		return fmt.Errorf("adding the CloudEvents sender: %w", err)
	}
	informer, err := mgr.GetCache().GetInformer(ctx, &dlcv1alpha1.DLCJobSnapshot{})
	if err != nil {
		return fmt.Errorf("getting the snapshot informer: %w", err)
	}
	_, err = informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if s, ok := obj.(*dlcv1alpha1.DLCJobSnapshot); ok {
				r.events.onSnapshot(nil, s)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*dlcv1alpha1.DLCJobSnapshot)
			snap, ok2 := newObj.(*dlcv1alpha1.DLCJobSnapshot)
			if ok1 && ok2 {
				r.events.onSnapshot(old, snap)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watching snapshots for CloudEvents: %w", err)
	}
	return nil
}

// SetupIndexes registers the cache indexes the reconciler reads through. SetupWithManager calls
// it; a program that calls Reconcile itself (the benchmark) calls it instead.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &dlcv1alpha1.JobQuery{}, secretIndexKey, secretNameOf); err != nil {
		return fmt.Errorf("indexing JobQueries by Secret: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &dlcv1alpha1.DLCJobSnapshot{}, ownerIndexKey, ownerUIDsOf); err != nil {
		return fmt.Errorf("indexing DLCJobSnapshots by owner: %w", err)
	}
	return nil
}

// queriesOfSecret maps a Secret to the JobQueries of its namespace that reference it.
func (r *JobQueryReconciler) queriesOfSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var list dlcv1alpha1.JobQueryList
	err := r.List(ctx, &list, client.InNamespace(secret.GetNamespace()), client.MatchingFields{secretIndexKey: secret.GetName()})
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing JobQueries of a Secret", "secret", klog.KObj(secret))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, q := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: q.Namespace, Name: q.Name}})
	}
	return reqs
}
