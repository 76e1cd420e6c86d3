// Command manager runs the dlcsync controllers.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	// Import all Kubernetes client auth plugins (e.g. Azure, GCP, OIDC, etc.)
	// to ensure that exec-entrypoint and run can make use of them.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	// Note: Mozilla's root CAs, used by crypto/x509 only when the system has none, as in the
	// dlcsync image (which ships no CA bundle): the manager calls Alibaba Cloud over HTTPS.
	// SSL_CERT_FILE or SSL_CERT_DIR still replace them, e.g. for a TLS-intercepting proxy.
	_ "golang.org/x/crypto/x509roots/fallback"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/controllers"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/version"
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(dlcv1alpha1.AddToScheme(scheme))
}

func main() {
	var metricsAddr string
	var probeAddr, pprofAddr string
	var enableLeaderElection bool
	var secureMetrics bool
	var enableHTTP2 bool
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to. "+
		"Use :8443 for HTTPS or :8080 for HTTP, or leave as 0 to disable the metrics service.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "0", "The address the Go profiling endpoint (/debug/pprof) binds to; 0 disables it.")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Enable leader election for controller manager. "+
			"Enabling this will ensure there is only one active controller manager.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"If set, the metrics endpoint is served securely via HTTPS. Use --metrics-secure=false to use HTTP instead.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false,
		"If set, HTTP/2 will be enabled for the metrics server")
	var maxConcurrentSyncs, kubeAPIBurst, dlcBurst int
	var statusRefresh time.Duration
	var kubeAPIQPS, dlcQPS float64
	var ambientNamespaces, watchNamespaces, watchLabelSelector, allowedEndpoints, revealNamespaces string
	flag.IntVar(&maxConcurrentSyncs, "max-concurrent-syncs", 4, "How many JobQueries sync at the same time.")
	flag.Float64Var(&kubeAPIQPS, "kube-api-qps", 50, "Queries per second to the Kubernetes API.")
	flag.IntVar(&kubeAPIBurst, "kube-api-burst", 100, "Burst of queries to the Kubernetes API.")
	flag.DurationVar(&statusRefresh, "status-refresh-interval", controllers.DefaultStatusRefreshInterval,
		"A JobQuery whose syncs find nothing new writes its status (lastSyncTime) at most once per this (and per sync).")
	flag.Float64Var(&dlcQPS, "dlc-qps", 5, "ListJobs requests per second per Alibaba Cloud credential, shared by every JobQuery using it.")
	flag.IntVar(&dlcBurst, "dlc-burst", 10, "Burst of ListJobs requests per credential.")
	flag.StringVar(&ambientNamespaces, "ambient-credentials-namespaces", "",
		"Comma-separated namespaces whose JobQueries may use the operator's own credentials (credentials.ambient). "+
			"Default: the operator's own namespace (POD_NAMESPACE).")
	flag.StringVar(&allowedEndpoints, "allowed-endpoints", "",
		"Comma-separated endpoint patterns JobQueries may call besides PAI-DLC's own HTTPS endpoints, e.g. "+
			"http://127.0.0.1:* for a local simulator or https://*.proxy.example.internal. Requests carry credentials: allow only what you trust.")
	flag.StringVar(&revealNamespaces, "reveal-namespaces", "",
		"Comma-separated namespaces whose JobQueries may mirror fields redacted by default (spec.snapshot), which the view role can read.")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces to watch; empty watches every namespace. Use it to shard JobQueries between managers.")
	flag.StringVar(&watchLabelSelector, "watch-label-selector", "",
		"Sync only the JobQueries whose labels match this selector, e.g. 'sharding.dlcsync.io/key=shard1', or "+
			"'!sharding.dlcsync.io/key' for those no shard claims (Flux's sharding); empty syncs every JobQuery. "+
			"Each selector elects its own leader.")
	showVersion := flag.Bool("version", false, "Print the version and exit.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	dlc.Version = version.Version

	// Note: HTTP/2 stays off by default because of the HTTP/2 Stream Cancellation and Rapid Reset
	// CVEs (GHSA-qppj-fm5r-hxr3, GHSA-4374-p667-p6c8), as in the kubebuilder scaffold.
	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}

	metricsServerOptions := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		TLSOpts:       tlsOpts,
	}
	if secureMetrics {
		// Only callers authorised through TokenReview/SubjectAccessReview may read metrics.
		metricsServerOptions.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	// Note: managed fields and the snapshots' job data are most of a snapshot's size and the
	// reconciler never reads them from the cache. The selector is checked before anything
	// connects, so a typo stops the manager at once instead of leaving one that syncs nothing.
	cacheOptions, err := controllers.ShardCacheOptions(splitList(watchNamespaces), watchLabelSelector)
	if err != nil {
		setupLog.Error(err, "Invalid --watch-label-selector")
		os.Exit(1)
	}
	leaderElectionID, err := controllers.LeaderElectionID("dlcsync.dlcsync.io", watchLabelSelector)
	if err != nil {
		setupLog.Error(err, "Invalid --watch-label-selector")
		os.Exit(1)
	}

	restConfig := ctrl.GetConfigOrDie()
	restConfig.QPS, restConfig.Burst = float32(kubeAPIQPS), kubeAPIBurst
	restConfig.UserAgent = "dlcsync/" + version.Version
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  cacheOptions,
		Metrics:                metricsServerOptions,
		HealthProbeBindAddress: probeAddr,
		PprofBindAddress:       pprofAddr,
		LeaderElection:         enableLeaderElection,
		LeaderElectionID:       leaderElectionID,
		// Note: a stopping leader hands its lease over at once (a rolling upgrade then fails over
		// in seconds, not a lease duration); safe because main returns as soon as Start does.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		setupLog.Error(err, "Unable to create manager")
		os.Exit(1)
	}

	ambient := splitList(ambientNamespaces)
	if len(ambient) == 0 {
		if own := os.Getenv("POD_NAMESPACE"); own != "" {
			ambient = []string{own}
		}
	}
	if _, err := controllers.Setup(context.Background(), mgr, controllers.Options{
		AllowedEndpoints:      allowedEndpoints,
		AmbientNamespaces:     ambient,
		RevealNamespaces:      splitList(revealNamespaces),
		MaxConcurrentSyncs:    maxConcurrentSyncs,
		DLCQPS:                dlcQPS,
		DLCBurst:              dlcBurst,
		StatusRefreshInterval: statusRefresh,
	}); err != nil {
		setupLog.Error(err, "Unable to create controller", "controller", "JobQuery")
		os.Exit(1)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "Unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "Unable to set up ready check")
		os.Exit(1)
	}

	setupLog.Info("Starting manager", "version", version.Version, "watchNamespaces", watchNamespaces,
		"watchLabelSelector", watchLabelSelector, "leaderElectionID", leaderElectionID,
		"ambientCredentialsNamespaces", strings.Join(ambient, ","), "allowedEndpoints", allowedEndpoints,
		"revealNamespaces", revealNamespaces)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "Problem running manager")
		os.Exit(1)
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
