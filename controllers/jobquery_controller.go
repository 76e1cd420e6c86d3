// Package controllers holds the reconcilers of dlcsync.
package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// JobQueryReconciler keeps the DLCJobSnapshots of a JobQuery in step with PAI-DLC ListJobs.
//
// Note: this is the foundation's minimal reconciler: it is registered and watches JobQueries so
// that the manager, RBAC and tests have their final shape; the sync itself arrives with the
// reconciler issue.
type JobQueryReconciler struct {
	client.Client
	Scheme *runtime.Scheme
}

// +kubebuilder:rbac:groups=dlc.dlcsync.io,resources=jobqueries,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=dlc.dlcsync.io,resources=jobqueries/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=dlc.dlcsync.io,resources=jobqueries/finalizers,verbs=update
// +kubebuilder:rbac:groups=dlc.dlcsync.io,resources=dlcjobsnapshots,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=dlc.dlcsync.io,resources=dlcjobsnapshots/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=core,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile reads one JobQuery.
func (r *JobQueryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var query dlcv1alpha1.JobQuery
	if err := r.Get(ctx, req.NamespacedName, &query); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log.FromContext(ctx).V(1).Info("Observed JobQuery", "generation", query.Generation)
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler with the manager.
func (r *JobQueryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&dlcv1alpha1.JobQuery{}).
		Named("jobquery").
		Complete(r)
}
