package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
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
