package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/cache"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// TrimForCache is the manager cache's transform: it drops what the reconciler never reads from
// the cache, which is most of the memory of a large query: managed fields of every object, and
// of snapshots everything snapshot.ForCache does not keep (the job data above all, since an
// unchanged job is recognised by its content hash and a changed one gets a whole new status).
// The few paths that rewrite a status from the existing one (release, retain) read the snapshot
// uncached first.
func TrimForCache(obj any) (any, error) {
	obj, err := cache.TransformStripManagedFields()(obj)
	if err != nil {
		return obj, err
	}
	if s, ok := obj.(*dlcv1alpha1.DLCJobSnapshot); ok {
		return snapshot.ForCache(s), nil
	}
	return obj, nil
}
