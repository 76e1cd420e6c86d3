package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// maxResponseBytes bounds what is read of a sink's answer (the SDK reads an error answer whole
// into its error message).
const maxResponseBytes = 64 << 10

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
				// A sink that refuses an event for good (400, 413, ...) would refuse it at
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
	// SetData of a struct cannot fail for this type (plain JSON fields).
	_ = ev.SetData(cloudevents.ApplicationJSON, data)
	return ev
}
