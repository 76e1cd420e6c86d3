package controllers

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

// setEndpoint changes a query's spec.endpoint and waits for the sync of the new generation.
func setEndpoint(t *testing.T, ns, name, endpoint string) {
	t.Helper()
	g := NewWithT(t)
	q := getQuery(g, ns, name)
	patch := client.MergeFrom(q.DeepCopy())
	q.Spec.Endpoint = endpoint
	g.Expect(k8s.Patch(testCtx, q, patch)).To(Succeed())
	waitReady(t, ns, name, dlcv1alpha1.ReasonSynced)
}

// Changing a query's endpoint keeps its snapshots in step (issue 23, finding 3): the same
// endpoint written differently (a trailing "/") is the same source, so nothing is written and
// changes go on flowing; another endpoint moves the snapshots only this query holds, recording
// the new one; a snapshot another query still holds from the old endpoint stays foreign.
func TestAQueryMovesItsOwnSnapshotsToItsNewEndpoint(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcmove", 3, "PyTorchJob")
	q := query(ns, "mover")
	q.Spec.Filter.DisplayName = "dlcmove"
	createReady(t, q, dlcv1alpha1.ReasonSynced)

	before := resourceVersions(g, ns)
	setEndpoint(t, ns, "mover", simURL+"/")
	g.Expect(resourceVersions(g, ns)).To(Equal(before), "a cosmetic endpoint change rewrote snapshots")
	g.Expect(sim.Patch(ids[0], func(j *dlcsim.Job) { j.Status = dlc.StatusStopped })).To(BeTrue())
	q = resync(t, ns, "mover", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Updated).To(Equal(int32(1)))
	g.Expect(snapshots(g, ns)[ids[0]].Status.Phase).To(Equal(dlc.StatusStopped))

	// Another endpoint (the same jobs, served on another port): the snapshots move.
	other := httptest.NewServer(sim.Handler())
	t.Cleanup(other.Close)
	setEndpoint(t, ns, "mover", other.URL)
	for id, s := range snapshots(g, ns) {
		g.Expect(s.Annotations).To(HaveKeyWithValue(dlcv1alpha1.AnnotationEndpoint, other.URL), id)
	}
	g.Expect(sim.Patch(ids[1], func(j *dlcsim.Job) { j.Status = dlc.StatusStopped })).To(BeTrue())
	resync(t, ns, "mover", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)[ids[1]].Status.Phase).To(Equal(dlc.StatusStopped))

	// Shared with a query that stays on that endpoint: moving back leaves them foreign.
	stay := query(ns, "stay")
	stay.Spec.Endpoint = other.URL
	stay.Spec.Filter.DisplayName = "dlcmove"
	g.Expect(k8s.Create(testCtx, stay)).To(Succeed())
	waitReady(t, ns, "stay", dlcv1alpha1.ReasonSynced)
	q = getQuery(g, ns, "mover")
	patch := client.MergeFrom(q.DeepCopy())
	q.Spec.Endpoint = simURL
	g.Expect(k8s.Patch(testCtx, q, patch)).To(Succeed())
	q = waitReady(t, ns, "mover", dlcv1alpha1.ReasonJobsSkipped)
	c := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(strings.Contains(c.Message, "from endpoint")).To(BeTrue(), c.Message)
	for id, s := range snapshots(g, ns) {
		g.Expect(s.Annotations).To(HaveKeyWithValue(dlcv1alpha1.AnnotationEndpoint, other.URL), id)
	}

	// stay goes (the garbage collector removes its owner references, as this does by hand; its
	// name stays in matchedBy until mover writes): mover is the only claimant again and moves
	// the snapshots back to its endpoint.
	stay = getQuery(g, ns, "stay")
	g.Expect(k8s.Delete(testCtx, stay)).To(Succeed())
	g.Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(testCtx, client.ObjectKeyFromObject(stay), stay)) }).
		WithTimeout(20 * time.Second).Should(BeTrue())
	for _, s := range snapshots(g, ns) {
		patch := client.MergeFrom(s.DeepCopy())
		s.OwnerReferences = slices.DeleteFunc(s.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == stay.UID })
		g.Expect(k8s.Patch(testCtx, &s, patch)).To(Succeed())
	}
	resync(t, ns, "mover", dlcv1alpha1.ReasonSynced)
	for id, s := range snapshots(g, ns) {
		g.Expect(s.Annotations).To(HaveKeyWithValue(dlcv1alpha1.AnnotationEndpoint, simURL), id)
		g.Expect(s.Status.MatchedBy).To(Equal([]string{"mover"}), id)
	}
}
