package controllers

import (
	"testing"

	. "github.com/onsi/gomega"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// Two namespaces use one credential (one AccessKey, or the operator's ambient role) whose RAM
// policy covers one workspace only. A tenant that filters on another workspace opens the breaker
// for itself, never for the other tenant, which goes on syncing (issue 23, finding 9).
func TestOneTenantsRefusalsDoNotOpenAnothersBreaker(t *testing.T) {
	g := NewWithT(t)
	outside, inside := newNamespace(t), newNamespace(t)
	for _, ns := range []string{outside, inside} {
		g.Expect(k8s.Create(testCtx, testenv.CredentialsSecret(ns, "scoped", simScoped.AccessKeyID, simScoped.AccessKeySecret))).To(Succeed())
	}
	addJobs("dlcscoped", 2, "PyTorchJob")
	for ns, workspace := range map[string]string{outside: "999", inside: "268"} {
		q := query(ns, "team")
		q.Spec.Credentials.SecretRef.Name = "scoped"
		q.Spec.Filter.DisplayName, q.Spec.Filter.WorkspaceID = "dlcscoped", workspace
		g.Expect(k8s.Create(testCtx, q)).To(Succeed())
	}
	waitReady(t, outside, "team", dlcv1alpha1.ReasonForbidden)
	resync(t, outside, "team", dlcv1alpha1.ReasonForbidden)
	resync(t, outside, "team", dlcv1alpha1.ReasonForbidden)
	resync(t, outside, "team", dlcv1alpha1.ReasonCircuitOpen)

	waitReady(t, inside, "team", dlcv1alpha1.ReasonSynced)
	q := resync(t, inside, "team", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.Snapshots).To(Equal(int32(2)))
}
