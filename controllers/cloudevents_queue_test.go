package controllers

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// A sink that is down never delays the mirror: the snapshots follow dlcsim at every sync while
// the transitions wait (DeliveryFailing); what does not fit the backlog is dropped, counted in
// the status and a metric, and shown (BacklogOverflowed); once the sink is back the backlog
// arrives, oldest first.
func TestADeadSinkNeitherDelaysTheMirrorNorLosesEventsSilently(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rcv := testenv.StartReceiver(t, "127.0.0.1:0")
	rcv.SetDown(true)
	g.Expect(k8s.Create(testCtx, eventsQuery(ns, "outage", "dlcceoutage"+ns, rcv.URL))).To(Succeed())
	waitReady(t, ns, "outage", dlcv1alpha1.ReasonSynced)
	since := sinceOf(t, ns, "outage")
	ids := make([]string, 4)
	for i := range ids {
		ids[i] = fmt.Sprintf("dlcceoutage%s-%d", ns, i)
		addNewJob(ids[i], dlc.StatusQueuing, since)
	}
	var keys []string
	for _, phase := range []string{"", dlc.StatusRunning, dlc.StatusSucceeded} {
		for _, id := range ids {
			if phase != "" {
				setPhase(g, id, phase)
			}
		}
		resync(t, ns, "outage", dlcv1alpha1.ReasonSynced)
		snaps := snapshots(g, ns)
		for _, id := range ids {
			job, _ := sim.Job(id)
			g.Expect(snaps[id].Status.Phase).To(Equal(job.Status), "the mirror waited for the sink")
			keys = append(keys, snaps[id].Status.Transition.Key)
		}
	}
	// 12 transitions, a backlog of 8: the 4 newest are dropped.
	NewWithT(t).Eventually(func(g Gomega) {
		q := getQuery(g, ns, "outage")
		g.Expect(q.Status.CloudEvents.Dropped).To(Equal(int64(4)))
		g.Expect(q.Status.CloudEvents.Backlog).To(Equal(int32(testCloudEventsBacklog)))
		c := cloudEventsCondition(g, ns, "outage")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(dlcv1alpha1.ReasonBacklogOverflowed))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(testutil.ToFloat64(cloudEventsDroppedTotal.WithLabelValues(ns, "outage"))).To(Equal(4.0))
	g.Expect(rcv.Requests()).To(BeNumerically(">", 0), "the sink was tried")
	g.Expect(rcv.Events()).To(BeEmpty())

	rcv.SetDown(false)
	NewWithT(t).Eventually(rcv.IDs).WithTimeout(30 * time.Second).Should(HaveLen(testCloudEventsBacklog))
	var got []string
	for _, ev := range rcv.Events() {
		got = append(got, ev.ID())
	}
	g.Expect(got).To(ConsistOf(keys[:testCloudEventsBacklog]), "the oldest transitions, each once")
	NewWithT(t).Eventually(func(g Gomega) {
		c := cloudEventsCondition(g, ns, "outage")
		g.Expect(c.Reason).To(Equal(dlcv1alpha1.ReasonDelivering))
		g.Expect(getQuery(g, ns, "outage").Status.CloudEvents.Dropped).To(Equal(int64(4)))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}
