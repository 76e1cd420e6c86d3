package controllers

import (
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// enqueue puts a snapshot's transition in a sink's backlog, unless the sink has it already,
// does not want its kind, or it is the first sight of a job that had changed before the sink
// was configured; what does not fit is dropped and counted. whole says st is a whole status
// (a write of this manager), not a cached one.
func (e *cloudEvents) enqueue(s *sink, namespace, name, jobID, regionID string, st *dlcv1alpha1.DLCJobSnapshotStatus,
	tr *dlcv1alpha1.PhaseTransition, whole bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.known[tr.Key]; seen || s.gone {
		return
	}
	kind := snapshot.TransitionKind(tr.From, tr.Phase)
	if !s.kinds[kind] || (tr.From == "" && firstSeenTime(st, tr).Before(s.since)) {
		s.handledLocked(tr.SeenAt.Time)
		return
	}
	e.rememberLocked(s, tr)
	if !tr.SeenAt.After(s.persisted) {
		// Late (another writer's), behind what is written as delivered: write W back at once.
		e.wakeLocked(s, true)
	}
	if len(s.pending) >= e.limit {
		s.handledLocked(tr.SeenAt.Time)
		e.dropLocked(s, true)
		return
	}
	out := &outgoing{seenAt: tr.SeenAt.Time, kind: kind, namespace: namespace, name: name, jobID: jobID, regionID: regionID,
		transition: *tr.DeepCopy()}
	if whole && st.Transition != nil && st.Transition.Key == tr.Key {
		out.data = summaryOf(st)
	}
	i, _ := slices.BinarySearchFunc(s.pending, out.seenAt, func(o *outgoing, t time.Time) int { return o.seenAt.Compare(t) })
	s.pending = slices.Insert(s.pending, i, out)
	cloudEventsBacklog.WithLabelValues(s.query.Namespace, s.query.Name).Set(float64(len(s.pending)))
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// rememberLocked records a transition as taken, so that the other path that reports it (the
// sync's write, the informer) does not send it again. Bounded, so that a long outage of a
// busy sink does not grow it without end: past 4 backlogs the older half of the keys not waiting
// is forgotten (the worst outcome is one more attempt). s.mu is held.
func (e *cloudEvents) rememberLocked(s *sink, tr *dlcv1alpha1.PhaseTransition) {
	s.known[tr.Key] = tr.SeenAt.Time
	if len(s.known) <= 4*e.limit {
		return
	}
	waiting := make(map[string]bool, len(s.pending))
	for _, o := range s.pending {
		waiting[o.transition.Key] = true
	}
	var times []time.Time
	for key, seen := range s.known {
		if !waiting[key] {
			times = append(times, seen)
		}
	}
	slices.SortFunc(times, time.Time.Compare)
	if len(times) == 0 {
		return
	}
	cutoff := times[len(times)/2]
	for key, seen := range s.known {
		if !waiting[key] && !seen.After(cutoff) {
			delete(s.known, key)
		}
	}
}

// dropLocked counts a transition that will never be delivered, for a full backlog (overflow) or
// a sink's refusal. s.mu is held.
func (e *cloudEvents) dropLocked(s *sink, overflow bool) {
	s.dropped++
	s.overflowing = s.overflowing || overflow
	cloudEventsDroppedTotal.WithLabelValues(s.query.Namespace, s.query.Name).Inc()
	e.wakeLocked(s, true)
}

// handledLocked notes a transition as delivered, dropped or not wanted. s.mu is held.
func (s *sink) handledLocked(seenAt time.Time) {
	if seenAt.After(s.handled) {
		s.handled = seenAt
	}
}

// firstSeenTime is when a job first seen in tr's phase reached it, to tell news from history: its
// finish time once ended, else its creation time (an ended job whose answer has no finish time,
// e.g. in a reservation period, counts from its creation); the time dlcsync saw it when the job
// carries neither.
func firstSeenTime(st *dlcv1alpha1.DLCJobSnapshotStatus, tr *dlcv1alpha1.PhaseTransition) time.Time {
	switch {
	case snapshot.Outcome(tr.Phase) != "" && st.FinishedAt != nil:
		return st.FinishedAt.Time
	case st.CreatedAt != nil:
		return st.CreatedAt.Time
	}
	return tr.SeenAt.Time
}

// wakeLocked asks for a status write of the sink's query: at once when now, otherwise at most
// every wakeEvery. s.mu is held.
func (e *cloudEvents) wakeLocked(s *sink, now bool) {
	if s.gone {
		return
	}
	since := e.now().Sub(s.lastWake)
	if !now && since < wakeEvery {
		if s.wakeTimer == nil {
			s.wakeTimer = time.AfterFunc(wakeEvery-since, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.wakeTimer = nil
				e.wakeLocked(s, true)
			})
		}
		return
	}
	s.lastWake = e.now()
	obj := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: s.query.Namespace, Name: s.query.Name}}
	select {
	case e.wake <- event.GenericEvent{Object: obj}:
	default: // the next sync writes it anyway
	}
}

// oldestHold is the start of the oldest sync running in the namespace (zero for none).
func (e *cloudEvents) oldestHold(namespace string) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	var oldest time.Time
	for _, started := range e.holds[namespace] {
		if oldest.IsZero() || started.Before(oldest) {
			oldest = started
		}
	}
	return oldest
}

// throughLocked is the W a sink may write now: before its oldest undelivered transition, before
// the oldest sync running in its namespace, and settle before now. It may be before what is
// written, when another writer's transition arrived late with an older seenAt: W then moves back,
// so that a restart still sends it. s.mu is held.
func (e *cloudEvents) throughLocked(s *sink, oldestHold time.Time) time.Time {
	w := e.now().Add(-settle)
	if !oldestHold.IsZero() && oldestHold.Add(-time.Microsecond).Before(w) {
		w = oldestHold.Add(-time.Microsecond)
	}
	if len(s.pending) > 0 && s.pending[0].seenAt.Add(-time.Microsecond).Before(w) {
		w = s.pending[0].seenAt.Add(-time.Microsecond)
	}
	return w
}
