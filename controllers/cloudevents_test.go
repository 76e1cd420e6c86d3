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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/endpoints"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

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

// A query that joins a snapshot another query wrote (it adds itself to matchedBy; the key does
// not change) gets the snapshot's transition even when its W has passed it, unless the transition
// happened before its sink existed; an add (an informer's replay after a restart) is taken only
// after W.
func TestAQueryJoiningASnapshotGetsItsTransition(t *testing.T) {
	g := NewWithT(t)
	t0 := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	e, err := newCloudEvents(endpoints.SinkPolicy{}, nil, 10, func() time.Time { return t0.Add(2 * time.Hour) })
	g.Expect(err).NotTo(HaveOccurred())
	joiner := testSink(e, "a", t0, t0.Add(time.Hour))

	e.onSnapshot(nil, sharedSnapshot(t0.Add(10*time.Minute), "b", "a"))
	g.Expect(joiner.pending).To(BeEmpty(), "a replayed add before W was sent again")

	before, after := sharedSnapshot(t0.Add(10*time.Minute), "b"), sharedSnapshot(t0.Add(10*time.Minute), "b", "a")
	e.onSnapshot(before, after)
	g.Expect(joiner.pending).To(HaveLen(1), "the joined snapshot's transition")

	old, joined := sharedSnapshot(t0.Add(-time.Minute), "b"), sharedSnapshot(t0.Add(-time.Minute), "b", "a")
	old.Name, joined.Name = "dlc2", "dlc2"
	old.Status.Transition.Key, joined.Status.Transition.Key = "dlc2/old", "dlc2/old"
	e.onSnapshot(old, joined)
	g.Expect(joiner.pending).To(HaveLen(1), "a transition from before the sink existed")
}
