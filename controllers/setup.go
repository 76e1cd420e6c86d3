package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/endpoints"
)

// Options are the administrator's settings of the JobQuery controller. cmd/manager fills them from
// its flags; the demo, the benchmark and the tests fill them the same way, so that they run with
// exactly what a user can configure.
type Options struct {
	// AllowedEndpoints widens the endpoints JobQueries may call beyond PAI-DLC's own HTTPS hosts:
	// comma-separated patterns such as "http://127.0.0.1:*" (--allowed-endpoints).
	AllowedEndpoints string
	// AmbientNamespaces may use the operator's own credentials (--ambient-credentials-namespaces).
	AmbientNamespaces []string
	// RevealNamespaces may mirror fields redacted by default (--reveal-namespaces).
	RevealNamespaces []string
	// MaxConcurrentSyncs bounds parallel syncs (--max-concurrent-syncs, default 4).
	MaxConcurrentSyncs int
	// DLCQPS and DLCBurst size the ListJobs rate limit of each credential and endpoint.
	DLCQPS   float64
	DLCBurst int
	// Retry is the retry policy of ListJobs calls (zero: the client's defaults).
	Retry dlc.RetryPolicy
	// SyncTimeout, if set, replaces the deadline derived from each query's interval.
	SyncTimeout time.Duration
	// StatusRefreshInterval bounds how often a JobQuery whose syncs find nothing new writes its
	// status only to refresh lastSyncTime and lastSuccessfulSyncTime: at most once per
	// StatusRefreshInterval (--status-refresh-interval) and at most once per sync, i.e. at every
	// sync for intervals above it. 0 means DefaultStatusRefreshInterval, 5m. No snapshot is
	// written for it.
	StatusRefreshInterval time.Duration
}

// NewReconciler builds the JobQuery reconciler of a manager from the options.
func NewReconciler(mgr ctrl.Manager, o Options) (*JobQueryReconciler, error) {
	policy, err := endpoints.ParsePatterns(o.AllowedEndpoints)
	if err != nil {
		return nil, err
	}
	governors := dlc.NewGovernors(dlc.GovernorConfig{QPS: o.DLCQPS, Burst: o.DLCBurst, OnBreakerChange: ObserveBreaker})
	return &JobQueryReconciler{
		Client:                mgr.GetClient(),
		APIReader:             mgr.GetAPIReader(),
		Scheme:                mgr.GetScheme(),
		Recorder:              mgr.GetEventRecorder("dlcsync"),
		Listers:               &dlc.Pool{Governors: governors, Retry: o.Retry, Observer: ObserveAPIResponse},
		Endpoints:             policy,
		AmbientNamespaces:     setOf(o.AmbientNamespaces),
		RevealNamespaces:      setOf(o.RevealNamespaces),
		MaxConcurrentSyncs:    o.MaxConcurrentSyncs,
		SyncTimeout:           o.SyncTimeout,
		StatusRefreshInterval: o.StatusRefreshInterval,
	}, nil
}

// Setup builds the JobQuery reconciler and registers it with the manager.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) (*JobQueryReconciler, error) {
	r, err := NewReconciler(mgr, o)
	if err != nil {
		return nil, err
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("setting up the JobQuery controller: %w", err)
	}
	return r, nil
}

// CacheOptions is the manager cache the controller needs: snapshots without their job data, no
// managed fields, and of Secrets only the metadata of those labelled for dlcsync, without their
// annotations (kubectl's last-applied-configuration annotation holds a Secret's whole data).
// watchNamespaces, when not empty, restricts every informer to those namespaces.
func CacheOptions(watchNamespaces []string) cache.Options {
	opts := cache.Options{
		DefaultTransform: TrimForCache,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Label:     labels.SelectorFromSet(labels.Set{dlcv1alpha1.LabelCredentials: "true"}),
				Transform: stripSecretMetadata,
			},
		},
	}
	if len(watchNamespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, n := range watchNamespaces {
			opts.DefaultNamespaces[n] = cache.Config{}
		}
	}
	return opts
}

// stripSecretMetadata keeps of a cached Secret only what finds the JobQueries that use it.
func stripSecretMetadata(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return obj, err
	}
	m.SetAnnotations(nil)
	m.SetManagedFields(nil)
	if s, ok := obj.(*corev1.Secret); ok {
		// Note: the controller watches metadata only, so no data arrives here; a typed Secret
		// informer, should one ever be started, must not keep it either.
		s.Data, s.StringData = nil, nil
	}
	return obj, nil
}

func setOf(items []string) map[string]bool {
	out := make(map[string]bool, len(items))
	for _, s := range items {
		out[s] = true
	}
	return out
}
