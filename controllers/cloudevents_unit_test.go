package controllers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/endpoints"
)

// testSink registers a sink on e by hand (no worker, no apiserver), configured at since, with W
// at persisted.
func testSink(e *cloudEvents, query string, since, persisted time.Time) *sink {
	s := &sink{query: types.NamespacedName{Namespace: "ns", Name: query}, uri: "http://127.0.0.1:1/", source: querySource("ns", query),
		since: since, persisted: persisted, known: map[string]time.Time{}, signal: make(chan struct{}, 1), stop: func() {}}
	s.setKinds(allTransitionKinds)
	e.sinks[s.query] = s
	return s
}

func sharedSnapshot(seenAt time.Time, matchedBy ...string) *dlcv1alpha1.DLCJobSnapshot {
	s := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "dlc1"},
		Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: "dlc1"}}
	s.Status.Phase, s.Status.MatchedBy = "Failed", matchedBy
	s.Status.Transition = &dlcv1alpha1.PhaseTransition{Phase: "Failed", From: "Running", SeenAt: metav1.NewMicroTime(seenAt),
		Key: "dlc1/Failed/" + seenAt.Format(time.RFC3339Nano)}
	return s
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

// A sink that refuses an event for good (400) does not hold the events behind it: the refused
// one is dropped and counted, the next is delivered.
func TestASinkThatRefusesAnEventDropsItAndGoesOn(t *testing.T) {
	g := NewWithT(t)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if requests.Add(1) == 1 {
			http.Error(w, "no such schema", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	t0 := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	e, err := newCloudEvents(endpoints.SinkPolicy{}, nil, 10, time.Now)
	g.Expect(err).NotTo(HaveOccurred())
	s := testSink(e, "a", t0, t0)
	s.uri = srv.URL
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go e.run(ctx, s)

	for i, seen := range []time.Time{t0.Add(time.Minute), t0.Add(2 * time.Minute)} {
		snap := sharedSnapshot(seen, "a")
		snap.Status.Transition.Key = []string{"first", "second"}[i]
		e.enqueue(s, "ns", snap.Name, "dlc1", "cn-hangzhou", &snap.Status, snap.Status.Transition, true)
	}
	g.Eventually(func() int32 { return requests.Load() }).WithTimeout(10 * time.Second).Should(Equal(int32(2)))
	g.Eventually(func(g Gomega) {
		s.mu.Lock()
		defer s.mu.Unlock()
		g.Expect(s.pending).To(BeEmpty())
		g.Expect(s.dropped).To(Equal(int64(1)))
		g.Expect(s.overflowing).To(BeFalse(), "a refusal is not an overflow")
	}).WithTimeout(5 * time.Second).Should(Succeed())
}
