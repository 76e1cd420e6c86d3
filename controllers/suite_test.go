package controllers

// Integration tests: a real kube-apiserver and etcd (envtest), the manager running this
// reconciler, and the simulator answering real signed ListJobs requests on loopback.

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

var (
	k8s            client.Client
	testReconciler *JobQueryReconciler
	testManager    ctrl.Manager
	sim            *dlcsim.Server
	simURL         string
	nsSeq          atomic.Int32
	testCtx        context.Context
	allowed        = "ambient-ok"
	// revealAllowed is the namespace whose queries may reveal redacted fields (--reveal-namespaces).
	revealAllowed = "reveal-ok"
	simAdmin      = dlcsim.Identity{AccessKeyID: "test-admin", AccessKeySecret: "test-admin-secret", UserID: "1001", Username: "admin", Admin: true}
	// simScoped's RAM policy covers workspace 268 only (TestOneTenantsRefusalsDoNotOpenAnothersBreaker, sync_test.go).
	simScoped = dlcsim.Identity{AccessKeyID: "test-scoped", AccessKeySecret: "test-scoped-secret", UserID: "1003", Username: "scoped",
		Admin: true, Workspaces: []string{"268"}}
	simDeny = dlcsim.Identity{AccessKeyID: "test-denied", AccessKeySecret: "test-denied-secret", UserID: "1002", Username: "eve",
		AllowListJobs: dlc.Ptr(false)}
)

// testCloudEventsBacklog is the suite manager's --cloudevents-backlog.
const testCloudEventsBacklog = 8

// testStatusRefresh is the suite manager's Options.StatusRefreshInterval.
const testStatusRefresh = 20 * time.Second

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Every log line, debug included, is kept for the leak scan (leak_scan_test.go, after m.Run); stderr shows
	// them only with TEST_VERBOSE.
	var logOut io.Writer = capturedLogs
	if os.Getenv("TEST_VERBOSE") != "" {
		logOut = io.MultiWriter(os.Stderr, capturedLogs)
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logOut), zap.UseDevMode(true), zap.Level(zapcore.DebugLevel)))
	env, cfg, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()

	sim = dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{simAdmin, simDeny, simScoped}, Seed: 11})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	simURL = srv.URL

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: testenv.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: CacheOptions(nil)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testCtx = ctx
	testReconciler, err = Setup(ctx, mgr, Options{
		AllowedEndpoints: testenv.LoopbackEndpoints,
		AllowedSinks:     testenv.LoopbackEndpoints,
		// Small, so that a test overflows it with a few jobs (cloudevents_queue_test.go).
		CloudEventsBacklog: testCloudEventsBacklog,
		AmbientNamespaces:  []string{allowed},
		RevealNamespaces:   []string{revealAllowed},
		DLCQPS:             1000, DLCBurst: 1000,
		Retry: dlc.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond},
		// Short, so that a quiet query's freshness write shows within seconds; still longer than
		// the 10 s interval, so a single quiet sync writes nothing (jobquery_status_test.go).
		StatusRefreshInterval: testStatusRefresh,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testManager = mgr
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		// After every test that ran, in any order (-shuffle) or subset (-run).
		if err := scanForLeaks(); err != nil {
			fmt.Fprintln(os.Stderr, "leak scan:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "leak scan: no credential or environment value in logs, events, statuses or snapshots")
	}
	return code
}

// capturedLogs holds every log line of the manager under test.
var capturedLogs = &testenv.LockedBuffer{}
