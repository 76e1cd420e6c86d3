package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// redactionReconciler withdraws what a snapshot reveals once it is no longer allowed: the
// administrator removed the namespace from --reveal-namespaces (its queries then stall with
// RevealNotAllowed and sync nothing), or a query dropped a group from snapshot.reveal (its sync
// rewrites the snapshots it matches, but not those it only retains). Without it, existing,
// retained and orphaned snapshots would keep the values for good.
//
// A snapshot may reveal what every query that matches it reveals (the rule of sharedOptions,
// which the sync writes by); one no query matches any more, what every query that still holds it
// reveals; one no query holds (orphaned), what it reveals, while its namespace allows revealing.
// This reconciler only ever narrows, so it cannot fight the sync.
type redactionReconciler struct {
	client.Client
	// APIReader reads the whole snapshot (the cache holds no job data) and queries of another
	// shard.
	APIReader        client.Reader
	RevealNamespaces map[string]bool
}

// Reconcile rewrites one snapshot redacted when it reveals more than allowed.
func (r *redactionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var cached dlcv1alpha1.DLCJobSnapshot
	if err := r.Get(ctx, req.NamespacedName, &cached); err != nil || len(cached.Status.Revealed) == 0 {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	allowed, err := r.allowedReveal(ctx, &cached)
	if err != nil {
		return ctrl.Result{}, err
	}
	keep := slices.DeleteFunc(slices.Clone(cached.Status.Revealed), func(g dlcv1alpha1.RevealGroup) bool {
		return !slices.Contains(allowed, g)
	})
	if len(keep) == len(cached.Status.Revealed) {
		return ctrl.Result{}, nil
	}
	var whole dlcv1alpha1.DLCJobSnapshot
	if err := r.APIReader.Get(ctx, req.NamespacedName, &whole); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	body, err := redactionPatch(&whole, keep)
	if err != nil {
		return ctrl.Result{}, err
	}
	obj := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: whole.Namespace, Name: whole.Name}}
	if err := r.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, body), client.FieldOwner(FieldOwner)); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("redacting snapshot %s: %w", klog.KObj(&whole), patchConflict(err))
	}
	snapshotWritesTotal.WithLabelValues("patch").Inc()
	ctrl.LoggerFrom(ctx).Info("Snapshot redacted: it revealed more than is allowed now", "snapshot", klog.KObj(&whole),
		"revealed", cached.Status.Revealed, "keeps", keep)
	return ctrl.Result{}, nil
}

// redactionPatch is the JSON patch that narrows s (read whole) to the groups keep: its job
// redacted, its content hash and revealed list with it, guarded by its resourceVersion.
func redactionPatch(s *dlcv1alpha1.DLCJobSnapshot, keep []dlcv1alpha1.RevealGroup) ([]byte, error) {
	p := newSnapshotPatch(s)
	if job := s.Status.Job; job != nil {
		snapshot.Redact(job, snapshot.Options{Reveal: keep})
		p.ops = append(p.ops, patchOp{Op: opAdd, Path: "/status/job", Value: job},
			patchOp{Op: opAdd, Path: "/status/contentHash", Value: snapshot.Hash(job)})
	}
	// Add, also of an empty list: a remove of a field the stored object no longer has
	// (the cache was behind) would fail the whole patch.
	p.ops = append(p.ops, patchOp{Op: opAdd, Path: "/status/revealed", Value: append([]dlcv1alpha1.RevealGroup{}, keep...)})
	body, err := json.Marshal(p.ops)
	if err != nil {
		return nil, fmt.Errorf("encoding the redaction of snapshot %s: %w", klog.KObj(s), err)
	}
	return body, nil
}

// allowedReveal is what s may reveal now (see redactionReconciler). A manager sharded by
// --watch-label-selector caches every snapshot of its namespaces but only its own queries; it
// judges only the snapshots one of its queries claims, and orphaned ones, so that shards with
// different --reveal-namespaces do not undo each other's writes at every sync.
func (r *redactionReconciler) allowedReveal(ctx context.Context, s *dlcv1alpha1.DLCJobSnapshot) ([]dlcv1alpha1.RevealGroup, error) {
	names := aliveMatches(s)
	if len(names) == 0 {
		for _, ref := range append(queryOwners(s.OwnerReferences), holdersOf(s)...) {
			names = withName(names, ref.Name)
		}
	}
	allowed, judged, ours := slices.Clone(dlcv1alpha1.RevealGroups), false, false
	for _, name := range names {
		q, cached, err := r.query(ctx, types.NamespacedName{Namespace: s.Namespace, Name: name})
		if err != nil {
			return nil, err
		}
		ours = ours || cached
		if q == nil || !q.DeletionTimestamp.IsZero() {
			continue
		}
		judged = true
		theirs := snapshot.OptionsFor(q.Spec.Snapshot)
		allowed = slices.DeleteFunc(allowed, func(g dlcv1alpha1.RevealGroup) bool { return !theirs.Reveals(g) })
	}
	switch {
	case judged && !ours:
		// Another shard's: its manager judges it.
		return s.Status.Revealed, nil
	case !r.RevealNamespaces[s.Namespace]:
		return nil, nil
	case !judged:
		// Orphaned: no query holds it; it keeps what it reveals while the namespace allows it.
		return s.Status.Revealed, nil
	}
	return allowed, nil
}

// query reads a JobQuery from the cache, and from the apiserver when the cache does not hold it
// (another shard's query); nil when it does not exist. cached says the cache held it.
func (r *redactionReconciler) query(ctx context.Context, key types.NamespacedName) (q *dlcv1alpha1.JobQuery, cached bool, err error) {
	q = &dlcv1alpha1.JobQuery{}
	err = r.Get(ctx, key, q)
	cached = err == nil
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, q)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("reading query %s: %w", key, err)
	}
	return q, cached, nil
}

// revealingSnapshotsOf maps a JobQuery to the snapshots of its namespace that reveal anything
// (an index of the cache, no copies): a change of its reveal list, or its deletion, may narrow
// them.
func (r *redactionReconciler) revealingSnapshotsOf(ctx context.Context, obj client.Object) []reconcile.Request {
	var list dlcv1alpha1.DLCJobSnapshotList
	if err := r.List(ctx, &list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{revealingIndexKey: "true"},
		client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing the snapshots a query change may redact", "query", klog.KObj(obj))
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}

// revealing is the predicate of snapshots that reveal anything.
var revealing = predicate.NewPredicateFuncs(func(obj client.Object) bool { return len(revealingOf(obj)) > 0 })

// queryChanged passes a query's spec changes and deletions: not its creation (the snapshots
// revealing anything are each looked at when the manager starts), nor its status writes.
var queryChanged = predicate.And(predicate.GenerationChangedPredicate{}, predicate.Funcs{
	CreateFunc: func(event.CreateEvent) bool { return false },
})

// setupRedaction registers the redaction controller. Every revealing snapshot is looked at when
// the manager starts (new flags), when it changes, and when a query of its namespace changes.
func setupRedaction(ctx context.Context, mgr ctrl.Manager, revealNamespaces map[string]bool) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &dlcv1alpha1.DLCJobSnapshot{}, revealingIndexKey, revealingOf); err != nil {
		return fmt.Errorf("indexing DLCJobSnapshots that reveal: %w", err)
	}
	r := &redactionReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), RevealNamespaces: revealNamespaces}
	return ctrl.NewControllerManagedBy(mgr).
		For(&dlcv1alpha1.DLCJobSnapshot{}, builder.WithPredicates(revealing)).
		Watches(&dlcv1alpha1.JobQuery{}, handler.EnqueueRequestsFromMapFunc(r.revealingSnapshotsOf),
			builder.WithPredicates(queryChanged)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Named("redaction").
		Complete(r)
}
