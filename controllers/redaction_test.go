package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// A query that drops a group from snapshot.reveal has every snapshot it holds rewritten
// redacted, also one it only retains (no longer matched: its sync does not write it).
func TestADroppedRevealIsWithdrawnFromRetainedSnapshotsToo(t *testing.T) {
	g := NewWithT(t)
	ns := newNamedNamespace(t, revealAllowed)
	ids := addJobs("dlcdropreveal", 3, "PyTorchJob")
	q := queryFor(ns, "drop-reveal", "dlcdropreveal")
	q.Spec.Snapshot.Reveal = []dlcv1alpha1.RevealGroup{dlcv1alpha1.RevealEnvValues}
	q.Spec.Snapshot.PrunePolicy = dlcv1alpha1.PrunePolicyRetain
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) {
		for _, id := range ids {
			s := snapshotOf(g, ns, id)
			g.Expect(s.Status.Revealed).To(Equal([]dlcv1alpha1.RevealGroup{dlcv1alpha1.RevealEnvValues}), id)
			g.Expect(s.Status.Job.Envs).To(HaveKeyWithValue("API_TOKEN", "very-secret-value"), id)
		}
	}).WithTimeout(10 * time.Second).Should(Succeed())

	// The first job stops matching: after two listings without it, it is retained.
	g.Expect(sim.Patch(ids[0], func(j *dlcsim.Job) { j.DisplayName = "renamed" })).To(BeTrue())
	resync(t, ns, q.Name, dlcv1alpha1.ReasonSynced)
	resync(t, ns, q.Name, dlcv1alpha1.ReasonSynced)
	g.Expect(snapshotOf(g, ns, ids[0]).Status.Matching).To(BeFalse(), "the job is retained")

	q = getQuery(g, ns, q.Name)
	q.Spec.Snapshot.Reveal = nil
	g.Expect(k8s.Update(testCtx, q)).To(Succeed())
	waitReady(t, ns, q.Name, dlcv1alpha1.ReasonSynced)
	expectRedacted(t, ns, ids...)
}

// Snapshots an earlier manager wrote revealing, in a namespace the administrator has since removed
// from --reveal-namespaces, are rewritten redacted: one whose query now stalls with
// RevealNotAllowed (and so syncs nothing), and one no query holds any more.
func TestRevealWithdrawnByTheAdministratorIsRedactedEverywhere(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	q := queryFor(ns, "was-allowed", "dlcwithdrawn")
	q.Spec.Snapshot.Reveal = []dlcv1alpha1.RevealGroup{dlcv1alpha1.RevealEnvValues, dlcv1alpha1.RevealCommands}
	createReady(t, q, dlcv1alpha1.ReasonRevealNotAllowed)
	q = getQuery(g, ns, q.Name)

	// As the earlier manager, allowed to reveal here, left them.
	revealed := func(id string) *dlcv1alpha1.DLCJobSnapshot {
		job := &dlcv1alpha1.JobItem{JobID: id, DisplayName: "dlcwithdrawn", Status: "Running",
			Envs: map[string]string{"API_TOKEN": "very-secret-value"}, UserCommand: "python train.py --password hunter2"}
		return &dlcv1alpha1.DLCJobSnapshot{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: snapshot.Name(id)},
			Spec:       dlcv1alpha1.DLCJobSnapshotSpec{JobID: id, RegionID: "cn-hangzhou"},
			Status: dlcv1alpha1.DLCJobSnapshotStatus{Job: job, Phase: "Running", ContentHash: snapshot.Hash(job),
				Revealed: []dlcv1alpha1.RevealGroup{dlcv1alpha1.RevealEnvValues, dlcv1alpha1.RevealCommands}},
		}
	}
	held := revealed("dlcwithdrawn-held")
	held.OwnerReferences = []metav1.OwnerReference{{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: q.Name, UID: q.UID}}
	held.Status.MatchedBy, held.Status.Matching = []string{q.Name}, true
	orphaned := revealed("dlcwithdrawn-orphaned")
	for _, s := range []*dlcv1alpha1.DLCJobSnapshot{held, orphaned} {
		g.Expect(k8s.Create(testCtx, s)).To(Succeed())
	}
	expectRedacted(t, ns, held.Spec.JobID, orphaned.Spec.JobID)
	g.Expect(snapshotOf(g, ns, held.Spec.JobID).Status.Job.UserCommand).To(Equal(snapshot.Redacted))
}

// expectRedacted waits until the snapshots of the jobs reveal nothing: no status.revealed, env
// values redacted.
func expectRedacted(t *testing.T, namespace string, jobIDs ...string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		for _, id := range jobIDs {
			s := snapshotOf(g, namespace, id)
			g.Expect(s.Status.Revealed).To(BeEmpty(), id)
			g.Expect(s.Status.Job).NotTo(BeNil(), id)
			g.Expect(s.Status.Job.Envs).To(HaveKeyWithValue("API_TOKEN", snapshot.Redacted), id)
		}
	}).WithTimeout(20 * time.Second).Should(Succeed())
}
