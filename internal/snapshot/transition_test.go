package snapshot

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// Every phase of the API reference belongs to the outcome its conditions say: the event reasons
// and the CloudEvent types come from the same table, so they cannot disagree.
func TestEventsConditionsAndOutcomesAgree(t *testing.T) {
	g := NewWithT(t)
	for _, phase := range []string{dlc.StatusCreating, dlc.StatusQueuing, dlc.StatusBidding, dlc.StatusEnvPreparing,
		dlc.StatusSanityChecking, dlc.StatusRunning, dlc.StatusRestarting, dlc.StatusStopping, dlc.StatusSucceededReserving,
		dlc.StatusFailedReserving, dlc.StatusSucceeded, dlc.StatusFailed, dlc.StatusStopped, "SomethingNew"} {
		outcome := Outcome(phase)
		for _, c := range Conditions(phase, "", "") {
			want := map[string]string{dlcv1alpha1.ConditionComplete: OutcomeSucceeded, dlcv1alpha1.ConditionFailed: OutcomeFailed,
				dlcv1alpha1.ConditionStopped: OutcomeStopped}[c.Type]
			switch {
			case want == "":
			case outcome == want:
				g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: condition %s", phase, c.Type)
			default:
				g.Expect(c.Status).NotTo(Equal(metav1.ConditionTrue), "%s: condition %s", phase, c.Type)
			}
		}
		g.Expect(Labels(&dlc.JobItem{Status: phase}, "cn-hangzhou")[dlcv1alpha1.LabelOutcome]).To(Equal(outcome), "%s: outcome label", phase)
		reason, warning := TransitionEvent(dlc.StatusRunning, phase)
		if outcome != "" {
			g.Expect(reason).To(Equal("Job"+outcome), phase)
		}
		g.Expect(warning).To(Equal(outcome == OutcomeFailed), phase)
	}
}

// A failure is one JobFailed Warning, at whichever of its phases dlcsync sees first; the end of
// the reservation period is its own Normal reason; a job first seen ended is reported by its
// outcome too.
func TestTransitionEventsCountOutcomesNotPhases(t *testing.T) {
	g := NewWithT(t)
	for _, tc := range []struct {
		from, to, reason string
		warning          bool
	}{
		{dlc.StatusRunning, dlc.StatusFailedReserving, "JobFailed", true},
		{dlc.StatusRunning, dlc.StatusFailed, "JobFailed", true},
		{dlc.StatusFailedReserving, dlc.StatusFailed, "JobReservationEnded", false},
		{dlc.StatusRunning, dlc.StatusSucceededReserving, "JobSucceeded", false},
		{dlc.StatusSucceededReserving, dlc.StatusSucceeded, "JobReservationEnded", false},
		{dlc.StatusStopping, dlc.StatusStopped, "JobStopped", false},
		{dlc.StatusQueuing, dlc.StatusRunning, "JobRunning", false},
		{"", dlc.StatusFailed, "JobFailed", true},
		{"", dlc.StatusFailedReserving, "JobFailed", true},
		{dlc.StatusRunning, "not a reason!", "Jobnot_a_reason", false},
		{dlc.StatusRunning, "v1.2", "JobUnknown", false},
	} {
		reason, warning := TransitionEvent(tc.from, tc.to)
		g.Expect(reason).To(Equal(tc.reason), "%s -> %s", tc.from, tc.to)
		g.Expect(warning).To(Equal(tc.warning), "%s -> %s", tc.from, tc.to)
	}
}

// The transition key changes with the phase only: the same phase rewritten keeps it, a change (or
// the same phase entered again later) gets a new one, and a new snapshot's has no from.
func TestATransitionKeyChangesWithThePhaseOnly(t *testing.T) {
	g := NewWithT(t)
	t0 := time.Date(2026, 12, 7, 6, 30, 0, 123456789, time.UTC)
	first, none := Transition("dlc1", dlc.StatusRunning, nil, t0)
	g.Expect(none).To(BeEmpty())
	g.Expect(*first).To(Equal(dlcv1alpha1.PhaseTransition{Phase: "Running", SeenAt: first.SeenAt,
		Key: "dlc1/Running/2026-12-07T06:30:00.123456Z"}))
	g.Expect(first.SeenAt.Time).To(Equal(t0.Truncate(time.Microsecond)))

	running := &dlcv1alpha1.DLCJobSnapshotStatus{Phase: dlc.StatusRunning, Transition: first}
	same, _ := Transition("dlc1", dlc.StatusRunning, running, t0.Add(time.Minute))
	g.Expect(same).To(BeIdenticalTo(first))

	failed, previous := Transition("dlc1", dlc.StatusFailed, running, t0.Add(time.Minute))
	g.Expect(previous).To(Equal([]dlcv1alpha1.PhaseTransition{*first}))
	g.Expect(failed.From).To(Equal("Running"))
	g.Expect(failed.Key).To(Equal("dlc1/Failed/2026-12-07T06:31:00.123456Z"))

	// A snapshot written before transitions existed gets none while its phase stays.
	legacy, _ := Transition("dlc1", dlc.StatusRunning, &dlcv1alpha1.DLCJobSnapshotStatus{Phase: dlc.StatusRunning}, t0)
	g.Expect(legacy).To(BeNil())
	// Running again after a restart is a new transition with a new key.
	again, _ := Transition("dlc1", dlc.StatusRunning, &dlcv1alpha1.DLCJobSnapshotStatus{Phase: dlc.StatusRestarting}, t0.Add(2*time.Minute))
	g.Expect(again.Key).NotTo(Equal(first.Key))
	// The key is what the seenAt field reads back as.
	g.Expect(again.Key).To(HaveSuffix(again.SeenAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00")))
}

// A transition's kind agrees with its event: an outcome's kind exactly when the event has the
// outcome's reason.
func TestTransitionKindsAgreeWithEvents(t *testing.T) {
	g := NewWithT(t)
	phases := []string{"", dlc.StatusQueuing, dlc.StatusRunning, dlc.StatusRestarting, dlc.StatusFailedReserving, dlc.StatusFailed,
		dlc.StatusSucceededReserving, dlc.StatusSucceeded, dlc.StatusStopping, dlc.StatusStopped}
	for _, from := range phases {
		for _, to := range phases[1:] {
			kind := TransitionKind(from, to)
			reason, _ := TransitionEvent(from, to)
			switch kind {
			case TransitionSucceeded, TransitionFailed, TransitionStopped:
				g.Expect(reason).To(Equal("Job"+kind), "%s -> %s", from, to)
			case TransitionRunning:
				g.Expect(to).To(Equal(dlc.StatusRunning))
			default:
				g.Expect(reason).NotTo(BeElementOf("JobSucceeded", "JobFailed", "JobStopped"), "%s -> %s", from, to)
			}
		}
	}
}

// The previous transitions keep the last MaxPreviousTransitions, oldest first.
func TestPreviousTransitionsKeepTheLastThree(t *testing.T) {
	g := NewWithT(t)
	t0 := time.Date(2026, 12, 7, 6, 30, 0, 0, time.UTC)
	var st *dlcv1alpha1.DLCJobSnapshotStatus
	var keys []string
	for i, phase := range []string{dlc.StatusQueuing, dlc.StatusRunning, dlc.StatusRestarting, dlc.StatusRunning, dlc.StatusFailedReserving, dlc.StatusFailed} {
		tr, prev := Transition("dlc1", phase, st, t0.Add(time.Duration(i)*time.Minute))
		st = &dlcv1alpha1.DLCJobSnapshotStatus{Phase: phase, Transition: tr, PreviousTransitions: prev}
		keys = append(keys, tr.Key)
	}
	var prev []string
	for _, p := range st.PreviousTransitions {
		prev = append(prev, p.Key)
	}
	g.Expect(prev).To(Equal(keys[2:5]))
	g.Expect(st.Transition.Key).To(Equal(keys[5]))
}
