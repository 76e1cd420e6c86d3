package controllers

// The write protocol of snapshots (createSnapshot, patchSnapshot, snapshotPatch) against the real
// apiserver: one request per new or changed snapshot, guarded, and nothing of other tools or of
// the old status left wrong.

import (
	"context"
	"fmt"
	"slices"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

var (
	refA = metav1.OwnerReference{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: "a", UID: "uid-a"}
	refB = metav1.OwnerReference{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: "b", UID: "uid-b"}
)

// writer is a reconciler that only writes snapshots, straight to the apiserver.
func writer() *JobQueryReconciler { return &JobQueryReconciler{Client: k8s, APIReader: k8s} }

// storedSnapshot reads a snapshot from the apiserver.
func storedSnapshot(t *testing.T, namespace, name string) *dlcv1alpha1.DLCJobSnapshot {
	t.Helper()
	var s dlcv1alpha1.DLCJobSnapshot
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// cached is what the manager's cache shows of a stored snapshot.
func cached(t *testing.T, namespace, name string) *dlcv1alpha1.DLCJobSnapshot {
	t.Helper()
	return snapshot.ForCache(storedSnapshot(t, namespace, name))
}

// TestAStaleReadNeverReplacesAnotherQuerysOwnership checks the guards of the two writes:
// creating a snapshot the cache did not show yet fails instead of replacing its owners, and so
// does patching from an outdated copy.
func TestAStaleReadNeverReplacesAnotherQuerysOwnership(t *testing.T) {
	ctx, ns := context.Background(), newNamespace(t)
	r := writer()
	first := &desiredSnapshot{name: "dlc1", spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: "dlc1", RegionID: "cn-hangzhou"},
		owners: []metav1.OwnerReference{refA}, status: dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Running"}}
	if _, err := r.createSnapshot(ctx, ns, first); err != nil {
		t.Fatal(err)
	}
	want := &desiredSnapshot{name: "dlc1", spec: first.spec, owners: []metav1.OwnerReference{refB}}

	// The cache had not seen the snapshot: the write must not overwrite it.
	if _, err := r.createSnapshot(ctx, ns, want); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("writing over an unseen snapshot: %v, want AlreadyExists", err)
	}
	// A copy older than the stored object: the write must fail with a conflict.
	stale := cached(t, ns, "dlc1")
	stored := storedSnapshot(t, ns, "dlc1")
	stored.Labels = map[string]string{"touched": "yes"}
	if err := k8s.Update(ctx, stored); err != nil {
		t.Fatal(err)
	}
	if err := r.patchSnapshot(ctx, stale, want, false, true); !apierrors.IsConflict(err) {
		t.Fatalf("writing from a stale copy: %v, want Conflict", err)
	}
	if got := storedSnapshot(t, ns, "dlc1"); len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != "uid-a" {
		t.Fatalf("owners after refused writes: %v", got.OwnerReferences)
	}
	// From the current copy the owners are written, and labels that are not ours are kept.
	want.owners = []metav1.OwnerReference{refA, refB}
	want.labels = map[string]string{dlcv1alpha1.LabelStatus: "Running"}
	if err := r.patchSnapshot(ctx, cached(t, ns, "dlc1"), want, false, true); err != nil {
		t.Fatal(err)
	}
	got := storedSnapshot(t, ns, "dlc1")
	if len(got.OwnerReferences) != 2 || got.Labels["touched"] != "yes" || got.Labels[dlcv1alpha1.LabelStatus] != "Running" {
		t.Fatalf("after the write: owners %v labels %v", got.OwnerReferences, got.Labels)
	}
}

// The cache shows a snapshot with dlcsync's annotations only; removing the last of them, or
// adding one where the cache shows none, must leave other tools' annotations as they are.
func TestOurAnnotationsComeAndGoWithoutOtherTools(t *testing.T) {
	ctx, ns := context.Background(), newNamespace(t)
	r := writer()
	for name, annotations := range map[string]map[string]string{
		"held":    {holdersAnnotation: formatHolders([]metav1.OwnerReference{refA}), "team.example/note": "keep"},
		"foreign": {"team.example/note": "keep"},
		"bare":    nil,
	} {
		s := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
			Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: name, RegionID: "cn-hangzhou"}}
		if err := k8s.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// held: the holders go (the query now owns by reference).
	want := &desiredSnapshot{name: "held", owners: []metav1.OwnerReference{refA}}
	if err := r.patchSnapshot(ctx, cached(t, ns, "held"), want, false, true); err != nil {
		t.Fatal(err)
	}
	if got := storedSnapshot(t, ns, "held").Annotations; got[holdersAnnotation] != "" || got["team.example/note"] != "keep" {
		t.Fatalf("annotations after the holders were removed: %v; want only team.example/note", got)
	}
	// foreign and bare: holders come, other annotations stay.
	for _, name := range []string{"foreign", "bare"} {
		want := &desiredSnapshot{name: name, holders: []metav1.OwnerReference{refA}}
		if err := r.patchSnapshot(ctx, cached(t, ns, name), want, false, true); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := storedSnapshot(t, ns, name).Annotations
		if got[holdersAnnotation] != "a/uid-a" || (name == "foreign" && got["team.example/note"] != "keep") {
			t.Fatalf("%s: annotations after the holders were added: %v", name, got)
		}
	}
}

// TestAChangedStatusLeavesNoOldFieldBehind: a patch replaces the status whole, so a field the
// job no longer has (a sub-status, a reason, a job field) is gone, while the labels change in
// the same request.
func TestAChangedStatusLeavesNoOldFieldBehind(t *testing.T) {
	ctx, ns := context.Background(), newNamespace(t)
	r := writer()
	old := &desiredSnapshot{name: "dlc1", spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: "dlc1", RegionID: "cn-hangzhou"},
		labels: map[string]string{dlcv1alpha1.LabelStatus: "Running"},
		status: dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Running", SubStatus: "Restarting", ReasonCode: "Restart", ContentHash: "h1",
			Job: &dlcv1alpha1.JobItem{JobID: "dlc1", Status: "Running", ReasonMessage: "restarting"}}}
	if _, err := r.createSnapshot(ctx, ns, old); err != nil {
		t.Fatal(err)
	}
	want := &desiredSnapshot{name: "dlc1", spec: old.spec, labels: map[string]string{dlcv1alpha1.LabelStatus: "Succeeded"},
		status: dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Succeeded", ContentHash: "h2", Job: &dlcv1alpha1.JobItem{JobID: "dlc1", Status: "Succeeded"}}}
	before := storedSnapshot(t, ns, "dlc1").ResourceVersion
	if err := r.patchSnapshot(ctx, cached(t, ns, "dlc1"), want, false, false); err != nil {
		t.Fatal(err)
	}
	got := storedSnapshot(t, ns, "dlc1")
	if got.Status.SubStatus != "" || got.Status.ReasonCode != "" || got.Status.Job.ReasonMessage != "" || got.Status.Phase != "Succeeded" ||
		got.Labels[dlcv1alpha1.LabelStatus] != "Succeeded" {
		t.Fatalf("after the patch: labels %v status %+v job %+v", got.Labels, got.Status, got.Status.Job)
	}
	// The guard: a patch computed from the version before that write is refused.
	if err := r.patchSnapshot(ctx, &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dlc1",
		ResourceVersion: before}}, want, true, false); !apierrors.IsConflict(err) {
		t.Fatalf("a patch from the version before the write: %v, want Conflict", err)
	}
	var list dlcv1alpha1.DLCJobSnapshotList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil || len(list.Items) != 1 {
		t.Fatalf("snapshots: %d, %v", len(list.Items), err)
	}
}

// TestKstatusReadsEverySnapshotPhaseAsCurrent: without the status subresource a snapshot's
// metadata.generation moves on every write, so a status.observedGeneration would have to follow
// it or kstatus (Flux, cli-utils) would read InProgress forever. A snapshot has none: written
// and rewritten as the manager does, it reads Current in every phase, the phase conditions
// (Failed, Stopped) included.
func TestKstatusReadsEverySnapshotPhaseAsCurrent(t *testing.T) {
	ctx, ns := context.Background(), newNamespace(t)
	r := writer()
	for i, phase := range append(slices.Clone(dlcv1alpha1.JobStatuses), "Paused") {
		name := fmt.Sprintf("phase%d", i)
		write := func(status string, existing *dlcv1alpha1.DLCJobSnapshot) {
			job := &dlc.JobItem{JobID: name, Status: status, ReasonCode: "Because"}
			converted, err := snapshot.ConvertJob(job, snapshot.Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := &desiredSnapshot{name: name, labels: snapshot.Labels(job, "cn-hangzhou"),
				spec:   dlcv1alpha1.DLCJobSnapshotSpec{JobID: name, RegionID: "cn-hangzhou"},
				status: snapshot.Status(converted, snapshot.Hash(converted), nil, metav1.Now())}
			if existing == nil {
				_, err = r.createSnapshot(ctx, ns, want)
			} else {
				err = r.patchSnapshot(ctx, existing, want, false, false)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		// Two earlier phases that no listed phase equals, so that every write changes the object.
		write("EarlierPhase1", nil)
		write("EarlierPhase2", cached(t, ns, name))
		write(phase, cached(t, ns, name))

		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(dlcv1alpha1.GroupVersion.WithKind("DLCJobSnapshot"))
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, u); err != nil {
			t.Fatal(err)
		}
		if u.GetGeneration() < 3 {
			t.Fatalf("%s: generation %d after three writes; the test needs it to move", phase, u.GetGeneration())
		}
		res, err := kstatus.Compute(u)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != kstatus.CurrentStatus {
			t.Errorf("%s: kstatus %s (%s), want Current", phase, res.Status, res.Message)
		}
	}
}

// TestAPatchThatNoLongerAppliesIsAConflict: the apiserver applies a JSON patch before it
// compares resourceVersions, so a patch from a cached copy whose label another writer already
// removed fails to apply (422); that is a concurrent change, retried as a conflict, never a
// job problem (which would skip the job and warn).
func TestAPatchThatNoLongerAppliesIsAConflict(t *testing.T) {
	ctx, ns := context.Background(), newNamespace(t)
	r := writer()
	first := &desiredSnapshot{name: "dlc1", spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: "dlc1", RegionID: "cn-hangzhou"},
		labels: map[string]string{dlcv1alpha1.LabelStatus: "Running", dlcv1alpha1.LabelJobType: "PyTorchJob"}}
	if _, err := r.createSnapshot(ctx, ns, first); err != nil {
		t.Fatal(err)
	}
	stale := cached(t, ns, "dlc1")
	stored := storedSnapshot(t, ns, "dlc1")
	delete(stored.Labels, dlcv1alpha1.LabelStatus)
	if err := k8s.Update(ctx, stored); err != nil {
		t.Fatal(err)
	}
	want := &desiredSnapshot{name: "dlc1", spec: first.spec, labels: map[string]string{dlcv1alpha1.LabelJobType: "PyTorchJob"}}
	err := r.patchSnapshot(ctx, stale, want, false, true)
	if !apierrors.IsConflict(err) || jobProblem(err) {
		t.Fatalf("a patch from a copy whose label is already gone: %v (conflict %v, job problem %v), want a conflict",
			err, apierrors.IsConflict(err), jobProblem(err))
	}
}
