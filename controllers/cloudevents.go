package controllers

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
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
	// No redirect is followed (a sink that answers 3xx has not received the event), no
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
	// In whole seconds, as the status keeps it and as the API writes a job's times, so a
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
	// Registered first, read second: a snapshot written meanwhile is either in the cache
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
		// An add is every snapshot again after a restart, so what W says was handled is
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
			"The backlog of %d transitions is full: %d transitions were dropped (status.cloudEvents.dropped); "+
				"their snapshots still carry status.transition",
			e.limit, s.dropped))
	case s.failure != "":
		set(metav1.ConditionFalse, dlcv1alpha1.ReasonDeliveryFailing, s.failure)
	default:
		set(metav1.ConditionTrue, dlcv1alpha1.ReasonDelivering, "Events reach "+s.uri)
	}
}

// refusedEvent emits the Warning for a refused sink when the condition turns to it.
func (e *cloudEvents) refusedEvent(r *JobQueryReconciler, q *dlcv1alpha1.JobQuery, before []metav1.Condition, refused error) {
	if refused == nil {
		return
	}
	c := meta.FindStatusCondition(before, dlcv1alpha1.ConditionCloudEventsDelivered)
	if c != nil && c.Reason == dlcv1alpha1.ReasonSinkNotAllowed {
		return
	}
	r.Recorder.Eventf(q, nil, corev1.EventTypeWarning, dlcv1alpha1.ReasonSinkNotAllowed, "CloudEvents", "%s", cut(refused.Error(), 900))
}
