package controllers

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// pruneSnapshot handles a snapshot of a job the query no longer lists.
func (r *JobQueryReconciler) pruneSnapshot(ctx context.Context, judge *claimJudge, q *dlcv1alpha1.JobQuery, s *dlcv1alpha1.DLCJobSnapshot,
	counts *writeCounts) error {
	owners, holders := judge.claimsOf(ctx, s, q, false)
	others := append(owners, holders...)
	retain := q.Spec.Snapshot.PrunePolicy == dlcv1alpha1.PrunePolicyRetain
	// An owner that is not a JobQuery (a user's own object) holds the snapshot too; only
	// this query's claim is dropped then, never the object.
	foreign := len(s.OwnerReferences) > len(queryOwners(s.OwnerReferences))
	switch {
	case len(others) == 0 && !retain && !foreign:
		// The precondition makes sure we delete the object we compared, not one that another
		// query adopted a moment ago.
		err := r.Delete(ctx, s, client.Preconditions{UID: &s.UID, ResourceVersion: &s.ResourceVersion})
		if err != nil && !apierrors.IsNotFound(err) {
			return r.countConflict(err, counts)
		}
		snapshotWritesTotal.WithLabelValues("delete").Inc()
		counts.deleted++
		return nil
	case len(others) == 0 && retain:
		// Kept, claimed by this query (so it goes with the query unless Orphan), marked as no
		// longer matching.
		if !s.Status.Matching && len(s.Status.MatchedBy) == 0 {
			counts.unchanged++
			return nil
		}
		p := newSnapshotPatch(s)
		p.matches(nil)
		if err := r.sendPatch(ctx, p); err != nil {
			return r.countConflict(err, counts)
		}
		counts.deleted++
		return nil
	default:
		// Other queries still match: release this query's ownership only.
		if err := r.release(ctx, judge, q, s); err != nil {
			return r.countConflict(err, counts)
		}
		counts.deleted++
		return nil
	}
}

// reconcileDeletionPolicy puts the finalizer on the query, then, once per generation in this
// process, its claims on its snapshots in the form its deletionPolicy asks for. Once per
// process too, not only on a spec change: snapshots written by an earlier release (which always
// set owner references) must take the Orphan form before a foreground deletion could collect
// them. The conversion runs before the sync, whose listing may fail.
func (r *JobQueryReconciler) reconcileDeletionPolicy(ctx context.Context, q *dlcv1alpha1.JobQuery) error {
	if err := r.reconcileFinalizer(ctx, q); err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(q)
	if checked, ok := r.claimsChecked.Load(key); ok && checked.(int64) == q.Generation {
		return nil
	}
	// A failed conversion is not recorded, so it is tried again at the next reconcile.
	if err := r.reconcileClaims(ctx, q); err != nil {
		return err
	}
	r.claimsChecked.Store(key, q.Generation)
	return nil
}
