package snapshot

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// The outcomes of a job: the end a phase belongs to, or none while the job has not ended. A job
// has ended from its reservation period on (SucceededReserving, FailedReserving keep its resources
// for settings.jobReservedMinutes), so the Complete and Failed conditions, the events, the
// CloudEvent types and the Argo CD health check all count those phases as the end they lead to.
const (
	OutcomeSucceeded = "Succeeded"
	OutcomeFailed    = "Failed"
	OutcomeStopped   = "Stopped"
)

// Outcome is the end a phase belongs to: OutcomeSucceeded, OutcomeFailed, OutcomeStopped, or ""
// for a job that has not ended.
func Outcome(phase string) string {
	switch phase {
	case dlc.StatusSucceeded, dlc.StatusSucceededReserving:
		return OutcomeSucceeded
	case dlc.StatusFailed, dlc.StatusFailedReserving:
		return OutcomeFailed
	case dlc.StatusStopped:
		return OutcomeStopped
	}
	return ""
}

// MaxPreviousTransitions bounds status.previousTransitions.
const MaxPreviousTransitions = 3

// Transition is the status.transition and status.previousTransitions of a snapshot written with
// the job in phase at now, over the status it had (nil for a new snapshot). They change only with
// the phase, so that a key stays the same however often the snapshot is rewritten; a snapshot
// written before transitions were recorded gets none until its phase changes (one given now would
// be taken by automation for a new, first-seen job).
func Transition(jobID, phase string, had *dlcv1alpha1.DLCJobSnapshotStatus, now time.Time) (*dlcv1alpha1.PhaseTransition,
	[]dlcv1alpha1.PhaseTransition) {
	phase = LabelValue(phase)
	from := ""
	var previous []dlcv1alpha1.PhaseTransition
	if had != nil {
		from = LabelValue(had.Phase)
		if from == phase {
			return had.Transition, had.PreviousTransitions
		}
		previous = append(previous, had.PreviousTransitions...)
		if had.Transition != nil {
			previous = append(previous, *had.Transition)
		}
		previous = previous[max(0, len(previous)-MaxPreviousTransitions):]
	}
	seen := metav1.NewMicroTime(now.UTC().Truncate(time.Microsecond))
	return &dlcv1alpha1.PhaseTransition{Phase: phase, From: from, SeenAt: seen,
		Key: jobID + "/" + phase + "/" + seen.Format(microLayout)}, previous
}

// microLayout is how metav1.MicroTime writes a time, so a key reads the same as its seenAt.
const microLayout = "2006-01-02T15:04:05.000000Z07:00"

// TransitionEvent is the reason of the event for a job's change from one phase to another (from
// "" for a job first seen), and whether it is a Warning. Entering an outcome gives the outcome's
// reason (JobSucceeded, JobFailed as a Warning, JobStopped) once, at whichever of its phases
// comes first; the end of a reservation period (FailedReserving to Failed) is
// JobReservationEnded, so that JobFailed counts failures, not phases. Any other phase gives
// Job<phase> (JobRunning, JobQueuing, ...).
func TransitionEvent(from, to string) (reason string, warning bool) {
	outcome := Outcome(to)
	switch {
	case outcome != "" && outcome == Outcome(from):
		return "JobReservationEnded", false
	case outcome != "":
		return "Job" + outcome, outcome == OutcomeFailed
	}
	reason = "Job" + LabelValue(to)
	if !validReason(reason) {
		reason = "JobUnknown"
	}
	return reason, false
}

// The kinds of transition a CloudEvents sink subscribes to (JobQuery spec.cloudEvents.types).
const (
	TransitionSucceeded    = "Succeeded"
	TransitionFailed       = "Failed"
	TransitionStopped      = "Stopped"
	TransitionRunning      = "Running"
	TransitionPhaseChanged = "PhaseChanged"
)

// TransitionKind is the kind of a change from one phase to another (from "" for a job first
// seen), from the same table as TransitionEvent: entering an end is that end's kind once, at its
// first phase; entering Running is Running; everything else (the end of a reservation period
// included) is PhaseChanged. Every change is exactly one kind.
func TransitionKind(from, to string) string {
	outcome := Outcome(to)
	switch {
	case outcome != "" && outcome != Outcome(from):
		return outcome
	case to == dlc.StatusRunning:
		return TransitionRunning
	}
	return TransitionPhaseChanged
}
