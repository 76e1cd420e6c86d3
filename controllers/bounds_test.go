package controllers

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

func TestHangingEndpointsOfOneNamespaceDoNotStarveAnother(t *testing.T) {
	g := NewWithT(t)
	var inFlight atomic.Int32
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		select {
		case <-r.Context().Done():
		case <-release:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	// Two slow tenants (issue 23, finding 10: together they held all four workers, and a third
	// namespace waited for their syncs' deadline).
	slow := []string{newNamespace(t), newNamespace(t)}
	defer func() {
		for _, ns := range slow {
			for i := range 4 {
				_ = k8s.Delete(testCtx, query(ns, fmt.Sprintf("hang%d", i)))
			}
		}
		close(release)
		hang.Close()
	}()
	for _, ns := range slow {
		for i := range 4 {
			q := query(ns, fmt.Sprintf("hang%d", i))
			q.Spec.Endpoint = hang.URL
			g.Expect(k8s.Create(testCtx, q)).To(Succeed())
		}
	}
	// The slow tenants hold what they may of the workers.
	g.Eventually(inFlight.Load).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 3))
	time.Sleep(time.Second)

	healthy := newNamespace(t)
	addJobs("dlcfair", 2, "TFJob")
	q := query(healthy, "healthy")
	q.Spec.Filter.DisplayName = "dlcfair"
	created := time.Now()
	g.Expect(k8s.Create(testCtx, q)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := getQuery(g, healthy, "healthy")
		g.Expect(readyReason(got.Status.Conditions)).To(Equal(dlcv1alpha1.ReasonSynced))
	}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	t.Logf("the healthy query synced %v after its creation, with %d requests hanging", time.Since(created).Round(time.Millisecond),
		inFlight.Load())
	g.Expect(inFlight.Load()).To(BeNumerically("<=", 3), "a sync slot stays free for a namespace that runs none")
}

func TestALongRequestedAtAndManyUnknownStatusesDoNotWedgeTheStatus(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	jobs := make([]dlcsim.Job, 40)
	for i := range jobs {
		jobs[i] = dlcsim.Job{JobItem: dlc.JobItem{JobID: fmt.Sprintf("dlcweird%02d", i), DisplayName: "dlcweird", JobType: "TFJob",
			Status: fmt.Sprintf("Invented%02d", i), WorkspaceID: "268", UserID: "1001",
			GmtCreateTime: dlc.FormatTime(time.Now().Add(-time.Duration(i+1) * time.Minute))}}
	}
	sim.Upsert(jobs...)
	q := query(ns, "weird")
	q.Spec.Filter.DisplayName = "dlcweird"
	long := strings.Repeat("é", 300) // 600 bytes, more than status.lastHandledReconcileAt holds
	q.Annotations = map[string]string{dlcv1alpha1.AnnotationRequestedAt: long}
	g.Expect(k8s.Create(testCtx, q)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := getQuery(g, ns, "weird")
		g.Expect(readyReason(got.Status.Conditions)).To(Equal(dlcv1alpha1.ReasonSynced))
		g.Expect(got.Status.LastHandledReconcileAt).To(Equal(handledValue(long)))
		g.Expect(got.Status.JobStatusCounts).To(Equal(map[string]int32{dlcv1alpha1.JobStatusOther: 40}))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	// Handled once: the same value does not ask for another sync.
	syncs := func() float64 { return testutil.ToFloat64(syncsTotal.WithLabelValues(ns, "weird", "success")) }
	before := syncs()
	g.Expect(before).To(BeNumerically(">=", 1))
	g.Consistently(syncs).WithTimeout(3 * time.Second).Should(Equal(before))
	g.Expect(k8s.Delete(testCtx, getQuery(g, ns, "weird"), client.PropagationPolicy("Background"))).To(Succeed())
}
