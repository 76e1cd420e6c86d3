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
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

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
	q := queryFor(healthy, "healthy", "dlcfair")
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
	q := queryFor(ns, "weird", "dlcweird")
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

// A query refused a sync slot is woken as soon as a release frees a slot it may take, in the
// order queries were refused and only as many as the free slots admit. Before, it waited its
// whole fairnessWait while the freed slot stayed idle: a fleet's first syncs ran at about half
// the workers (make bench's fleet).
func TestAReleasedSlotWakesTheRefusedQueriesItAdmits(t *testing.T) {
	g := NewWithT(t)
	s := &namespaceSlots{wake: make(chan event.GenericEvent, 10)}
	query := func(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
	woken := func() []string {
		var out []string
		for len(s.wake) > 0 {
			e := <-s.wake
			out = append(out, e.Object.GetNamespace()+"/"+e.Object.GetName())
		}
		return out
	}
	// Four workers: a namespace may hold two, and one already syncing never takes the last free one.
	releaseA1, ok := s.acquire(query("a", "1"), 4)
	g.Expect(ok).To(BeTrue())
	_, ok = s.acquire(query("a", "2"), 4)
	g.Expect(ok).To(BeTrue())
	releaseB1, ok := s.acquire(query("b", "1"), 4)
	g.Expect(ok).To(BeTrue())
	_, ok = s.acquire(query("a", "3"), 4)
	g.Expect(ok).To(BeFalse(), "namespace a holds its share")
	_, ok = s.acquire(query("b", "2"), 4)
	g.Expect(ok).To(BeFalse(), "the last free slot is kept for a namespace that runs no sync")
	_, ok = s.acquire(query("a", "3"), 4)
	g.Expect(ok).To(BeFalse())
	g.Expect(woken()).To(BeEmpty(), "nothing was released")

	// a/3 may take a/1's slot; b/2 may not take the slot after it, the last free one.
	releaseA1()
	g.Expect(woken()).To(Equal([]string{"a/3"}), "a/3 was refused again: it waits once, not twice")
	_, ok = s.acquire(query("a", "3"), 4)
	g.Expect(ok).To(BeTrue())
	g.Expect(woken()).To(BeEmpty())
	releaseB1()
	g.Expect(woken()).To(Equal([]string{"b/2"}))

	// Two releases before the first woken query is back: the second wakes only what the
	// slots admit with the first one counted, and the refused keep their order.
	s = &namespaceSlots{wake: make(chan event.GenericEvent, 10)}
	var releases []func()
	for _, q := range []types.NamespacedName{query("a", "1"), query("a", "2"), query("b", "1"), query("c", "1")} {
		release, ok := s.acquire(q, 4)
		g.Expect(ok).To(BeTrue(), q.String())
		releases = append(releases, release)
	}
	for _, q := range []types.NamespacedName{query("d", "1"), query("d", "2"), query("e", "1")} {
		_, ok := s.acquire(q, 4)
		g.Expect(ok).To(BeFalse(), q.String())
	}
	releases[0]()
	g.Expect(woken()).To(Equal([]string{"d/1"}))
	releases[1]()
	g.Expect(woken()).To(Equal([]string{"e/1"}), "d/1 is counted in the slot it was woken for")
	g.Expect(s.waiting).To(Equal([]types.NamespacedName{query("d", "2")}))
	// A query that was never refused does not take the slots d/1 and e/1 were woken for.
	_, ok = s.acquire(query("f", "1"), 4)
	g.Expect(ok).To(BeFalse(), "f/1 took a slot a woken query is on its way to")
	_, ok = s.acquire(query("d", "1"), 4)
	g.Expect(ok).To(BeTrue())
	_, ok = s.acquire(query("e", "1"), 4)
	g.Expect(ok).To(BeTrue())

	// Without a wake channel (a reconciler not set up with a manager) a release neither
	// blocks nor loses the waiting query.
	quiet := &namespaceSlots{}
	release, _ := quiet.acquire(query("c", "1"), 2)
	_, ok = quiet.acquire(query("c", "2"), 2)
	g.Expect(ok).To(BeFalse())
	release()
	g.Expect(quiet.waiting).To(Equal([]types.NamespacedName{query("c", "2")}))
}
