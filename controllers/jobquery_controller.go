// Package controllers holds the reconcilers of dlcsync.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/endpoints"
)

// FieldOwner is the server-side apply field manager of everything dlcsync writes.
const FieldOwner = "dlcsync"

// snapshotsFinalizer holds every JobQuery until its deletion has been applied to its snapshots
// under the deletionPolicy the query has when it is deleted (Orphan: released; Delete: claimed by
// owner references, which the garbage collector follows). On every query, not only Orphan
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
	// One status patch per reconcile; when nothing but the sync times and stats changed,
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

// reconcileSync decides whether the query is due and syncs it if so.
func (r *JobQueryReconciler) reconcileSync(ctx context.Context, q *dlcv1alpha1.JobQuery) (ctrl.Result, error) {
	now := r.now()
	if q.Spec.Suspend {
		q.Status.ObservedGeneration = q.Generation
		q.Status.NextSyncTime = nil
		setConditions(&q.Status.Conditions, q.Generation, outcomeSuspended, "", "")
		// A suspended query does not sync; its last-sync gauge would grow old and fire
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
	// One namespace may hold at most half of the sync workers, so a tenant whose endpoint
	// hangs cannot starve the others; its queries wait their turn without a status write.
	release, ok := r.fairness.acquire(types.NamespacedName{Namespace: q.Namespace, Name: q.Name}, r.concurrency())
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
	// After a restart, restoreState took the schedule from the status, capped.
	next := state.nextSync
	switch {
	case st.LastSyncTime == nil, // never synced: first in line
		st.ObservedGeneration != q.Generation,
		handledValue(q.Annotations[dlcv1alpha1.AnnotationRequestedAt]) != st.LastHandledReconcileAt,
		credVersion != "" && credVersion != st.ObservedCredentialsVersion:
		return 0, true
	case isStalled(st.Conditions) && !seen:
		// A new process may run with other flags (--allowed-endpoints, --reveal-namespaces,
		// --ambient-credentials-namespaces, --assumable-roles): look again once.
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
			// After a restart every overdue query would sync at once; spread them over
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
	// A listing too large for the memory budget may fit once jobs are deleted.
	return reason == dlcv1alpha1.ReasonUnauthorized || reason == dlcv1alpha1.ReasonForbidden ||
		reason == dlcv1alpha1.ReasonListingTooLarge
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
	// Finalizers are a list; a merge patch replaces it whole, so without the lock a
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
