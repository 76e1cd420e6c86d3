package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/endpoints"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// cloudEvents sends a CloudEvent for each phase change of the jobs of every JobQuery with
// spec.cloudEvents, to that query's sink. Only the leader has sinks: they are registered by the
// reconciler.
//
// Where transitions come from: the sync's own writes, as they succeed (so nothing waits for the
// watch), and every snapshot update whose status.transition.key changed (another query's write
// of a shared snapshot). Both are deduplicated by key.
//
// What survives a restart: status.cloudEvents.deliveredThrough (W), a time such that every
// transition first seen at or before it was delivered or dropped. A new leader sends the
// transitions of the query's snapshots seen after W, and nothing else, so only the deliveries
// made since W was last written are sent twice. W stays below the oldest undelivered transition
// and below the start of any sync running in the namespace (whose writes may not be known yet),
// and it moves only when a transition was handled, so a quiet query writes no status for it.
//
// A slow or dead sink never delays the mirror: each sink has its own worker and a bounded
// backlog; what does not fit is dropped, counted (status.cloudEvents.dropped, a metric) and
// shown in the CloudEventsDelivered condition.
type cloudEvents struct {
	policy endpoints.SinkPolicy
	// reader reads a snapshot's summary uncached, for a transition found in the cache.
	reader client.Reader
	// limit bounds the backlog of each sink.
	limit  int
	sender cloudevents.Client
	// wake asks the reconciler to write a query's delivery state (a status patch).
	wake chan event.GenericEvent
	now  func() time.Time
	// ctx ends when the manager stops leading (Start): the workers live as long as it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	sinks  map[types.NamespacedName]*sink
	holds  map[string]map[uint64]time.Time
	holdID uint64
}

// Delivery timing. A settled transition is one first seen more than settle ago: W never passes
// a time closer to now, so that a write whose watch event is still on its way is not skipped
// by a restart. wakeEvery bounds how often a sink's progress is written to its query's status.
const (
	settle          = 5 * time.Second
	wakeEvery       = 10 * time.Second
	deliveryTimeout = 10 * time.Second
	knownFor        = 5 * time.Minute
	// DefaultCloudEventsBacklog is the backlog of each sink unless --cloudevents-backlog says
	// otherwise.
	DefaultCloudEventsBacklog = 1000
)

// maxResponseBytes bounds what is read of a sink's answer (the SDK reads an error answer whole
// into its error message).
const maxResponseBytes = 64 << 10

// sink is the delivery state of one query's sink.
type sink struct {
	query  types.NamespacedName
	uri    string
	source string
	since  time.Time
	stop   context.CancelFunc
	signal chan struct{}

	mu        sync.Mutex
	kinds     map[string]bool
	pending   []*outgoing
	known     map[string]time.Time
	persisted time.Time
	// handled is the newest seenAt of the transitions delivered, dropped or not wanted: W is
	// written again until it has passed it. fresh: since and W are not written yet.
	handled     time.Time
	fresh       bool
	dropped     int64
	failure     string
	overflowing bool
	lastWake    time.Time
	wakeTimer   *time.Timer
	// gone: forgotten; late calls leave no metric or timer behind.
	gone bool
}

// outgoing is one transition waiting for delivery.
type outgoing struct {
	seenAt          time.Time
	kind            string
	namespace, name string
	jobID, regionID string
	transition      dlcv1alpha1.PhaseTransition
	// data is the job summary, known when the transition comes from this manager's write; nil
	// when it comes from the cache, which keeps no summary: then it is read when sending.
	data *JobTransition
}

// newCloudEvents builds the sender of a manager. An empty policy turns CloudEvents off (every
// sink is refused).
func newCloudEvents(policy endpoints.SinkPolicy, reader client.Reader, limit int, now func() time.Time) (*cloudEvents, error) {
	if limit <= 0 {
		limit = DefaultCloudEventsBacklog
	}
	// Note: no redirect is followed (a sink that answers 3xx has not received the event), no
	// proxy from the environment is used for in-cluster names, and an answer is read up to
	// maxResponseBytes.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	httpClient := http.Client{
		Timeout:       deliveryTimeout,
		Transport:     limitedBodies{transport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	protocol, err := cehttp.New(cehttp.WithClient(httpClient))
	if err != nil {
		return nil, fmt.Errorf("building the CloudEvents HTTP protocol: %w", err)
	}
	sender, err := cloudevents.NewClient(protocol)
	if err != nil {
		return nil, fmt.Errorf("building the CloudEvents client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &cloudEvents{policy: policy, reader: reader, limit: limit, sender: sender, wake: make(chan event.GenericEvent, 1024), now: now,
		ctx: ctx, cancel: cancel, sinks: map[types.NamespacedName]*sink{}, holds: map[string]map[uint64]time.Time{}}, nil
}

// Start runs while the manager leads (a manager.Runnable that needs leader election): when it
// stops leading, every delivery stops, and what was not delivered is the next leader's.
func (e *cloudEvents) Start(ctx context.Context) error {
	<-ctx.Done()
	e.cancel()
	return nil
}

// limitedBodies cuts every answer's body at maxResponseBytes.
type limitedBodies struct{ next http.RoundTripper }

func (l limitedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, maxResponseBytes), resp.Body}
	}
	return resp, err
}

// hold marks a sync of the namespace as running from started until the returned release is
// called: no sink of the namespace moves W past started meanwhile.
func (e *cloudEvents) hold(namespace string, started time.Time) (release func()) {
	if e == nil {
		return func() {}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.holdID++
	id := e.holdID
	if e.holds[namespace] == nil {
		e.holds[namespace] = map[uint64]time.Time{}
	}
	e.holds[namespace][id] = started
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.holds[namespace], id)
		if len(e.holds[namespace]) == 0 {
			delete(e.holds, namespace)
		}
	}
}

func (e *cloudEvents) sinkOf(key types.NamespacedName) *sink {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sinks[key]
}

// prepare makes the query's sink match its spec before a sync: registered (restoring W from the
// status, then sending what the query's snapshots hold after W), changed, or removed. It
// returns the reason of a refused sink ("" otherwise).
func (e *cloudEvents) prepare(q *dlcv1alpha1.JobQuery, owned func() ([]*dlcv1alpha1.DLCJobSnapshot, error)) (refused error, err error) {
	if e == nil {
		return nil, nil
	}
	key := types.NamespacedName{Namespace: q.Namespace, Name: q.Name}
	spec := q.Spec.CloudEvents
	if spec == nil || !q.DeletionTimestamp.IsZero() {
		e.forget(key)
		return nil, nil
	}
	if err := e.policy.Check(spec.Sink.URI); err != nil {
		e.forget(key)
		return err, nil
	}
	s := e.sinkOf(key)
	if s != nil && s.uri == spec.Sink.URI {
		s.setKinds(spec.Types)
		return nil, nil
	}
	e.forget(key)
	// Note: in whole seconds, as the status keeps it and as the API writes a job's times, so a
	// job created in the second the sink was configured counts as after it.
	now := e.now().Truncate(time.Second)
	s = &sink{query: key, uri: spec.Sink.URI, source: querySource(q.Namespace, q.Name), since: now, persisted: now,
		known: map[string]time.Time{}, signal: make(chan struct{}, 1), fresh: true}
	if st := q.Status.CloudEvents; st != nil && st.Sink == spec.Sink.URI && st.DeliveredThrough != nil && st.Since != nil {
		s.since, s.persisted, s.dropped, s.fresh = st.Since.Time, st.DeliveredThrough.Time, st.Dropped, false
	}
	s.setKinds(spec.Types)
	ctx, stop := context.WithCancel(e.ctx)
	s.stop = stop
	e.mu.Lock()
	e.sinks[key] = s
	e.mu.Unlock()
	go e.run(ctx, s)
	// Note: registered first, read second: a snapshot written meanwhile is either in the cache
	// now or reaches onSnapshot after this, when the sink is there to take it.
	snaps, err := owned()
	if err != nil {
		e.forget(key)
		return nil, err
	}
	for _, snap := range snaps {
		for _, tr := range transitionsOf(&snap.Status) {
			if tr.SeenAt.After(s.persisted) {
				e.enqueue(s, snap.Namespace, snap.Name, snap.Spec.JobID, snap.Spec.RegionID, &snap.Status, tr, false)
			}
		}
	}
	return nil, nil
}

// transitionsOf lists a status' transitions, oldest first: the previous ones, then the current.
func transitionsOf(st *dlcv1alpha1.DLCJobSnapshotStatus) []*dlcv1alpha1.PhaseTransition {
	out := make([]*dlcv1alpha1.PhaseTransition, 0, len(st.PreviousTransitions)+1)
	for i := range st.PreviousTransitions {
		out = append(out, &st.PreviousTransitions[i])
	}
	if st.Transition != nil {
		out = append(out, st.Transition)
	}
	return out
}

// forget stops and removes a query's sink.
func (e *cloudEvents) forget(key types.NamespacedName) {
	if e == nil {
		return
	}
	e.mu.Lock()
	s := e.sinks[key]
	delete(e.sinks, key)
	e.mu.Unlock()
	if s != nil {
		s.stop()
		s.mu.Lock()
		s.gone = true
		if s.wakeTimer != nil {
			s.wakeTimer.Stop()
		}
		s.mu.Unlock()
	}
	cloudEventsBacklog.DeletePartialMatch(prometheus.Labels{labelNamespace: key.Namespace, labelQuery: key.Name})
	cloudEventsDroppedTotal.DeletePartialMatch(prometheus.Labels{labelNamespace: key.Namespace, labelQuery: key.Name})
}

func (s *sink) setKinds(kinds []string) {
	if len(kinds) == 0 {
		kinds = []string{snapshot.TransitionSucceeded, snapshot.TransitionFailed, snapshot.TransitionStopped}
	}
	set := map[string]bool{}
	for _, k := range kinds {
		set[k] = true
	}
	s.mu.Lock()
	s.kinds = set
	s.mu.Unlock()
}

// written is called by a sync after each snapshot write that set a new transition.
func (e *cloudEvents) written(q *dlcv1alpha1.JobQuery, name, jobID string, status *dlcv1alpha1.DLCJobSnapshotStatus) {
	if e == nil {
		return
	}
	if s := e.sinkOf(types.NamespacedName{Namespace: q.Namespace, Name: q.Name}); s != nil {
		e.enqueue(s, q.Namespace, name, jobID, q.Spec.RegionID, status, status.Transition, true)
	}
}

// onSnapshot takes the transitions of snapshot updates (old nil for an add) to the sinks of the
// queries that match them. A new transition is taken always (another writer's clock may lag);
// the current one of a snapshot new to a query (an add, which an informer's first list replays
// for every snapshot, or a query added to matchedBy) only when it is after W.
func (e *cloudEvents) onSnapshot(old, snap *dlcv1alpha1.DLCJobSnapshot) {
	tr := snap.Status.Transition
	if tr == nil {
		return
	}
	newKey := old != nil && (old.Status.Transition == nil || old.Status.Transition.Key != tr.Key)
	for _, name := range snap.Status.MatchedBy {
		if !newKey && old != nil && slices.Contains(old.Status.MatchedBy, name) {
			continue
		}
		s := e.sinkOf(types.NamespacedName{Namespace: snap.Namespace, Name: name})
		if s == nil {
			continue
		}
		// Note: an add is every snapshot again after a restart, so what W says was handled is
		// skipped; a query that joins a snapshot gets its transition unless it happened before
		// the sink existed (W may have passed it while another query held the snapshot).
		s.mu.Lock()
		stale := (old == nil && !tr.SeenAt.After(s.persisted)) || (old != nil && !newKey && tr.SeenAt.Time.Before(s.since))
		s.mu.Unlock()
		if !stale {
			e.enqueue(s, snap.Namespace, snap.Name, snap.Spec.JobID, snap.Spec.RegionID, &snap.Status, tr, false)
		}
	}
}

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
// sync's write, the informer) does not send it again. Note: bounded, so that a long outage of a
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

// run delivers a sink's backlog, oldest first, one at a time, retrying with backoff.
func (e *cloudEvents) run(ctx context.Context, s *sink) {
	failures := 0
	for {
		s.mu.Lock()
		var next *outgoing
		if len(s.pending) > 0 {
			next = s.pending[0]
		}
		s.mu.Unlock()
		if next == nil {
			select {
			case <-ctx.Done():
				return
			case <-s.signal:
				continue
			}
		}
		err := e.send(ctx, s, next)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if s.gone {
			s.mu.Unlock()
			return
		}
		var refused *refusedError
		if err == nil || errors.As(err, &refused) {
			s.pending = slices.DeleteFunc(s.pending, func(o *outgoing) bool { return o == next })
			cloudEventsBacklog.WithLabelValues(s.query.Namespace, s.query.Name).Set(float64(len(s.pending)))
			wasFailing := s.failure != ""
			s.failure = ""
			s.handledLocked(next.seenAt)
			if refused != nil {
				// Note: a sink that refuses an event for good (400, 413, ...) would refuse it at
				// every retry and hold every later one behind it: it is dropped and counted.
				s.failure = fmt.Sprintf("the sink refused %s for good: %v; dropped", next.transition.Key, err)
				e.dropLocked(s, false)
			}
			if len(s.pending) == 0 {
				s.overflowing = false
			}
			e.wakeLocked(s, wasFailing)
			failures = 0
		} else {
			wasFailing := s.failure != ""
			s.failure = fmt.Sprintf("%d transitions waiting; the last attempt: %v", len(s.pending), err)
			e.wakeLocked(s, !wasFailing)
			failures++
		}
		s.mu.Unlock()
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(doubling(time.Second, 30*time.Second, int32(failures))):
			}
		}
	}
}

// send POSTs one event; an answer other than 2xx is a failure, a redirect named as such.
func (e *cloudEvents) send(ctx context.Context, s *sink, out *outgoing) error {
	ctx, cancel := context.WithTimeout(cloudevents.ContextWithTarget(ctx, s.uri), deliveryTimeout)
	defer cancel()
	if out.data == nil {
		data, err := e.readSummary(ctx, out)
		if err != nil {
			return err
		}
		out.data = data
	}
	result := e.sender.Send(ctx, transitionEvent(s.source, s.query.Name, out))
	if cloudevents.IsACK(result) {
		cloudEventsSentTotal.WithLabelValues("delivered").Inc()
		return nil
	}
	cloudEventsSentTotal.WithLabelValues("failed").Inc()
	var answer *cehttp.Result
	if errors.As(result, &answer) && answer.StatusCode/100 == 3 {
		return fmt.Errorf("the sink answered %d, a redirect, which is not followed", answer.StatusCode)
	}
	if errors.As(result, &answer) && answer.StatusCode/100 == 4 && answer.StatusCode != http.StatusRequestTimeout &&
		answer.StatusCode != http.StatusTooManyRequests {
		return &refusedError{fmt.Sprintf("%d: %s", answer.StatusCode, cut(result.Error(), 300))}
	}
	if result == nil {
		return errors.New("no answer")
	}
	return fmt.Errorf("%s", cut(result.Error(), 300))
}

// refusedError is a sink's answer that no retry changes (a 4xx other than 408 and 429).
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

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

// report writes the delivery state of the query's sink into its status and the
// CloudEventsDelivered condition; refused is the sink's refusal by the policy, if any.
func (e *cloudEvents) report(q *dlcv1alpha1.JobQuery, refused error) {
	if e == nil {
		return
	}
	if q.Spec.CloudEvents == nil {
		q.Status.CloudEvents = nil
		meta.RemoveStatusCondition(&q.Status.Conditions, dlcv1alpha1.ConditionCloudEventsDelivered)
		return
	}
	set := func(status metav1.ConditionStatus, reason, message string) {
		meta.SetStatusCondition(&q.Status.Conditions, metav1.Condition{Type: dlcv1alpha1.ConditionCloudEventsDelivered,
			Status: status, Reason: reason, Message: truncateMessage(message), ObservedGeneration: q.Generation})
	}
	if refused != nil {
		set(metav1.ConditionFalse, dlcv1alpha1.ReasonSinkNotAllowed, refused.Error()+"; no event is sent")
		return
	}
	s := e.sinkOf(types.NamespacedName{Namespace: q.Namespace, Name: q.Name})
	if s == nil {
		return
	}
	holds := e.oldestHold(s.query.Namespace)
	s.mu.Lock()
	defer s.mu.Unlock()
	through := e.throughLocked(s, holds)
	late := len(s.pending) > 0 && !s.pending[0].seenAt.After(s.persisted)
	if s.fresh || late || s.handled.After(s.persisted) {
		s.persisted, s.fresh = through, false
		for key, seen := range s.known {
			if seen.Before(s.persisted.Add(-knownFor)) {
				delete(s.known, key)
			}
		}
		if s.handled.After(s.persisted) {
			// Handled, but too recent (or behind a running sync) to pass: write W again later.
			e.wakeLocked(s, false)
		}
	}
	since := metav1.NewTime(s.since)
	w := metav1.NewMicroTime(s.persisted)
	q.Status.CloudEvents = &dlcv1alpha1.CloudEventsStatus{Sink: s.uri, Since: &since, DeliveredThrough: &w,
		Backlog: int32(len(s.pending)), Dropped: s.dropped}
	switch {
	case s.overflowing:
		set(metav1.ConditionFalse, dlcv1alpha1.ReasonBacklogOverflowed, fmt.Sprintf(
			"The backlog of %d transitions is full: %d transitions were dropped (status.cloudEvents.dropped); their snapshots still carry status.transition",
			e.limit, s.dropped))
	case s.failure != "":
		set(metav1.ConditionFalse, dlcv1alpha1.ReasonDeliveryFailing, s.failure)
	default:
		set(metav1.ConditionTrue, dlcv1alpha1.ReasonDelivering, "Events reach "+s.uri)
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

// querySource is the CloudEvents source of a query's events: its API path.
func querySource(namespace, name string) string {
	return "/apis/" + dlcv1alpha1.GroupVersion.String() + "/namespaces/" + namespace + "/jobqueries/" + name
}

// cloudEventTypes maps a transition kind to its CloudEvent type.
var cloudEventTypes = map[string]string{
	snapshot.TransitionSucceeded:    dlcv1alpha1.CloudEventTypeSucceeded,
	snapshot.TransitionFailed:       dlcv1alpha1.CloudEventTypeFailed,
	snapshot.TransitionStopped:      dlcv1alpha1.CloudEventTypeStopped,
	snapshot.TransitionRunning:      dlcv1alpha1.CloudEventTypeRunning,
	snapshot.TransitionPhaseChanged: dlcv1alpha1.CloudEventTypePhaseChanged,
}

// JobTransition is the data of a dlcsync CloudEvent: the job summary of its snapshot, redacted
// as the snapshot is.
type JobTransition struct {
	Namespace     string `json:"namespace"`
	Snapshot      string `json:"snapshot"`
	Query         string `json:"query"`
	JobID         string `json:"jobId"`
	RegionID      string `json:"regionId"`
	DisplayName   string `json:"displayName,omitempty"`
	JobType       string `json:"jobType,omitempty"`
	WorkspaceID   string `json:"workspaceId,omitempty"`
	WorkspaceName string `json:"workspaceName,omitempty"`
	Username      string `json:"username,omitempty"`
	// Kind is the kind of transition (spec.cloudEvents.types): Succeeded, Failed, Stopped,
	// Running or PhaseChanged, for filters that read the body only.
	Kind          string       `json:"kind"`
	Phase         string       `json:"phase"`
	From          string       `json:"from,omitempty"`
	FirstSeen     bool         `json:"firstSeen"`
	ReasonCode    string       `json:"reasonCode,omitempty"`
	ReasonMessage string       `json:"reasonMessage,omitempty"`
	TransitionKey string       `json:"transitionKey"`
	SeenAt        metav1.Time  `json:"seenAt"`
	CreatedAt     *metav1.Time `json:"createdAt,omitempty"`
	StartedAt     *metav1.Time `json:"startedAt,omitempty"`
	FinishedAt    *metav1.Time `json:"finishedAt,omitempty"`
}

// summaryOf is the job summary of a whole status, for the transition it holds.
func summaryOf(st *dlcv1alpha1.DLCJobSnapshotStatus) *JobTransition {
	return &JobTransition{DisplayName: st.DisplayName, JobType: st.JobType, WorkspaceID: st.WorkspaceID,
		WorkspaceName: st.WorkspaceName, Username: st.Username, ReasonCode: st.ReasonCode,
		ReasonMessage: cut(st.ReasonMessage, 1024), CreatedAt: st.CreatedAt, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt}
}

// readSummary reads the job summary of a transition found in the cache from the snapshot as it
// is now. The fields that belong to a phase (reason, finish time) are taken only while the
// snapshot still shows this transition; a snapshot that is gone gives what the transition says.
func (e *cloudEvents) readSummary(ctx context.Context, out *outgoing) (*JobTransition, error) {
	var snap dlcv1alpha1.DLCJobSnapshot
	err := e.reader.Get(ctx, types.NamespacedName{Namespace: out.namespace, Name: out.name}, &snap)
	switch {
	case apierrors.IsNotFound(err):
		return &JobTransition{}, nil
	case err != nil:
		return nil, fmt.Errorf("reading snapshot %s/%s: %w", out.namespace, out.name, err)
	}
	data := summaryOf(&snap.Status)
	if tr := snap.Status.Transition; tr == nil || tr.Key != out.transition.Key {
		data.ReasonCode, data.ReasonMessage, data.FinishedAt = "", "", nil
	}
	return data, nil
}

// transitionEvent is the CloudEvent of a transition. Its id is the transition key, the same
// whoever sends it, so a receiver dedupes on (source, id).
func transitionEvent(source, query string, out *outgoing) cloudevents.Event {
	tr := &out.transition
	ev := cloudevents.NewEvent()
	ev.SetID(tr.Key)
	ev.SetSource(source)
	ev.SetType(cloudEventTypes[out.kind])
	ev.SetSubject(out.name)
	ev.SetTime(tr.SeenAt.Time)
	ev.SetExtension("dlcjobid", out.jobID)
	ev.SetExtension("dlcphase", tr.Phase)
	ev.SetExtension("dlcfirstseen", tr.From == "")
	data := *out.data
	data.Namespace, data.Snapshot, data.Query, data.JobID, data.RegionID = out.namespace, out.name, query, out.jobID, out.regionID
	data.Kind, data.Phase, data.From, data.FirstSeen, data.TransitionKey = out.kind, tr.Phase, tr.From, tr.From == "", tr.Key
	data.SeenAt = metav1.NewTime(tr.SeenAt.Time)
	// Note: SetData of a struct cannot fail for this type (plain JSON fields).
	_ = ev.SetData(cloudevents.ApplicationJSON, data)
	return ev
}

// refusedEvent emits the Warning for a refused sink when the condition turns to it.
func (e *cloudEvents) refusedEvent(r *JobQueryReconciler, q *dlcv1alpha1.JobQuery, before []metav1.Condition, refused error) {
	if refused == nil {
		return
	}
	if c := meta.FindStatusCondition(before, dlcv1alpha1.ConditionCloudEventsDelivered); c != nil && c.Reason == dlcv1alpha1.ReasonSinkNotAllowed {
		return
	}
	r.Recorder.Eventf(q, nil, corev1.EventTypeWarning, dlcv1alpha1.ReasonSinkNotAllowed, "CloudEvents", "%s", cut(refused.Error(), 900))
}
