package controllers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/dlcsync/dlcsync/internal/endpoints"
)

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
