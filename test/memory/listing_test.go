package memory

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// bulkyJobs and bulkyBytes size a workspace whose listing is larger than the chart's memory limit:
// 10,000 jobs (maxJobs' maximum) each with 32 KiB of text that does not compress, about 330 MB
// held until the listing is known complete.
const (
	bulkyJobs  = 10000
	bulkyBytes = 32 << 10
)

// A listing is held whole until it is known complete, so its memory was bounded by maxJobs, not
// bytes: 10,000 jobs with large fields took the manager past the chart's 256 MiB limit before the
// first snapshot was written (OOM-killed, restarted, the same listing again). Now all listings
// share a budget in bytes (by default 25% of the Go memory limit), and a listing that alone needs
// more stops with ListingTooLarge, once, as an event, writing nothing.
func TestAListingLargerThanTheMemoryBudgetStopsWithinTheLimit(t *testing.T) {
	g := NewWithT(t)
	env, k8s := testenv.StartWithClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)

	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{admin}, Seed: 7})
	noise := make([]byte, bulkyBytes*3/4)
	for _, job := range sim.Generate(bulkyJobs) {
		_, _ = rand.Read(noise)
		sim.Patch(job.JobID, func(j *dlcsim.Job) { j.ReasonMessage = base64.StdEncoding.EncodeToString(noise) })
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)

	mgr := startManager(t, env)
	q := testenv.JobQuery("bulky", "all", srv.URL)
	q.Spec.MaxJobs = bulkyJobs
	q.Spec.Filter.TimeRange = &dlcv1alpha1.TimeRange{Within: &metav1.Duration{Duration: 8760 * time.Hour}}
	g.Expect(testenv.CreateTenant(ctx, k8s, q.Namespace, admin.AccessKeyID, admin.AccessKeySecret)).To(Succeed())
	g.Expect(k8s.Create(ctx, q)).To(Succeed())
	g.Eventually(func(g Gomega) {
		if mgr.Exited() {
			StopTrying("the manager exited").Now()
		}
		if peak := mgr.peakResident(t); peak >= containerLimit {
			StopTrying(fmt.Sprintf("the manager's resident set reached %.1f MiB", mib(peak))).Now()
		}
		g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: q.Namespace, Name: q.Name}, q)).To(Succeed())
		ready := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(dlcv1alpha1.ReasonListingTooLarge), ready.Message)
		g.Expect(ready.Message).To(ContainSubstring("--listing-memory"))
		g.Expect(meta.IsStatusConditionTrue(q.Status.Conditions, dlcv1alpha1.ConditionStalled)).To(BeTrue(),
			"waiting for other syncs cannot help a listing that alone needs more than the budget")
	}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(Succeed(), func() string { return mgr.Tail(40) })

	peak := mgr.peakResident(t)
	t.Logf("peak resident set of the manager: %.1f MiB (limit %d MiB) for a listing of %d jobs of %d KiB",
		mib(peak), containerLimit>>20, bulkyJobs, bulkyBytes>>10)
	g.Expect(peak).To(BeNumerically("<", containerLimit), "the container would have been OOM-killed")
	var events eventsv1.EventList
	g.Expect(k8s.List(ctx, &events, client.InNamespace(q.Namespace))).To(Succeed())
	found := 0
	for _, e := range events.Items {
		if e.Reason == dlcv1alpha1.ReasonListingTooLarge {
			found++
		}
	}
	g.Expect(found).To(Equal(1), "one event says why the query syncs nothing")
	var snaps dlcv1alpha1.DLCJobSnapshotList
	g.Expect(k8s.List(ctx, &snaps, client.InNamespace(q.Namespace))).To(Succeed())
	g.Expect(snaps.Items).To(BeEmpty(), "a listing stopped half-way wrote snapshots")
}
