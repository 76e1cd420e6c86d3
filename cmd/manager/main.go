// Command manager runs the dlcsync controllers.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	// Import all Kubernetes client auth plugins (e.g. Azure, GCP, OIDC, etc.)
	// to ensure that exec-entrypoint and run can make use of them.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	// Mozilla's root CAs, used by crypto/x509 only when the system has none, as in the
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
	"github.com/dlcsync/dlcsync/internal/endpoints"
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

// managerFlags are the command line of the manager.
type managerFlags struct {
	metricsAddr, probeAddr, pprofAddr                      string
	enableLeaderElection, secureMetrics, enableHTTP2       bool
	maxConcurrentSyncs, kubeAPIBurst, dlcBurst             int
	cloudEventsBacklog                                     int
	allowedSinks                                           string
	statusRefresh                                          time.Duration
	kubeAPIQPS, dlcQPS, memoryLimitRatio                   float64
	ambientNamespaces, watchNamespaces, watchLabelSelector string
	allowedEndpoints, revealNamespaces, listingMemory      string
	assumableRoles, stsEndpoint                            string
	showVersion                                            bool
	zap                                                    zap.Options
}

// parseFlags defines the manager's flags on fs and parses args.
func parseFlags(fs *flag.FlagSet, args []string) (*managerFlags, error) {
	f := &managerFlags{}
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to. "+
		"Use :8443 for HTTPS or :8080 for HTTP, or leave as 0 to disable the metrics service.")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "0", "The address the Go profiling endpoint (/debug/pprof) binds to; 0 disables it.")
	fs.BoolVar(&f.enableLeaderElection, "leader-elect", false,
		"Enable leader election for controller manager. "+
			"Enabling this will ensure there is only one active controller manager.")
	fs.BoolVar(&f.secureMetrics, "metrics-secure", true,
		"If set, the metrics endpoint is served securely via HTTPS. Use --metrics-secure=false to use HTTP instead.")
	fs.BoolVar(&f.enableHTTP2, "enable-http2", false,
		"If set, HTTP/2 will be enabled for the metrics server")
	fs.IntVar(&f.maxConcurrentSyncs, "max-concurrent-syncs", 4, "How many JobQueries sync at the same time.")
	fs.Float64Var(&f.kubeAPIQPS, "kube-api-qps", 50, "Queries per second to the Kubernetes API.")
	fs.IntVar(&f.kubeAPIBurst, "kube-api-burst", 100, "Burst of queries to the Kubernetes API.")
	fs.DurationVar(&f.statusRefresh, "status-refresh-interval", controllers.DefaultStatusRefreshInterval,
		"A JobQuery whose syncs find nothing new writes its status (lastSyncTime) at most once per this (and per sync).")
	fs.Float64Var(&f.dlcQPS, "dlc-qps", 5, "ListJobs requests per second per Alibaba Cloud credential, shared by every JobQuery using it.")
	fs.IntVar(&f.dlcBurst, "dlc-burst", 10, "Burst of ListJobs requests per credential.")
	fs.StringVar(&f.ambientNamespaces, "ambient-credentials-namespaces", "",
		"Comma-separated namespaces whose JobQueries may use the operator's own credentials (credentials.ambient). "+
			"Default: the operator's own namespace (POD_NAMESPACE).")
	fs.StringVar(&f.assumableRoles, "assumable-roles", "",
		"Comma-separated namespace=role-ARN-pattern pairs: the RAM roles JobQueries of each namespace may assume with the "+
			"operator's own credentials (credentials.ambient.roleArn), e.g. ml-team=acs:ram::123456789012:role/ml-team-*. Default: none.")
	fs.StringVar(&f.stsEndpoint, "sts-endpoint", "",
		"host[:port] of STS for assumed roles (HTTPS), e.g. sts-vpc.cn-hangzhou.aliyuncs.com in a private cluster. "+
			"Default: sts.aliyuncs.com, or sts[-vpc].<region>.aliyuncs.com from ALIBABA_CLOUD_STS_REGION and ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED.")
	fs.StringVar(&f.allowedEndpoints, "allowed-endpoints", "",
		"Comma-separated endpoint patterns JobQueries may call besides PAI-DLC's own HTTPS endpoints, e.g. "+
			"http://127.0.0.1:* for a local simulator or https://*.proxy.example.internal. Requests carry credentials: allow only what you trust.")
	fs.StringVar(&f.allowedSinks, "allowed-sinks", endpoints.DefaultSinkPatterns,
		"Comma-separated URL patterns (scheme://host-glob[:port|*]) JobQueries may send CloudEvents to (spec.cloudEvents.sink). "+
			"The default allows in-cluster Service names only; empty turns CloudEvents off.")
	fs.IntVar(&f.cloudEventsBacklog, "cloudevents-backlog", controllers.DefaultCloudEventsBacklog,
		"Undelivered transitions kept per CloudEvents sink; beyond it they are dropped and counted.")
	fs.StringVar(&f.revealNamespaces, "reveal-namespaces", "",
		"Comma-separated namespaces whose JobQueries may mirror fields redacted by default (spec.snapshot), which the view role can read.")
	fs.StringVar(&f.watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces to watch; empty watches every namespace. Use it to shard JobQueries between managers.")
	fs.StringVar(&f.watchLabelSelector, "watch-label-selector", "",
		"Sync only the JobQueries whose labels match this selector, e.g. 'sharding.dlcsync.io/key=shard1', or "+
			"'!sharding.dlcsync.io/key' for those no shard claims (Flux's sharding); empty syncs every JobQuery. "+
			"Each selector elects its own leader.")
	fs.Float64Var(&f.memoryLimitRatio, "memory-limit-ratio", defaultMemoryLimitRatio, "The part of the container's memory limit "+
		"(the "+memoryLimitEnv+" variable, in bytes) that the Go runtime gets as its soft limit; the rest is room for the binary's "+
		"pages and memory outside the Go heap. An explicit GOMEMLIMIT wins.")
	fs.StringVar(&f.listingMemory, "listing-memory", "", "What the job listings of all syncs may hold at once (a quantity, "+
		"e.g. 100Mi); a listing that would hold more stops with ListingTooLarge. Default: 25% of the Go memory limit "+
		"(set from "+memoryLimitEnv+" or GOMEMLIMIT), or 1Gi without one.")
	fs.BoolVar(&f.showVersion, "version", false, "Print the version and exit.")
	f.zap.BindFlags(fs)
	return f, fs.Parse(args)
}

func main() {
	f, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if f.showVersion {
		fmt.Println(version.Version)
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))
	dlc.Version = version.Version
	if _, err := controllers.ParseWatchLabelSelector(f.watchLabelSelector); err != nil {
		setupLog.Error(err, "Invalid --watch-label-selector")
		os.Exit(1)
	}
	softLimit, err := softMemoryLimit(os.Getenv(memoryLimitEnv), os.Getenv("GOMEMLIMIT"), f.memoryLimitRatio)
	if err != nil {
		setupLog.Error(err, "Invalid memory limit")
		os.Exit(1)
	}
	switch {
	case softLimit > 0:
		debug.SetMemoryLimit(softLimit)
		setupLog.Info("Go soft memory limit set", "bytes", softLimit, "containerLimit", os.Getenv(memoryLimitEnv), "ratio", f.memoryLimitRatio)
	case os.Getenv("GOMEMLIMIT") != "" && os.Getenv(memoryLimitEnv) != "":
		setupLog.Info("GOMEMLIMIT is set: --memory-limit-ratio is not applied", "GOMEMLIMIT", os.Getenv("GOMEMLIMIT"))
	}
	if err := run(f); err != nil {
		setupLog.Error(err, "Manager failed")
		os.Exit(1)
	}
}

// run builds the manager from the flags, sets up the reconciler and runs until a signal.
func run(f *managerFlags) error {
	// The selector is checked before anything connects, so a typo stops the manager at
	// once instead of leaving one that syncs nothing.
	cacheOptions, err := controllers.ShardCacheOptions(splitList(f.watchNamespaces), f.watchLabelSelector)
	if err != nil {
		return fmt.Errorf("invalid --watch-label-selector: %w", err)
	}
	leaderElectionID, err := controllers.LeaderElectionID("dlcsync.dlcsync.io", splitList(f.watchNamespaces), f.watchLabelSelector)
	if err != nil {
		return fmt.Errorf("invalid --watch-label-selector: %w", err)
	}
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("reading the Kubernetes client configuration: %w", err)
	}
	restConfig.QPS, restConfig.Burst = float32(f.kubeAPIQPS), f.kubeAPIBurst
	restConfig.UserAgent = "dlcsync/" + version.Version
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  cacheOptions,
		Metrics:                metricsOptions(f),
		HealthProbeBindAddress: f.probeAddr,
		PprofBindAddress:       f.pprofAddr,
		LeaderElection:         f.enableLeaderElection,
		LeaderElectionID:       leaderElectionID,
		// A stopping leader hands its lease over at once (a rolling upgrade then fails over
		// in seconds, not a lease duration); safe because main returns as soon as Start does.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	ambient := ambientNamespaces(f.ambientNamespaces)
	budget, err := listingMemory(f.listingMemory, debug.SetMemoryLimit(-1))
	if err != nil {
		return err
	}
	if _, err := controllers.Setup(context.Background(), mgr, controllers.Options{
		AllowedEndpoints:      f.allowedEndpoints,
		AllowedSinks:          f.allowedSinks,
		CloudEventsBacklog:    f.cloudEventsBacklog,
		AmbientNamespaces:     ambient,
		AssumableRoles:        f.assumableRoles,
		STSEndpoint:           f.stsEndpoint,
		RevealNamespaces:      splitList(f.revealNamespaces),
		MaxConcurrentSyncs:    f.maxConcurrentSyncs,
		DLCQPS:                f.dlcQPS,
		DLCBurst:              f.dlcBurst,
		StatusRefreshInterval: f.statusRefresh,
		AfterSync:             afterBigSync,
		ListingMemory:         budget,
	}); err != nil {
		return fmt.Errorf("setting up the JobQuery controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("setting up the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("setting up the ready check: %w", err)
	}
	setupLog.Info("Starting manager", "version", version.Version, "watchNamespaces", f.watchNamespaces,
		"watchLabelSelector", f.watchLabelSelector, "leaderElectionID", leaderElectionID, "listingMemory", budget,
		"ambientCredentialsNamespaces", strings.Join(ambient, ","), "allowedEndpoints", f.allowedEndpoints,
		"revealNamespaces", f.revealNamespaces, "allowedSinks", f.allowedSinks)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

// metricsOptions serves metrics over HTTPS to authorised callers unless --metrics-secure=false.
// HTTP/2 stays off by default because of the HTTP/2 Stream Cancellation and Rapid Reset
// CVEs (GHSA-qppj-fm5r-hxr3, GHSA-4374-p667-p6c8), as in the kubebuilder scaffold.
func metricsOptions(f *managerFlags) metricsserver.Options {
	var tlsOpts []func(*tls.Config)
	if !f.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	opts := metricsserver.Options{BindAddress: f.metricsAddr, SecureServing: f.secureMetrics, TLSOpts: tlsOpts}
	if f.secureMetrics {
		// Only callers authorised through TokenReview/SubjectAccessReview may read metrics.
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return opts
}

// ambientNamespaces are the namespaces the flag names, or the operator's own by default.
func ambientNamespaces(flagValue string) []string {
	if ambient := splitList(flagValue); len(ambient) > 0 {
		return ambient
	}
	if own := os.Getenv("POD_NAMESPACE"); own != "" {
		return []string{own}
	}
	return nil
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
