package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

// jobEvents lists the events of one object as "Type/Reason/Action", oldest first.
func jobEvents(g Gomega, namespace, name string) []string {
	var out []string
	for _, e := range events(g, namespace) {
		if e.Regarding.Name == name {
			out = append(out, e.Type+"/"+e.Reason+"/"+e.Action)
		}
	}
	return out
}

// endJob moves a job of the simulator to an ended phase, as a run of it would.
func endJob(g Gomega, id, phase, reasonCode string) {
	g.Expect(sim.Patch(id, func(j *dlcsim.Job) {
		j.Status, j.ReasonCode = phase, reasonCode
		j.GmtFinishTime = dlc.FormatTime(time.Now())
	})).To(BeTrue())
}

// Every phase change reaches events and status.transition once, and both agree with the
// conditions: a job first seen ended gets an event of its outcome (action JobFirstSeen); a
// failure is one JobFailed Warning at FailedReserving, and the end of the reservation its own
// Normal reason; the transition key changes with each phase change and with nothing else.
func TestEveryTransitionIsOneEventAndOneKey(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlctransition", 3, "PyTorchJob")
	endJob(g, ids[1], dlc.StatusFailed, "JobFailed")
	endJob(g, ids[2], dlc.StatusSucceededReserving, "")
	q := queryFor(ns, "transitions", "dlctransition")
	createReady(t, q, dlcv1alpha1.ReasonSynced)

	snaps := snapshots(g, ns)
	for i, phase := range []string{"Running", "Failed", "SucceededReserving"} {
		tr := snaps[ids[i]].Status.Transition
		g.Expect(tr).NotTo(BeNil(), ids[i])
		g.Expect(tr.Phase).To(Equal(phase))
		g.Expect(tr.From).To(BeEmpty(), "first seen")
		g.Expect(tr.Key).To(Equal(fmt.Sprintf("%s/%s/%s", ids[i], phase, tr.SeenAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00"))))
	}
	// The outcome label agrees with the conditions and the events: the reservation period counts.
	g.Expect(snaps[ids[0]].Labels).NotTo(HaveKey(dlcv1alpha1.LabelOutcome))
	g.Expect(snaps[ids[1]].Labels).To(HaveKeyWithValue(dlcv1alpha1.LabelOutcome, "Failed"))
	g.Expect(snaps[ids[2]].Labels).To(HaveKeyWithValue(dlcv1alpha1.LabelOutcome, "Succeeded"))
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(jobEvents(g, ns, ids[0])).To(BeEmpty(), "a job first seen running is no event")
		g.Expect(jobEvents(g, ns, ids[1])).To(Equal([]string{"Warning/JobFailed/JobFirstSeen"}))
		g.Expect(jobEvents(g, ns, ids[2])).To(Equal([]string{"Normal/JobSucceeded/JobFirstSeen"}))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	keys := map[string]string{}
	for _, id := range ids {
		keys[id] = snaps[id].Status.Transition.Key
	}

	// A quiet sync changes no key, nor a write that changes no phase (a second query that matches
	// the same jobs adds itself to matchedBy: the patch carries the transition over from the cache).
	resync(t, ns, "transitions", dlcv1alpha1.ReasonSynced)
	also := queryFor(ns, "also", "dlctransition")
	g.Expect(k8s.Create(testCtx, also)).To(Succeed())
	waitReady(t, ns, "also", dlcv1alpha1.ReasonSynced)
	for id, s := range snapshots(g, ns) {
		g.Expect(s.Status.MatchedBy).To(ConsistOf("transitions", "also"))
		g.Expect(s.Status.Transition).NotTo(BeNil(), id)
		g.Expect(s.Status.Transition.Key).To(Equal(keys[id]))
	}
	g.Expect(k8s.Delete(testCtx, also)).To(Succeed())

	// Running -> FailedReserving -> Failed; SucceededReserving -> Succeeded.
	endJob(g, ids[0], dlc.StatusFailedReserving, "JobFailed")
	endJob(g, ids[2], dlc.StatusSucceeded, "")
	resync(t, ns, "transitions", dlcv1alpha1.ReasonSynced)
	snaps = snapshots(g, ns)
	g.Expect(snaps[ids[0]].Status.Transition.From).To(Equal("Running"))
	g.Expect(snaps[ids[0]].Status.Transition.Phase).To(Equal("FailedReserving"))
	g.Expect(snaps[ids[2]].Status.Transition.From).To(Equal("SucceededReserving"))
	reserving := snaps[ids[0]].Status.Transition.Key
	g.Expect(reserving).NotTo(Equal(keys[ids[0]]))
	g.Expect(snaps[ids[1]].Status.Transition.Key).To(Equal(keys[ids[1]]))

	endJob(g, ids[0], dlc.StatusFailed, "JobFailed")
	resync(t, ns, "transitions", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)[ids[0]].Status.Transition.Key).NotTo(Equal(reserving))
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(jobEvents(g, ns, ids[0])).To(Equal([]string{"Warning/JobFailed/JobPhaseChanged", "Normal/JobReservationEnded/JobPhaseChanged"}))
		g.Expect(jobEvents(g, ns, ids[2])).To(Equal([]string{"Normal/JobSucceeded/JobFirstSeen", "Normal/JobReservationEnded/JobPhaseChanged"}))
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// The first sync of a query over many ended jobs emits a JobFirstSeen event for the first
// maxFirstSeenEvents of them and counts the rest in one event on the query.
func TestFirstSeenEventsAreBoundedPerSync(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcfirstseen", maxFirstSeenEvents+7, "TFJob")
	for _, id := range ids {
		endJob(g, id, dlc.StatusFailed, "JobFailed")
	}
	q := queryFor(ns, "history", "dlcfirstseen")
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	NewWithT(t).Eventually(func(g Gomega) {
		var perJob int
		var summary []string
		for _, e := range events(g, ns) {
			switch {
			case e.Regarding.Kind == "JobQuery" && e.Action == actionFirstSeen:
				summary = append(summary, e.Note)
			case strings.HasPrefix(e.Regarding.Name, "dlcfirstseen"):
				g.Expect(e.Type + "/" + e.Reason + "/" + e.Action).To(Equal(corev1.EventTypeWarning + "/JobFailed/JobFirstSeen"))
				perJob++
			}
		}
		g.Expect(perJob).To(Equal(maxFirstSeenEvents))
		g.Expect(summary).To(HaveLen(1))
		g.Expect(summary[0]).To(HavePrefix("7 more jobs were first seen"))
	}).WithTimeout(10 * time.Second).Should(Succeed())
}
