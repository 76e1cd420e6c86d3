package controllers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// testCloudEventsBacklog is the suite manager's --cloudevents-backlog.
const testCloudEventsBacklog = 8

var allTransitionKinds = []string{snapshot.TransitionSucceeded, snapshot.TransitionFailed, snapshot.TransitionStopped,
	snapshot.TransitionRunning, snapshot.TransitionPhaseChanged}

// eventsQuery is a query of the jobs named prefix* that sends every kind of transition to
// sinkURI and lists every job at every sync (a full listing each time).
func eventsQuery(ns, name, prefix, sinkURI string) *dlcv1alpha1.JobQuery {
	q := query(ns, name)
	q.Spec.Filter.DisplayName = prefix
	q.Spec.FullResyncInterval = &metav1.Duration{}
	q.Spec.CloudEvents = &dlcv1alpha1.CloudEventsSpec{Sink: dlcv1alpha1.Sink{URI: sinkURI}, Types: allTransitionKinds}
	return q
}

// sinceOf waits for the query's sink to be configured and returns since, not before a second
// has passed after it: a sync lists the jobs created up to the second before it starts.
func sinceOf(t *testing.T, ns, name string) time.Time {
	var since time.Time
	NewWithT(t).Eventually(func(g Gomega) {
		st := getQuery(g, ns, name).Status.CloudEvents
		g.Expect(st).NotTo(BeNil())
		g.Expect(st.Since).NotTo(BeNil())
		since = st.Since.Time
	}).WithTimeout(10 * time.Second).Should(Succeed())
	time.Sleep(time.Until(since.Add(2 * time.Second)))
	return since
}

// addNewJob adds a job created (and, if ended, finished) at the given time, in the given phase.
func addNewJob(id, phase string, at time.Time) {
	j := dlcsim.Job{JobItem: dlc.JobItem{JobID: id, DisplayName: id, JobType: "PyTorchJob", Status: phase, WorkspaceID: "268",
		UserID: "1001", Username: "admin", GmtCreateTime: dlc.FormatTime(at)}}
	if dlc.IsTerminal(phase) { // as dlcsim does: a reservation period has no finish time yet
		j.GmtFinishTime = dlc.FormatTime(at)
	}
	sim.Upsert(j)
}

func setPhase(g Gomega, id, phase string) {
	g.Expect(sim.Patch(id, func(j *dlcsim.Job) {
		j.Status = phase
		if dlc.IsTerminal(phase) {
			j.GmtFinishTime = dlc.FormatTime(time.Now())
		}
	})).To(BeTrue())
}

// transitionKeys reads the transition key of every snapshot of the namespace, by job ID.
func transitionKeys(g Gomega, ns string) map[string]string {
	out := map[string]string{}
	for id, s := range snapshots(g, ns) {
		if s.Status.Transition != nil {
			out[id] = s.Status.Transition.Key
		}
	}
	return out
}

func cloudEventsCondition(g Gomega, ns, name string) *metav1.Condition {
	c := meta.FindStatusCondition(getQuery(g, ns, name).Status.Conditions, dlcv1alpha1.ConditionCloudEventsDelivered)
	g.Expect(c).NotTo(BeNil())
	return c
}

// N phase changes in dlcsim are N CloudEvents with N distinct ids, each the transition key of its
// snapshot, received once: a job first seen failed is one event too, a job that ended before the
// sink was configured none, and quiet full listings send nothing again.
func TestEveryPhaseChangeIsOneCloudEvent(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rcv := testenv.StartReceiver(t, "127.0.0.1:0")
	// Job names carry the namespace, so that a run with -count finds none of an earlier run's.
	prefix := "dlcce" + ns
	old, walk, failed, reserving := prefix+"old", prefix+"walk", prefix+"failed", prefix+"reserving"
	addNewJob(old, dlc.StatusFailed, time.Now().Add(-time.Hour))
	g.Expect(k8s.Create(testCtx, eventsQuery(ns, "events", prefix, rcv.URL))).To(Succeed())
	waitReady(t, ns, "events", dlcv1alpha1.ReasonSynced)
	since := sinceOf(t, ns, "events")

	// A job that goes through five changes after it was first seen queuing, one first seen failed.
	addNewJob(walk, dlc.StatusQueuing, since)
	addNewJob(failed, dlc.StatusFailed, since)
	// First seen in its reservation period, with no finish time in the answer: news all the same.
	addNewJob(reserving, dlc.StatusFailedReserving, since)
	var keys []string
	step := func(phase string) {
		if phase != "" {
			setPhase(g, walk, phase)
		}
		resync(t, ns, "events", dlcv1alpha1.ReasonSynced)
		keys = append(keys, transitionKeys(g, ns)[walk])
	}
	step("")
	keys = append(keys, transitionKeys(g, ns)[failed], transitionKeys(g, ns)[reserving])
	for _, phase := range []string{dlc.StatusRunning, dlc.StatusRestarting, dlc.StatusRunning, dlc.StatusFailedReserving, dlc.StatusFailed} {
		step(phase)
	}
	resync(t, ns, "events", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "events", dlcv1alpha1.ReasonSynced)

	g.Expect(keys).To(HaveLen(8))
	// Delivery costs no snapshot write: created, then one write per change (no status
	// subresource, so every write of the status moves the generation).
	g.Expect(snapshots(g, ns)[walk].Generation).To(Equal(int64(6)))
	NewWithT(t).Eventually(rcv.IDs).WithTimeout(20 * time.Second).Should(HaveLen(8))
	ids := rcv.IDs()
	for _, k := range keys {
		g.Expect(ids).To(HaveKeyWithValue(k, 1), "the transition %s", k)
	}
	var types []string
	for _, ev := range rcv.Events() {
		g.Expect(ev.Source()).To(Equal("/apis/dlc.dlcsync.io/v1alpha1/namespaces/" + ns + "/jobqueries/events"))
		g.Expect(ev.SpecVersion()).To(Equal(cloudevents.VersionV1))
		var data JobTransition
		g.Expect(json.Unmarshal(ev.Data(), &data)).To(Succeed())
		g.Expect(ev.Subject()).To(Equal(data.Snapshot))
		g.Expect(data.TransitionKey).To(Equal(ev.ID()))
		g.Expect(cloudEventTypes[data.Kind]).To(Equal(ev.Type()))
		g.Expect(fmt.Sprint(ev.Extensions()["dlcfirstseen"])).To(Equal(fmt.Sprint(data.FirstSeen)), "in binary mode an extension is a string")
		types = append(types, strings.TrimPrefix(data.JobID, prefix)+" "+strings.TrimPrefix(ev.Type(), "io.dlcsync.job."))
	}
	slices.Sort(types)
	g.Expect(types).To(Equal([]string{"failed failed", "reserving failed", "walk failed", "walk phasechanged", "walk phasechanged",
		"walk phasechanged", "walk running", "walk running"}))
	NewWithT(t).Eventually(func(g Gomega) {
		st := getQuery(g, ns, "events").Status.CloudEvents
		g.Expect(st).NotTo(BeNil())
		g.Expect(st.Backlog).To(BeZero())
		g.Expect(cloudEventsCondition(g, ns, "events").Reason).To(Equal(dlcv1alpha1.ReasonDelivering))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

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

// A sink outside the manager's --allowed-sinks gets no request: the query says why in its
// condition and a Warning; a sink that redirects is not followed.
func TestSinksAreTheAdministratorsDecisionAndRedirectsAreNotFollowed(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	outside := testenv.StartReceiver(t, "127.0.0.2:0")
	target := testenv.StartReceiver(t, "127.0.0.1:0")
	redirecting := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirecting.Close)
	job := "dlcceoutside" + ns
	g.Expect(k8s.Create(testCtx, eventsQuery(ns, "outside", job, outside.URL))).To(Succeed())
	g.Expect(k8s.Create(testCtx, eventsQuery(ns, "redirected", job, redirecting.URL+"/events"))).To(Succeed())
	waitReady(t, ns, "outside", dlcv1alpha1.ReasonSynced)
	waitReady(t, ns, "redirected", dlcv1alpha1.ReasonSynced)
	addNewJob(job, dlc.StatusRunning, sinceOf(t, ns, "redirected"))
	resync(t, ns, "outside", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "redirected", dlcv1alpha1.ReasonSynced)

	c := cloudEventsCondition(g, ns, "outside")
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Reason).To(Equal(dlcv1alpha1.ReasonSinkNotAllowed))
	g.Expect(c.Message).To(ContainSubstring("--allowed-sinks"))
	NewWithT(t).Eventually(func(g Gomega) {
		var warnings []string
		for _, e := range events(g, ns) {
			if e.Regarding.Name == "outside" && e.Reason == dlcv1alpha1.ReasonSinkNotAllowed {
				warnings = append(warnings, e.Type)
			}
		}
		g.Expect(warnings).To(Equal([]string{"Warning"}))
	}).WithTimeout(10 * time.Second).Should(Succeed())

	NewWithT(t).Eventually(func(g Gomega) {
		c := cloudEventsCondition(g, ns, "redirected")
		g.Expect(c.Reason).To(Equal(dlcv1alpha1.ReasonDeliveryFailing))
		g.Expect(c.Message).To(ContainSubstring("redirect, which is not followed"))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	resync(t, ns, "outside", dlcv1alpha1.ReasonSynced)
	g.Expect(outside.Requests()).To(BeZero(), "a refused sink was sent a request")
	g.Expect(target.Requests()).To(BeZero(), "a redirect was followed")
}
