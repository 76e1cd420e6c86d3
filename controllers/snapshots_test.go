package controllers

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// TestAStaleReadNeverReplacesAnotherQuerysOwnership checks the guards of applyObject: writing a
// snapshot the cache did not show yet fails instead of replacing its owners, and so does writing
// from an outdated copy.
func TestAStaleReadNeverReplacesAnotherQuerysOwnership(t *testing.T) {
	ctx := context.Background()
	a := metav1.OwnerReference{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: "a", UID: "uid-a"}
	b := metav1.OwnerReference{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: "b", UID: "uid-b"}
	current := &dlcv1alpha1.DLCJobSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "dlc1", OwnerReferences: []metav1.OwnerReference{a}},
		Spec:       dlcv1alpha1.DLCJobSnapshotSpec{JobID: "dlc1", RegionID: "cn-hangzhou"},
	}
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(current).Build()
	r := &JobQueryReconciler{Client: c}
	want := &desiredSnapshot{name: "dlc1", spec: current.Spec, owners: []metav1.OwnerReference{b}}

	// The cache had not seen the snapshot: the write must not overwrite it.
	if _, err := r.applyObject(ctx, "ns", want, nil); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("writing over an unseen snapshot: %v, want AlreadyExists", err)
	}
	// A copy older than the stored object: the write must fail with a conflict.
	var stored dlcv1alpha1.DLCJobSnapshot
	if err := c.Get(ctx, types.NamespacedName{Namespace: "ns", Name: "dlc1"}, &stored); err != nil {
		t.Fatal(err)
	}
	stale := stored.DeepCopy()
	stale.ResourceVersion = "1"
	stored.Labels = map[string]string{"touched": "yes"}
	if err := c.Update(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if _, err := r.applyObject(ctx, "ns", want, stale); !apierrors.IsConflict(err) {
		t.Fatalf("writing from a stale copy: %v, want Conflict", err)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "ns", Name: "dlc1"}, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.OwnerReferences) != 1 || stored.OwnerReferences[0].UID != "uid-a" {
		t.Fatalf("owners after refused writes: %v", stored.OwnerReferences)
	}
	// From the current copy the owners are written, and labels that are not ours are kept.
	want.owners = []metav1.OwnerReference{a, b}
	want.labels = map[string]string{dlcv1alpha1.LabelStatus: "Running"}
	if _, err := r.applyObject(ctx, "ns", want, &stored); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "ns", Name: "dlc1"}, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.OwnerReferences) != 2 || stored.Labels["touched"] != "yes" || stored.Labels[dlcv1alpha1.LabelStatus] != "Running" {
		t.Fatalf("after the write: owners %v labels %v", stored.OwnerReferences, stored.Labels)
	}
}

// The cache shows a snapshot with dlcsync's annotations only; removing the last of them must not
// send "annotations": null, which would remove other tools' annotations too.
func TestRemovingOurLastAnnotationKeepsOtherTools(t *testing.T) {
	ctx := context.Background()
	holder := metav1.OwnerReference{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: "a", UID: "uid-a"}
	stored := &dlcv1alpha1.DLCJobSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "dlc1",
			Annotations: map[string]string{holdersAnnotation: formatHolders([]metav1.OwnerReference{holder}), "team.example/note": "keep"}},
		Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: "dlc1", RegionID: "cn-hangzhou"},
	}
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(stored).Build()
	r := &JobQueryReconciler{Client: c}
	var current dlcv1alpha1.DLCJobSnapshot
	if err := c.Get(ctx, types.NamespacedName{Namespace: "ns", Name: "dlc1"}, &current); err != nil {
		t.Fatal(err)
	}
	cached := snapshot.ForCache(&current)
	want := &desiredSnapshot{name: "dlc1", spec: stored.Spec, owners: []metav1.OwnerReference{holder}}
	if _, err := r.applyObject(ctx, "ns", want, cached); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "ns", Name: "dlc1"}, &current); err != nil {
		t.Fatal(err)
	}
	if _, ours := current.Annotations[holdersAnnotation]; ours || current.Annotations["team.example/note"] != "keep" {
		t.Fatalf("annotations after the holders were removed: %v; want only team.example/note", current.Annotations)
	}
}
