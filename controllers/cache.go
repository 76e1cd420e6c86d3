package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/cache"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// TrimForCache is the manager cache's transform: it drops what the reconciler never reads from
// the cache, which is most of the memory of a large query: managed fields of every object, and
// the job data (status.job) of snapshots, since an unchanged job is recognised by its content
// hash and a changed one gets a whole new status. The few paths that rewrite a status from the
// existing one (release, retain) read the snapshot uncached first.
func TrimForCache(obj any) (any, error) {
	obj, err := cache.TransformStripManagedFields()(obj)
	if err != nil {
		return obj, err
	}
	if s, ok := obj.(*dlcv1alpha1.DLCJobSnapshot); ok {
		s.Status.Job = nil
	}
	return obj, nil
}
