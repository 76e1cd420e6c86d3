package controllers

// Integration tests: a real kube-apiserver and etcd (envtest), the manager running this
// reconciler, and the simulator answering real signed ListJobs requests on loopback.

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
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
	// simScoped's RAM policy covers workspace 268 only (breakers_test.go).
	simScoped = dlcsim.Identity{AccessKeyID: "test-scoped", AccessKeySecret: "test-scoped-secret", UserID: "1003", Username: "scoped",
		Admin: true, Workspaces: []string{"268"}}
	simDeny = dlcsim.Identity{AccessKeyID: "test-denied", AccessKeySecret: "test-denied-secret", UserID: "1002", Username: "eve",
		AllowListJobs: dlc.Ptr(false)}
)

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
		// Small, so that a test overflows it with a few jobs (cloudevents_test.go).
		CloudEventsBacklog: testCloudEventsBacklog,
		AmbientNamespaces:  []string{allowed},
		RevealNamespaces:   []string{revealAllowed},
		DLCQPS:             1000, DLCBurst: 1000,
		Retry: dlc.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond},
		// Short, so that a quiet query's freshness write shows within seconds; still longer than
		// the 10 s interval, so a single quiet sync writes nothing (freshness_test.go).
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

// newNamespace creates a fresh namespace with a Secret holding the simulator's admin key.
func newNamespace(t *testing.T) string {
	t.Helper()
	return newNamedNamespace(t, fmt.Sprintf("t%d", nsSeq.Add(1)))
}

// newNamedNamespace creates a namespace of a given name with the simulator's admin key; several
// tests use the namespaces the manager treats specially, in any order, so an existing one is kept.
func newNamedNamespace(t *testing.T, name string) string {
	t.Helper()
	g := NewWithT(t)
	g.Expect(testenv.CreateTenant(testCtx, k8s, name, simAdmin.AccessKeyID, simAdmin.AccessKeySecret)).To(Succeed())
	return name
}

func credentialsSecret(namespace, name string, id dlcsim.Identity) *corev1.Secret {
	return testenv.CredentialsSecret(namespace, name, id.AccessKeyID, id.AccessKeySecret)
}

// query returns a JobQuery against the simulator with a 31-day window; change it before creating.
func query(namespace, name string) *dlcv1alpha1.JobQuery {
	q := testenv.JobQuery(namespace, name, simURL)
	q.Spec.Filter.TimeRange = &dlcv1alpha1.TimeRange{Within: &metav1.Duration{Duration: 31 * 24 * time.Hour}}
	return q
}

// addJobs adds n jobs to the simulator with IDs prefix-0..n-1, created within the last hours,
// with the given type; it returns their IDs.
func addJobs(prefix string, n int, jobType string) []string {
	now := time.Now()
	ids := make([]string, n)
	jobs := make([]dlcsim.Job, n)
	for i := range jobs {
		ids[i] = fmt.Sprintf("%s%04d", prefix, i)
		gpu := strconv.Itoa(i % 4)
		jobs[i] = dlcsim.Job{JobItem: dlc.JobItem{
			JobID: ids[i], DisplayName: fmt.Sprintf("%s-job-%d", prefix, i), JobType: jobType, Status: dlc.StatusRunning,
			WorkspaceID: "268", WorkspaceName: "dlc-workspace", UserID: "1001", Username: "admin", Accessibility: "PUBLIC",
			RequestGPU: gpu, GmtCreateTime: dlc.FormatTime(now.Add(-time.Duration(i+1) * time.Minute)),
			Envs: map[string]string{"API_TOKEN": "very-secret-value"},
		}}
	}
	sim.Upsert(jobs...)
	return ids
}

func getQuery(g Gomega, namespace, name string) *dlcv1alpha1.JobQuery {
	q := &dlcv1alpha1.JobQuery{}
	g.Expect(k8s.Get(testCtx, types.NamespacedName{Namespace: namespace, Name: name}, q)).To(Succeed())
	return q
}

// createReady creates the JobQuery and waits until its Ready condition has the reason: the
// create-then-wait-for-the-first-sync preamble of most tests.
func createReady(t *testing.T, q *dlcv1alpha1.JobQuery, reason string) *dlcv1alpha1.JobQuery {
	t.Helper()
	NewWithT(t).Expect(k8s.Create(testCtx, q)).To(Succeed())
	return waitReady(t, q.Namespace, q.Name, reason)
}

// waitReady waits until the query's last sync handled the current generation and annotation
// and Ready has the given reason.
func waitReady(t *testing.T, namespace, name, reason string) *dlcv1alpha1.JobQuery {
	t.Helper()
	var q *dlcv1alpha1.JobQuery
	NewWithT(t).Eventually(func(g Gomega) {
		q = getQuery(g, namespace, name)
		g.Expect(q.Status.ObservedGeneration).To(Equal(q.Generation))
		g.Expect(q.Status.LastHandledReconcileAt).To(Equal(q.Annotations[dlcv1alpha1.AnnotationRequestedAt]))
		c := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(reason), c.Message)
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return q
}

// resync asks for an immediate sync through the requestedAt annotation and waits for it.
func resync(t *testing.T, namespace, name, reason string) *dlcv1alpha1.JobQuery {
	t.Helper()
	_, err := testenv.RequestSync(testCtx, k8s, namespace, name)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	// waitReady checks lastHandledReconcileAt: the sync for this very request has run.
	return waitReady(t, namespace, name, reason)
}

func snapshots(g Gomega, namespace string) map[string]dlcv1alpha1.DLCJobSnapshot {
	var list dlcv1alpha1.DLCJobSnapshotList
	g.Expect(k8s.List(testCtx, &list, client.InNamespace(namespace))).To(Succeed())
	out := map[string]dlcv1alpha1.DLCJobSnapshot{}
	for _, s := range list.Items {
		out[s.Name] = s
	}
	return out
}

func resourceVersions(g Gomega, namespace string) map[string]string {
	out := map[string]string{}
	for name, s := range snapshots(g, namespace) {
		out[name] = s.ResourceVersion
	}
	return out
}

// events returns the events of a namespace by reason.
func events(g Gomega, namespace string) []eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(k8s.List(testCtx, &list, client.InNamespace(namespace))).To(Succeed())
	return list.Items
}
