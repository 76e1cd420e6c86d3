package controllers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// refuseSnapshotWrites makes the apiserver refuse every update of a snapshot in the namespace
// (Forbidden, from a ValidatingAdmissionPolicy) until the returned undo is called; both wait
// until the apiserver acts on the change.
func refuseSnapshotWrites(t *testing.T, ns string) (undo func()) {
	t.Helper()
	g := NewWithT(t)
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-snapshot-writes-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{dlcv1alpha1.GroupVersion.Group},
						APIVersions: []string{dlcv1alpha1.GroupVersion.Version}, Resources: []string{"dlcjobsnapshots"}},
				}}}},
			Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: "snapshot writes refused by the test",
				Reason: ptr.To(metav1.StatusReasonForbidden)}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}}},
	}
	g.Expect(k8s.Create(testCtx, policy)).To(Succeed())
	g.Expect(k8s.Create(testCtx, binding)).To(Succeed())
	probe := func(g Gomega) error {
		var list dlcv1alpha1.DLCJobSnapshotList
		g.Expect(k8s.List(testCtx, &list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).NotTo(BeEmpty())
		s := &list.Items[0]
		patch := client.MergeFrom(s.DeepCopy())
		s.Labels["probe.example/at"] = "1"
		return k8s.Patch(testCtx, s, patch, client.DryRunAll)
	}
	g.Eventually(func(g Gomega) { g.Expect(apierrors.IsForbidden(probe(g))).To(BeTrue()) }).WithTimeout(20 * time.Second).Should(Succeed())
	return func() {
		g.Expect(k8s.Delete(testCtx, binding)).To(Succeed())
		g.Expect(k8s.Delete(testCtx, policy)).To(Succeed())
		g.Eventually(func(g Gomega) { g.Expect(probe(g)).To(Succeed()) }).WithTimeout(20 * time.Second).Should(Succeed())
	}
}

// Two absences prune only when they are consecutive (issue 23, finding 12): a complete listing
// that shows the jobs again refutes an earlier absence even when the sync's writes fail, so the
// next empty listing is a first absence again, not a confirmation.
func TestAListingThatShowsTheJobsRefutesAnAbsenceEvenWhenWritesFail(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcrefute", 3, "TFJob")
	proxy, lie := lyingProxy(t)
	q := query(ns, "refute")
	q.Spec.Endpoint = proxy.URL
	q.Spec.Filter.DisplayName = "dlcrefute"
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(HaveLen(3)) }).WithTimeout(10 * time.Second).Should(Succeed())

	// A glitch: one complete-looking empty answer marks every job absent.
	lie.Store(true)
	resync(t, ns, "refute", dlcv1alpha1.ReasonSynced)
	lie.Store(false)
	// The honest listing shows them all again, but the write of the one that changed fails.
	g.Expect(sim.Patch(ids[0], func(j *dlcsim.Job) { j.Status = dlc.StatusStopped })).To(BeTrue())
	undo := refuseSnapshotWrites(t, ns)
	resync(t, ns, "refute", dlcv1alpha1.ReasonKubernetesError)
	undo()
	// Another glitch: a first absence again, so nothing is deleted.
	lie.Store(true)
	resync(t, ns, "refute", dlcv1alpha1.ReasonSynced)
	lie.Store(false)
	g.Expect(snapshots(g, ns)).To(HaveLen(3), "two absences that were not consecutive pruned the snapshots")
}

// lyingProxy serves the simulator, or, while lie is set, an empty listing that claims to be
// complete: TotalCount 0 and no job, the answer of a broken or hostile endpoint.
func lyingProxy(t *testing.T) (*httptest.Server, *atomic.Bool) {
	var lie atomic.Bool
	real := sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lie.Load() && strings.HasPrefix(r.URL.Path, "/api/v1/jobs") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"RequestId":"lie","TotalCount":0,"Jobs":[]}`))
			return
		}
		real.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &lie
}

func TestOneEmptyAnswerDeletesNothingAndAGoneJobNeedsTwoListings(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcexact", 5, "TFJob")
	proxy, lie := lyingProxy(t)
	q := query(ns, "exact")
	q.Spec.Endpoint = proxy.URL
	q.Spec.Filter.DisplayName = "dlcexact"
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(HaveLen(5)) }).WithTimeout(10 * time.Second).Should(Succeed())

	// One complete-looking empty answer: nothing is deleted, and the status says why.
	lie.Store(true)
	got := resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveLen(5))
	g.Expect(meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady).Message).
		To(ContainSubstring("removed if the next listing confirms it"))
	// The next honest answer lists them all again: the absence is forgotten, nothing was lost.
	lie.Store(false)
	resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	lie.Store(true)
	resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveLen(5))
	lie.Store(false)

	// A job really deleted in PAI-DLC: its snapshot stays after the first listing without it and
	// goes after the second.
	resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	sim.Delete(ids[0])
	resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveKey(ids[0]))
	resync(t, ns, "exact", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).NotTo(HaveKey(ids[0]))
	g.Expect(snapshots(g, ns)).To(HaveLen(4))
}

// A snapshot that a user's own object also owns is released, never deleted, when its job goes.
func TestPruneNeverDeletesASnapshotAnotherObjectOwns(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcforeign", 2, "TFJob")
	q := queryFor(ns, "foreign", "dlcforeign")
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	holder := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "holder"}}
	g.Expect(k8s.Create(testCtx, holder)).To(Succeed())
	var s dlcv1alpha1.DLCJobSnapshot
	g.Eventually(func() error { return k8s.Get(testCtx, client.ObjectKey{Namespace: ns, Name: ids[0]}, &s) }).Should(Succeed())
	s.OwnerReferences = append(s.OwnerReferences, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "holder", UID: holder.UID})
	g.Expect(k8s.Update(testCtx, &s)).To(Succeed())

	sim.Delete(ids[0])
	resync(t, ns, "foreign", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "foreign", dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) {
		kept := snapshots(g, ns)[ids[0]]
		g.Expect(kept.OwnerReferences).To(HaveLen(1))
		g.Expect(kept.OwnerReferences[0].Kind).To(Equal("ConfigMap"))
		g.Expect(kept.Status.Matching).To(BeFalse())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// TestAnUpgradedManagerPutsOrphanClaimsInHolderForm: snapshots that an earlier release wrote
// with owner references for an Orphan query (and its legacy finalizer) are converted by the
// first reconcile of a new process, although the query's generation has not changed, so that a
// foreground deletion can no longer collect them.
func TestAnUpgradedManagerPutsOrphanClaimsInHolderForm(t *testing.T) {
	g := NewWithT(t)
	q := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "old", UID: "uid-old", Generation: 3,
		Finalizers: []string{legacyOrphanFinalizer}}}
	q.Spec.Snapshot.DeletionPolicy = dlcv1alpha1.DeletionPolicyOrphan
	q.Status.ObservedGeneration = 3
	legacy := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "dlc1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: "old", UID: "uid-old"}}}}
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(q, legacy).
		WithIndex(&dlcv1alpha1.DLCJobSnapshot{}, ownerIndexKey, ownerUIDsOf).Build()
	r := &JobQueryReconciler{Client: c, APIReader: c}
	ctx := context.Background()
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(q), q)).To(Succeed())

	g.Expect(r.reconcileDeletionPolicy(ctx, q)).To(Succeed())
	var got dlcv1alpha1.DLCJobSnapshot
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(legacy), &got)).To(Succeed())
	g.Expect(got.OwnerReferences).To(BeEmpty())
	g.Expect(got.Annotations).To(HaveKeyWithValue(holdersAnnotation, "old/uid-old"))
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(q), q)).To(Succeed())
	g.Expect(q.Finalizers).To(Equal([]string{snapshotsFinalizer}))
}

func TestPruneRetainAndOverlappingQueries(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcprune", 6, "PyTorchJob")
	broad := queryFor(ns, "broad", "dlcprune")
	narrow := queryFor(ns, "narrow", "dlcprune")
	narrow.Spec.Filter.NumericRange = &dlcv1alpha1.NumericRange{Field: "RequestGPU", Min: dlc.Ptr(int64(2))}
	narrow.Spec.Snapshot.PrunePolicy = dlcv1alpha1.PrunePolicyRetain
	g.Expect(k8s.Create(testCtx, broad)).To(Succeed())
	g.Expect(k8s.Create(testCtx, narrow)).To(Succeed())
	waitReady(t, ns, "broad", dlcv1alpha1.ReasonSynced)
	waitReady(t, ns, "narrow", dlcv1alpha1.ReasonSynced)
	// Both matches are one snapshot, owned by both queries. RequestGPU is i%4: jobs 2,3 match narrow.
	NewWithT(t).Eventually(func(g Gomega) {
		snaps := snapshots(g, ns)
		g.Expect(snaps).To(HaveLen(6))
		for i, id := range ids {
			want := []string{"broad"}
			if i == 2 || i == 3 {
				want = []string{"broad", "narrow"}
			}
			g.Expect(snaps[id].Status.MatchedBy).To(Equal(want), id)
			g.Expect(snaps[id].OwnerReferences).To(HaveLen(len(want)), id)
		}
		for _, name := range []string{"broad", "narrow"} {
			q := getQuery(g, ns, name)
			g.Expect(meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady).Reason).To(Equal(dlcv1alpha1.ReasonSynced))
		}
	}).WithTimeout(20 * time.Second).Should(Succeed())
	// No flapping: resyncing both changes nothing.
	before := resourceVersions(g, ns)
	resync(t, ns, "broad", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "narrow", dlcv1alpha1.ReasonSynced)
	g.Expect(resourceVersions(g, ns)).To(Equal(before))

	// Job 2 no longer matches narrow (GPU 0): narrow releases it, broad keeps it.
	// Every release or prune waits for a second listing that confirms it.
	sim.Patch(ids[2], func(j *dlcsim.Job) { j.RequestGPU = "0" })
	resync(t, ns, "narrow", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)[ids[2]].Status.MatchedBy).To(Equal([]string{"broad", "narrow"}))
	resync(t, ns, "narrow", dlcv1alpha1.ReasonSynced)
	s := snapshots(g, ns)[ids[2]]
	g.Expect(s.Status.MatchedBy).To(Equal([]string{"broad"}))
	g.Expect(s.OwnerReferences).To(HaveLen(1))

	// Job 3 stops matching both. broad (Delete) releases it; narrow (Retain) keeps it, marked.
	sim.Patch(ids[3], func(j *dlcsim.Job) { j.DisplayName = "renamed" })
	for range 2 {
		resync(t, ns, "broad", dlcv1alpha1.ReasonSynced)
		resync(t, ns, "narrow", dlcv1alpha1.ReasonSynced)
	}
	s = snapshots(g, ns)[ids[3]]
	g.Expect(s.Status.Matching).To(BeFalse())
	g.Expect(s.Status.MatchedBy).To(BeEmpty())
	g.Expect(s.OwnerReferences).To(HaveLen(1))
	g.Expect(s.OwnerReferences[0].Name).To(Equal("narrow"))

	// Job 0 is deleted in the API: broad is its only owner and deletes the snapshot.
	sim.Delete(ids[0])
	resync(t, ns, "broad", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveKey(ids[0]))
	resync(t, ns, "broad", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).NotTo(HaveKey(ids[0]))
}

// A snapshot already retained (prunePolicy Retain) is not counted absent again at every full
// listing: its absence would come and go, and with it status.incremental.pendingPrune.
func TestARetainedSnapshotIsNotTrackedAsAbsentAgain(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcretainedabsent", 3, "TFJob")
	q := queryFor(ns, "retain", "dlcretainedabsent")
	q.Spec.Snapshot.PrunePolicy = dlcv1alpha1.PrunePolicyRetain
	q.Spec.FullResyncInterval = &metav1.Duration{}
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	sim.Delete(ids[0])
	resync(t, ns, "retain", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "retain", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)[ids[0]].Status.Matching).To(BeFalse(), "not retained after two listings")
	for range 2 {
		resync(t, ns, "retain", dlcv1alpha1.ReasonSynced)
		state, _ := testReconciler.state(types.NamespacedName{Namespace: ns, Name: "retain"})
		g.Expect(state.absent).NotTo(HaveKey(ids[0]))
	}
}
