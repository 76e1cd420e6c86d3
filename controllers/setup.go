package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	toolscache "k8s.io/client-go/tools/cache"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

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
	// AssumableRoles says which RAM roles JobQueries of which namespace may assume with the
	// operator's credentials (--assumable-roles): comma-separated namespace=ARN-pattern pairs.
	AssumableRoles string
	// STSEndpoint is the host[:port] of STS for assumed roles (--sts-endpoint); empty:
	// credentials-go's default.
	STSEndpoint string
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
	// AllowedSinks are the URL patterns JobQueries may send CloudEvents to (--allowed-sinks),
	// e.g. endpoints.DefaultSinkPatterns; empty turns CloudEvents off.
	AllowedSinks string
	// CloudEventsBacklog bounds the undelivered transitions of each sink (--cloudevents-backlog;
	// 0: DefaultCloudEventsBacklog).
	CloudEventsBacklog int
	// AfterSync, if set, is called after every sync that listed jobs, with how many jobs the
	// listing held: cmd/manager returns the memory of a large sync to the OS there.
	AfterSync func(listedJobs int)
	// ListingMemory bounds, in bytes, what the listings of all syncs hold at once
	// (--listing-memory); 0: no bound.
	ListingMemory int64
}

// NewReconciler builds the JobQuery reconciler of a manager from the options.
func NewReconciler(mgr ctrl.Manager, o Options) (*JobQueryReconciler, error) {
	policy, err := endpoints.ParsePatterns(o.AllowedEndpoints)
	if err != nil {
		return nil, err
	}
	sinks, err := endpoints.ParseSinkPatterns(o.AllowedSinks)
	if err != nil {
		return nil, err
	}
	events, err := newCloudEvents(sinks, mgr.GetAPIReader(), o.CloudEventsBacklog, time.Now)
	if err != nil {
		return nil, err
	}
	roles, err := ParseRolePolicy(o.AssumableRoles)
	if err != nil {
		return nil, err
	}
	if err := ValidateSTSEndpoint(o.STSEndpoint); err != nil {
		return nil, err
	}
	governors := dlc.NewGovernors(dlc.GovernorConfig{QPS: o.DLCQPS, Burst: o.DLCBurst, OnBreakerChange: ObserveBreaker})
	return &JobQueryReconciler{
		events:                events,
		Client:                mgr.GetClient(),
		APIReader:             mgr.GetAPIReader(),
		Recorder:              mgr.GetEventRecorder("dlcsync"),
		Listers:               &dlc.Pool{Governors: governors, Retry: o.Retry, Observer: ObserveAPIResponse, STSEndpoint: o.STSEndpoint},
		Endpoints:             policy,
		AmbientNamespaces:     setOf(o.AmbientNamespaces),
		AssumableRoles:        roles,
		RevealNamespaces:      setOf(o.RevealNamespaces),
		MaxConcurrentSyncs:    o.MaxConcurrentSyncs,
		SyncTimeout:           o.SyncTimeout,
		StatusRefreshInterval: o.StatusRefreshInterval,
		AfterSync:             o.AfterSync,
		ListingMemory:         listingMemory(o.ListingMemory),
	}, nil
}

func listingMemory(bytes int64) *dlc.MemoryBudget {
	if bytes <= 0 {
		return nil
	}
	return dlc.NewMemoryBudget(bytes)
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
	if err := setupRedaction(ctx, mgr, r.RevealNamespaces); err != nil {
		return nil, fmt.Errorf("setting up the redaction controller: %w", err)
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

// ParseWatchLabelSelector parses --watch-label-selector the way Flux's controllers do
// (fluxcd/pkg/runtime/controller GetWatchSelector): a label selector such as
// "sharding.dlcsync.io/key=shard1", "sharding.dlcsync.io/key in (shard1,shard2)" or, for the
// queries no shard claims, "!sharding.dlcsync.io/key". An empty expression selects everything
// and returns a nil selector.
func ParseWatchLabelSelector(expr string) (labels.Selector, error) {
	if expr == "" {
		return nil, nil
	}
	ls, err := metav1.ParseToLabelSelector(expr)
	if err != nil {
		return nil, fmt.Errorf("parsing the JobQuery label selector %q: %w", expr, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil, fmt.Errorf("parsing the JobQuery label selector %q: %w", expr, err)
	}
	return selector, nil
}

// ShardCacheOptions is CacheOptions for one shard of the JobQueries: the JobQuery informer only
// holds the queries whose labels match watchLabelSelector (--watch-label-selector; empty: all),
// so a manager never sees, and so never syncs, another shard's queries. An invalid selector is
// an error, which the manager reports at start.
//
// Snapshots stay cached whole (within watchNamespaces): two shards' queries may share a
// snapshot, and each shard's writes keep every owner reference and matchedBy entry it did not
// add (see writeSnapshot and pruneSnapshot), so neither removes the other's claim.
func ShardCacheOptions(watchNamespaces []string, watchLabelSelector string) (cache.Options, error) {
	opts := CacheOptions(watchNamespaces)
	selector, err := ParseWatchLabelSelector(watchLabelSelector)
	if err != nil || selector == nil {
		return opts, err
	}
	opts.ByObject[&dlcv1alpha1.JobQuery{}] = cache.ByObject{Label: selector}
	return opts, nil
}

// LeaderElectionID is the lease name of the managers of one shard: the base ID alone for a
// manager that watches everything, otherwise the base ID and a digest of its shard (the watched
// namespaces, sorted, and the selector's canonical form), so that each shard elects its own
// leader: two releases sharded by namespace in one namespace would otherwise share one lease,
// and the one that lost the election would silently sync nothing.
func LeaderElectionID(base string, watchNamespaces []string, watchLabelSelector string) (string, error) {
	selector, err := ParseWatchLabelSelector(watchLabelSelector)
	if err != nil {
		return base, err
	}
	namespaces := slices.Sorted(maps.Keys(setOf(watchNamespaces)))
	if selector == nil && len(namespaces) == 0 {
		return base, nil
	}
	shard := "namespaces=" + strings.Join(namespaces, ",")
	if selector != nil {
		shard += ";selector=" + selector.String()
	}
	sum := sha256.Sum256([]byte(shard))
	return base + "-" + hex.EncodeToString(sum[:4]), nil
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
		// The controller watches metadata only, so no data arrives here; a typed Secret
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
	// A query refused a sync slot is woken through this channel when one frees.
	r.fairness.wake = make(chan event.GenericEvent, slotsWakeBuffer)
	bld = bld.WatchesRawSource(source.Channel(r.fairness.wake, &handler.EnqueueRequestForObject{}))
	if r.events != nil {
		if err := r.setupCloudEvents(ctx, mgr); err != nil {
			return err
		}
		// The delivery workers ask for status writes of their queries through this channel.
		bld = bld.WatchesRawSource(source.Channel(r.events.wake, &handler.EnqueueRequestForObject{}))
	}
	// Snapshots are not watched for reconciles (Owns): every change to them comes from
	// this controller, and each sync compares against the cache anyway.
	return bld.
		WithOptions(controller.Options{
			// One more goroutine than sync slots, so that a reconcile that only finds its
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
