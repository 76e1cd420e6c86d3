package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// secretIndexKey indexes JobQueries by the Secret they read, so a Secret change finds them.
const secretIndexKey = ".spec.credentials.secretRef.name"

func secretNameOf(obj client.Object) []string {
	q, ok := obj.(*dlcv1alpha1.JobQuery)
	if !ok || q.Spec.Credentials.SecretRef == nil {
		return nil
	}
	return []string{q.Spec.Credentials.SecretRef.Name}
}

// ownerIndexKey indexes snapshots by the UIDs of the JobQueries that claim them, by owner
// reference or as holders.
const ownerIndexKey = ".metadata.ownerReferences.jobQueryUID"

func ownerUIDsOf(obj client.Object) []string {
	refs := append(queryOwners(obj.GetOwnerReferences()), holdersOf(obj)...)
	uids := make([]string, 0, len(refs))
	for _, ref := range refs {
		uids = append(uids, string(ref.UID))
	}
	return uids
}

// revealingIndexKey indexes the snapshots that reveal anything under "true".
const revealingIndexKey = "status.revealing"

func revealingOf(obj client.Object) []string {
	if s, ok := obj.(*dlcv1alpha1.DLCJobSnapshot); ok && len(s.Status.Revealed) > 0 {
		return []string{"true"}
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
