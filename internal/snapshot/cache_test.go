package snapshot_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

func TestForCacheKeepsWhatASyncDecidesWith(t *testing.T) {
	created, observed := metav1.NewTime(time.Unix(1700000000, 0)), metav1.NewTime(time.Unix(1700000600, 0))
	owner := metav1.OwnerReference{APIVersion: "dlc.dlcsync.io/v1alpha1", Kind: "JobQuery", Name: "q", UID: "u-q"}
	whole := &dlcv1alpha1.DLCJobSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "dlc1", Namespace: "team-a", UID: "u-1", ResourceVersion: "7", Generation: 1,
			Labels: map[string]string{dlcv1alpha1.LabelStatus: "Running", "team": "a"},
			Annotations: map[string]string{dlcv1alpha1.AnnotationEndpoint: "https://e", dlcv1alpha1.AnnotationHolders: "q",
				"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
			OwnerReferences: []metav1.OwnerReference{owner}, Finalizers: []string{"f"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "dlcsync"}}},
		Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: "dlc1", RegionID: "cn-hangzhou"},
		Status: dlcv1alpha1.DLCJobSnapshotStatus{Job: &dlcv1alpha1.JobItem{JobID: "dlc1"}, DisplayName: "train", Phase: "Running",
			ReasonMessage: "m", Username: "alice", CreatedAt: &created, FinishedAt: &observed, ObservedAt: &observed, MatchedBy: []string{"q"}, Matching: true,
			ContentHash: "h", Revealed: []dlcv1alpha1.RevealGroup{dlcv1alpha1.RevealCommands},
			Conditions: []metav1.Condition{{Type: "Running", Status: metav1.ConditionTrue, Reason: "Running",
				Message: strings.Repeat("the job's own text ", 1700), LastTransitionTime: observed}},
			Transition: &dlcv1alpha1.PhaseTransition{Phase: "Running", From: "Queuing", SeenAt: metav1.NewMicroTime(time.Unix(1700000300, 5000)),
				Key: "dlc1/Running/2023-11-14T22:18:20.000005Z"},
			PreviousTransitions: []dlcv1alpha1.PhaseTransition{{Phase: "Queuing", SeenAt: metav1.NewMicroTime(time.Unix(1700000200, 0)),
				Key: "dlc1/Queuing/2023-11-14T22:16:40.000000Z"}}},
	}
	got := snapshot.ForCache(whole.DeepCopy())

	want := whole.DeepCopy()
	want.ManagedFields = nil
	delete(want.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
	want.Status = dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Running", CreatedAt: &created, FinishedAt: &observed, ObservedAt: &observed,
		MatchedBy: []string{"q"}, Matching: true, ContentHash: "h", Transition: whole.Status.Transition, Revealed: whole.Status.Revealed,
		Conditions:          []metav1.Condition{{Type: "Running", Status: metav1.ConditionTrue, Reason: "Running", LastTransitionTime: observed}},
		PreviousTransitions: whole.Status.PreviousTransitions}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cached\n%+v\nwant\n%+v", got, want)
	}
}

func TestForCacheSharesEqualLabelSets(t *testing.T) {
	snap := func(name, status string) *dlcv1alpha1.DLCJobSnapshot {
		return &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{dlcv1alpha1.LabelStatus: status, dlcv1alpha1.LabelRegion: "cn-hangzhou"}}}
	}
	a, b, c := snapshot.ForCache(snap("a", "Running")), snapshot.ForCache(snap("b", "Running")), snapshot.ForCache(snap("c", "Failed"))
	if reflect.ValueOf(a.Labels).UnsafePointer() != reflect.ValueOf(b.Labels).UnsafePointer() {
		t.Error("two snapshots with the same labels hold two maps")
	}
	if reflect.ValueOf(a.Labels).UnsafePointer() == reflect.ValueOf(c.Labels).UnsafePointer() || c.Labels[dlcv1alpha1.LabelStatus] != "Failed" {
		t.Errorf("different labels share a map: %v, %v", a.Labels, c.Labels)
	}
	if a.Annotations != nil {
		t.Errorf("no annotation became %v", a.Annotations)
	}
}

// Two annotation sets whose entries joined with separators would read the same stay apart:
// annotation values may hold any byte.
func TestForCacheNeverMixesUpLookalikeAnnotationSets(t *testing.T) {
	planted := snapshot.ForCache(&dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "planted",
		Annotations: map[string]string{dlcv1alpha1.AnnotationEndpoint: "https://e\x00" + dlcv1alpha1.AnnotationHolders + "\x00q/uid"}}})
	victim := snapshot.ForCache(&dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "victim",
		Annotations: map[string]string{dlcv1alpha1.AnnotationEndpoint: "https://e", dlcv1alpha1.AnnotationHolders: "q/uid"}}})
	if victim.Annotations[dlcv1alpha1.AnnotationHolders] != "q/uid" || len(planted.Annotations) != 1 {
		t.Fatalf("victim %v, planted %v: the sets were mixed up", victim.Annotations, planted.Annotations)
	}
}
