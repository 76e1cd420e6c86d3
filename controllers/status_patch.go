package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// errStaleStatus says a status was computed from a query older than the stored one's status.
var errStaleStatus = errors.New("the status was computed from a query older than the stored one")

// patchStatus writes q's status, computed from original, guarded by the resourceVersion this
// reconcile last read or wrote. A merge patch sends only what differs from its base, so one
// computed from an older query than the stored one would keep fields of a newer status (a failure
// count beside Ready=True). When the query changed meanwhile, the status is written onto the
// stored query if the stored status is still the one it was computed from (a user's edit during
// the sync); otherwise it is dropped with errStaleStatus: the stored one is newer, and this
// process waits for its cache to show it (cacheBehind) before it looks at the query again.
func (r *JobQueryReconciler) patchStatus(ctx context.Context, original, q *dlcv1alpha1.JobQuery) error {
	// The sync may have patched q itself (its finalizer): q carries that version.
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
	// Metav1.Time is stored in whole seconds.
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
