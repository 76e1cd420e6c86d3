package main

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/controllers"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

var (
	cfg *rest.Config
	k8s client.Client
	sim *dlcsim.Server
	url string
)

var simAdmin = dlcsim.Identity{AccessKeyID: "LTAIwatcher", AccessKeySecret: "watcher-secret"}

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

// runTests starts a control plane, dlcsim and the real dlcsync manager, which the watcher reads
// as it would in a cluster.
func runTests(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	env, c, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	cfg = c
	sim = dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{simAdmin}, Seed: 3})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	url = srv.URL
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: testenv.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: controllers.CacheOptions(nil)})
	if err == nil {
		_, err = controllers.Setup(ctx, mgr, controllers.Options{AllowedEndpoints: testenv.LoopbackEndpoints, DLCQPS: 1000, DLCBurst: 1000})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _ = mgr.Start(ctx) }()
	if k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startWatcher runs the watcher until the returned stop is called.
func startWatcher(t *testing.T, ns string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := run(ctx, cfg, options{namespace: ns, image: "busybox", command: []string{"true"}, since: time.Hour, now: time.Now,
			log: t.Logf})
		if err != nil {
			t.Errorf("watcher: %v", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// startedJobs lists the Jobs the watcher started, by the DLC job they are for.
func startedJobs(g Gomega, ns string) map[string]int {
	var list batchv1.JobList
	g.Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	out := map[string]int{}
	for _, j := range list.Items {
		out[j.Spec.Template.Spec.Containers[0].Env[0].Value]++
	}
	return out
}

func sync(g Gomega, ns string) {
	var q dlcv1alpha1.JobQuery
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "jobs"}, &q)).To(Succeed())
	patch := client.MergeFrom(q.DeepCopy())
	q.Annotations = map[string]string{dlcv1alpha1.AnnotationRequestedAt: time.Now().String()}
	g.Expect(k8s.Patch(context.Background(), &q, patch)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "jobs"}, &q)).To(Succeed())
		g.Expect(q.Status.LastHandledReconcileAt).To(Equal(q.Annotations[dlcv1alpha1.AnnotationRequestedAt]))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// The recipe "start a Kubernetes Job when a DLC job fails", run against the real manager: one Job
// per failure, for a failure seen live and for a job first seen failed; none for a failure older
// than --since, none for the end of a failed job's reservation period, and none again after the
// watcher restarts (the informer's replay meets the Jobs already started).
func TestOneJobPerFailureAcrossRestarts(t *testing.T) {
	g := NewWithT(t)
	ns := "watcher"
	g.Expect(testenv.CreateTenant(context.Background(), k8s, ns, simAdmin.AccessKeyID, simAdmin.AccessKeySecret)).To(Succeed())
	now := time.Now()
	job := func(id, phase string, finished time.Time) dlcsim.Job {
		j := dlcsim.Job{JobItem: dlc.JobItem{JobID: id, DisplayName: "watched-" + id, JobType: "PyTorchJob", Status: phase,
			WorkspaceID: "268", UserID: "1", Username: "alice", Accessibility: "PUBLIC", GmtCreateTime: dlc.FormatTime(now.Add(-5 * time.Hour))}}
		if !finished.IsZero() {
			j.GmtFinishTime, j.ReasonCode = dlc.FormatTime(finished), "JobFailed"
		}
		return j
	}
	sim.Upsert(job("dlclive", dlc.StatusRunning, time.Time{}), job("dlcfreshfail", dlc.StatusFailed, now.Add(-time.Minute)),
		job("dlcoldfail", dlc.StatusFailed, now.Add(-3*time.Hour)))
	q := testenv.JobQuery(ns, "jobs", url)
	q.Spec.Filter.DisplayName = "watched-"
	q.Spec.Filter.TimeRange = &dlcv1alpha1.TimeRange{Within: &metav1.Duration{Duration: 24 * time.Hour}}
	g.Expect(k8s.Create(context.Background(), q)).To(Succeed())

	stop := startWatcher(t, ns)
	sync(g, ns)
	g.Eventually(func(g Gomega) { g.Expect(startedJobs(g, ns)).To(Equal(map[string]int{"dlcfreshfail": 1})) }).
		WithTimeout(20 * time.Second).Should(Succeed())

	g.Expect(sim.Patch("dlclive", func(j *dlcsim.Job) {
		j.Status, j.ReasonCode, j.GmtFinishTime = dlc.StatusFailedReserving, "JobFailed", dlc.FormatTime(time.Now())
	})).To(BeTrue())
	sync(g, ns)
	g.Eventually(func(g Gomega) {
		g.Expect(startedJobs(g, ns)).To(Equal(map[string]int{"dlcfreshfail": 1, "dlclive": 1}))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	// The watcher is down while the reservation period ends and another job fails in two steps;
	// after its restart: still one Job per failure, and one for the failure it did not see.
	stop()
	sim.Upsert(job("dlclate", dlc.StatusRunning, time.Time{}))
	sync(g, ns)
	g.Expect(sim.Patch("dlclate", func(j *dlcsim.Job) { j.Status, j.ReasonCode = dlc.StatusFailedReserving, "JobFailed" })).To(BeTrue())
	sync(g, ns)
	for _, id := range []string{"dlclive", "dlclate"} {
		g.Expect(sim.Patch(id, func(j *dlcsim.Job) { j.Status, j.GmtFinishTime = dlc.StatusFailed, dlc.FormatTime(time.Now()) })).To(BeTrue())
	}
	sync(g, ns)
	stop = startWatcher(t, ns)
	defer stop()
	g.Eventually(func(g Gomega) {
		g.Expect(startedJobs(g, ns)).To(Equal(map[string]int{"dlcfreshfail": 1, "dlclive": 1, "dlclate": 1}))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(startedJobs(g, ns)).To(Equal(map[string]int{"dlcfreshfail": 1, "dlclive": 1, "dlclate": 1}))
	}).WithTimeout(3 * time.Second).Should(Succeed())
}
