package controllers

// Exactness through the real manager: no single answer deletes a snapshot, no tenant's broken
// endpoint starves another's, and no annotation or server value wedges the status.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

// lyingProxy serves the simulator, or, while lie is set, an empty listing that claims to be
// complete: TotalCount 0 and no job, the answer of a broken or hostile endpoint.
func lyingProxy(t *testing.T) (*httptest.Server, *atomic.Bool) {
	var lie atomic.Bool
	real := sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lie.Load() && strings.HasPrefix(r.URL.Path, "/api/v1/jobs") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"RequestId":"lie","TotalCount":0,"Jobs":[]}`))
			return
		}
		real.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &lie
}

func TestOneEmptyAnswerDeletesNothingAndAGoneJobNeedsTwoListings(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcexact", 5, "TFJob")
	proxy, lie := lyingProxy(t)
	q := query(ns, "exact")
	q.Spec.Endpoint = proxy.URL
	q.Spec.Filter.DisplayName = "dlcexact"
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(HaveLen(5)) }).WithTimeout(10 * time.Second).Should(Succeed())

	// One complete-looking empty answer: nothing is deleted, and the status says why.
	lie.Store(true)
	got := resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveLen(5))
	g.Expect(meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady).Message).
		To(ContainSubstring("removed if the next listing confirms it"))
	// The next honest answer lists them all again: the absence is forgotten, nothing was lost.
	lie.Store(false)
	resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	lie.Store(true)
	resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveLen(5))
	lie.Store(false)

	// A job really deleted in PAI-DLC: its snapshot stays after the first listing without it and
	// goes after the second.
	resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	sim.Delete(ids[0])
	resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveKey(ids[0]))
	resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).NotTo(HaveKey(ids[0]))
	g.Expect(snapshots(g, ns)).To(HaveLen(4))
}

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

// Every lie the simulator can tell about a listing, through the real manager: the query says what
// is wrong, and no snapshot is written, deleted or misstated.
func TestHostileAnswersChangeNoSnapshot(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	// 250 jobs in groups of 30 created in the same second, so that ties straddle page boundaries.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	jobs := make([]dlcsim.Job, 250)
	for i := range jobs {
		jobs[i] = dlcsim.Job{JobItem: dlc.JobItem{JobID: fmt.Sprintf("dlchostile%03d", i), DisplayName: "dlchostile", JobType: "TFJob",
			Status: dlc.StatusRunning, WorkspaceID: "268", UserID: "1001", Username: "admin",
			GmtCreateTime: dlc.FormatTime(base.Add(-time.Duration(i/30) * time.Minute))}}
	}
	sim.Upsert(jobs...)
	defer sim.SetFaults(dlcsim.Faults{})
	q := query(ns, "hostile")
	q.Spec.Filter.DisplayName = "dlchostile"
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(HaveLen(250)) }).WithTimeout(20 * time.Second).Should(Succeed())
	before := resourceVersions(g, ns)

	for _, tc := range []struct {
		name   string
		faults dlcsim.Faults
		reason string
	}{
		{"TotalCount 0", dlcsim.Faults{TotalCount: "zero"}, dlcv1alpha1.ReasonInconsistentListing},
		{"TotalCount omitted", dlcsim.Faults{TotalCount: "omit"}, dlcv1alpha1.ReasonInconsistentListing},
		{"TotalCount negative", dlcsim.Faults{TotalCount: "negative"}, dlcv1alpha1.ReasonInconsistentListing},
		{"TotalCount too small", dlcsim.Faults{TotalCount: "less", TotalCountBy: 100}, dlcv1alpha1.ReasonInconsistentListing},
		{"TotalCount too large", dlcsim.Faults{TotalCount: "more", TotalCountBy: 1}, dlcv1alpha1.ReasonInconsistentListing},
		{"pages larger than asked", dlcsim.Faults{OversizePage: 5}, dlcv1alpha1.ReasonBadResponse},
		{"a 20 MiB body", dlcsim.Faults{PadMB: 20}, dlcv1alpha1.ReasonBadResponse},
		{"200,000 jobs on a page", dlcsim.Faults{TinyJobs: 200000}, dlcv1alpha1.ReasonBadResponse},
		// Slow pages: the sync takes longer and is exact.
		{"every page 300 ms late", dlcsim.Faults{PageDelay: dlcsim.Duration(300 * time.Millisecond)}, dlcv1alpha1.ReasonSynced},
		// Ties ordered differently on every request: the walk re-reads the straddling seconds
		// and the listing is exact.
		{"ties in a new order on every request", dlcsim.Faults{ShuffleTies: true}, dlcv1alpha1.ReasonSynced},
	} {
		sim.SetFaults(tc.faults)
		got := resync(t, ns, "hostile", tc.reason)
		g.Expect(resourceVersions(g, ns)).To(Equal(before), tc.name)
		if tc.reason != dlcv1alpha1.ReasonSynced {
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, dlcv1alpha1.ConditionReconciling)).To(BeTrue(), tc.name)
		}
		t.Logf("%s: %s", tc.name, meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady).Message)
	}
	sim.SetFaults(dlcsim.Faults{})
	resync(t, ns, "hostile", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "hostile", dlcv1alpha1.ReasonSynced)
	g.Expect(resourceVersions(g, ns)).To(Equal(before))
}

// A snapshot that a user's own object also owns is released, never deleted, when its job goes.
func TestPruneNeverDeletesASnapshotAnotherObjectOwns(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcforeign", 2, "TFJob")
	q := query(ns, "foreign")
	q.Spec.Filter.DisplayName = "dlcforeign"
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	holder := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "holder"}}
	g.Expect(k8s.Create(testCtx, holder)).To(Succeed())
	var s dlcv1alpha1.DLCJobSnapshot
	g.Eventually(func() error { return k8s.Get(testCtx, client.ObjectKey{Namespace: ns, Name: ids[0]}, &s) }).Should(Succeed())
	s.OwnerReferences = append(s.OwnerReferences, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "holder", UID: holder.UID})
	g.Expect(k8s.Update(testCtx, &s)).To(Succeed())

	sim.Delete(ids[0])
	resync(t, ns, "foreign", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "foreign", dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) {
		kept := snapshots(g, ns)[ids[0]]
		g.Expect(kept.OwnerReferences).To(HaveLen(1))
		g.Expect(kept.OwnerReferences[0].Kind).To(Equal("ConfigMap"))
		g.Expect(kept.Status.Matching).To(BeFalse())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// Two queries over the same jobs that disagree on what to reveal, and a third whose endpoint
// returns the same IDs: one rule (the most redacting query wins; a snapshot's source is fixed by
// its first writer) makes them converge, so their quiet syncs write nothing, in either order.
func TestOverlappingQueriesThatDisagreeConverge(t *testing.T) {
	g := NewWithT(t)
	ns := newNamedNamespace(t, revealAllowed)
	ids := addJobs("dlcoverlap", 3, "TFJob")
	revealing := query(ns, "revealing")
	revealing.Spec.Filter.DisplayName = "dlcoverlap"
	revealing.Spec.Snapshot.Reveal = []dlcv1alpha1.RevealGroup{dlcv1alpha1.RevealEnvValues}
	g.Expect(k8s.Create(testCtx, revealing)).To(Succeed())
	waitReady(t, ns, "revealing", dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) {
		g.Expect(snapshots(g, ns)[ids[0]].Status.Job.Envs).To(HaveKeyWithValue("API_TOKEN", "very-secret-value"))
	}).WithTimeout(10 * time.Second).Should(Succeed())

	redacting := query(ns, "redacting")
	redacting.Spec.Filter.DisplayName = "dlcoverlap"
	g.Expect(k8s.Create(testCtx, redacting)).To(Succeed())
	waitReady(t, ns, "redacting", dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) {
		s := snapshots(g, ns)[ids[0]]
		g.Expect(s.Status.MatchedBy).To(Equal([]string{"redacting", "revealing"}))
		g.Expect(s.Status.Job.Envs["API_TOKEN"]).NotTo(Equal("very-secret-value"))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	before := resourceVersions(g, ns)
	for _, order := range [][]string{{"revealing", "redacting"}, {"redacting", "revealing"}} {
		for _, name := range order {
			resync(t, ns, name, dlcv1alpha1.ReasonSynced)
		}
		g.Expect(resourceVersions(g, ns)).To(Equal(before), "quiet syncs of overlapping queries in the order %v", order)
	}

	// Another endpoint that lists the same IDs (with other data) cannot overwrite them.
	other := httptest.NewServer(sim.Handler())
	defer other.Close()
	impostor := query(ns, "impostor")
	impostor.Spec.Filter.DisplayName = "dlcoverlap"
	impostor.Spec.Endpoint = other.URL + "/"
	g.Expect(k8s.Create(testCtx, impostor)).To(Succeed())
	got := waitReady(t, ns, "impostor", dlcv1alpha1.ReasonJobsSkipped)
	g.Expect(meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady).Message).To(ContainSubstring("from endpoint"))
	g.Expect(resourceVersions(g, ns)).To(Equal(before))
}

// A job whose mutable fields change (UpdateJob makes it public or private) starts or stops
// matching a filter on them at the next syncs: such a filter always lists in full.
func TestAJobThatStartsOrStopsMatchingAMutableFilterIsSeen(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcmutable", 3, "TFJob") // PUBLIC
	private := dlc.AccessibilityPrivate
	_, ok, err := sim.UpdateJob(ids[2], dlcsim.JobUpdate{Accessibility: &private})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeTrue())
	q := query(ns, "public")
	q.Spec.Filter.DisplayName = "dlcmutable"
	q.Spec.Filter.ShowOwn = dlc.Ptr(true)
	q.Spec.Filter.Accessibility = dlc.AccessibilityPublic
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(HaveLen(2)) }).WithTimeout(10 * time.Second).Should(Succeed())

	public := dlc.AccessibilityPublic
	_, _, err = sim.UpdateJob(ids[2], dlcsim.JobUpdate{Accessibility: &public})
	g.Expect(err).NotTo(HaveOccurred())
	_, _, err = sim.UpdateJob(ids[0], dlcsim.JobUpdate{Accessibility: &private})
	g.Expect(err).NotTo(HaveOccurred())
	got := resync(t, ns, "public", dlcv1alpha1.ReasonSynced)
	g.Expect(got.Status.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeFull))
	g.Expect(snapshots(g, ns)).To(HaveKey(ids[2]), "a job that became public is mirrored at the next sync")
	resync(t, ns, "public", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).NotTo(HaveKey(ids[0]), "a job that became private goes after two listings")
	g.Expect(snapshots(g, ns)).To(HaveLen(2))
}
