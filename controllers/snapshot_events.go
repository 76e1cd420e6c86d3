package controllers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// phaseEvent emits one event per job phase transition on the snapshot, with a stable message so
// that repeated transitions aggregate. From the converted job, whose strings are the ones
// the snapshot shows (URL userinfo scrubbed), never from the API's answer: events are readable by
// whoever may read the namespace's events.
func (r *JobQueryReconciler) phaseEvent(namespace, name string, existing *dlcv1alpha1.DLCJobSnapshot, job *dlcv1alpha1.JobItem) {
	reason, warning := snapshot.TransitionEvent(existing.Status.Phase, job.Status)
	eventType := corev1.EventTypeNormal
	if warning {
		eventType = corev1.EventTypeWarning
	}
	regarding := existing.DeepCopy()
	regarding.Namespace, regarding.Name = namespace, name
	note := fmt.Sprintf("Job %s (%s) changed from %s to %s", cut(job.DisplayName, 200), job.JobID, existing.Status.Phase, job.Status)
	if job.ReasonCode != "" && snapshot.Outcome(job.Status) != "" {
		note += ": " + cut(job.ReasonCode, 200)
	}
	r.Recorder.Eventf(regarding, nil, eventType, reason, actionPhaseChanged, "%s", note)
}

// maxFirstSeenEvents bounds the JobFirstSeen events of one sync. The first sync of a query
// over a workspace's history finds thousands of ended jobs; an event each would double the
// requests of that sync. The rest are counted in one event on the query, and every one of them
// carries status.transition (with no from) for automation that needs them all.
const maxFirstSeenEvents = 50

// firstSeenJob is what the JobFirstSeen event of a new snapshot says.
type firstSeenJob struct {
	snapshot                              *dlcv1alpha1.DLCJobSnapshot
	displayName, jobID, phase, reasonCode string
}

// firstSeen counts a snapshot created for a job that had already ended, keeping what its event
// needs for the first maxFirstSeenEvents.
func (c *writeCounts) firstSeen(created *dlcv1alpha1.DLCJobSnapshot, job *dlcv1alpha1.JobItem) {
	c.firstSeenEnded++
	if len(c.firstSeenJobs) >= maxFirstSeenEvents {
		return
	}
	regarding := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: created.Namespace, Name: created.Name,
		UID: created.UID, ResourceVersion: created.ResourceVersion}}
	c.firstSeenJobs = append(c.firstSeenJobs, firstSeenJob{snapshot: regarding, displayName: cut(job.DisplayName, 200),
		jobID: job.JobID, phase: job.Status, reasonCode: cut(job.ReasonCode, 200)})
}

// firstSeenEvents emits the JobFirstSeen events of a sync, with the reason a change to the same
// phase would have had (JobFailed as a Warning, ...), so that an event consumer filtering on the
// reason sees both and one filtering on the action can tell them apart; the jobs beyond
// maxFirstSeenEvents are counted in one event on the query.
func (r *JobQueryReconciler) firstSeenEvents(q *dlcv1alpha1.JobQuery, counts *writeCounts) {
	for _, j := range counts.firstSeenJobs {
		reason, warning := snapshot.TransitionEvent("", j.phase)
		eventType := corev1.EventTypeNormal
		if warning {
			eventType = corev1.EventTypeWarning
		}
		note := fmt.Sprintf("Job %s (%s) first seen %s", j.displayName, j.jobID, j.phase)
		if j.reasonCode != "" {
			note += ": " + j.reasonCode
		}
		r.Recorder.Eventf(j.snapshot, nil, eventType, reason, actionFirstSeen, "%s", note)
	}
	if more := counts.firstSeenEnded - int32(len(counts.firstSeenJobs)); more > 0 {
		r.Recorder.Eventf(q, nil, corev1.EventTypeNormal, "JobsFirstSeenEnded", actionFirstSeen,
			"%d more jobs were first seen after they had ended (events for the first %d only); their snapshots' status.transition has no from",
			more, maxFirstSeenEvents)
	}
}

// The actions of job events: a change seen between two syncs, or a job whose snapshot was
// created in a phase where it had already ended (the change happened before dlcsync saw it).
const (
	actionPhaseChanged = "JobPhaseChanged"
	actionFirstSeen    = "JobFirstSeen"
)
