package deploy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// policyRefusal is what the installer's admission policy answers (snapshot-writers).
const policyRefusal = "written only by the dlcsync manager"

// userClient is a client that acts as user name (impersonated by the test's admin).
func userClient(t *testing.T, cfg *rest.Config, name string) client.Client {
	t.Helper()
	own := rest.CopyConfig(cfg)
	own.Impersonate = rest.ImpersonationConfig{UserName: name}
	c, err := client.New(own, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bind grants user the ClusterRole role in namespace.
func bind(t *testing.T, c client.Client, namespace, user, role string) {
	t.Helper()
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: user + "-" + role},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}}
	if err := c.Create(context.Background(), rb); err != nil {
		t.Fatal(err)
	}
}

// checkOnlyTheManagerWritesSnapshots runs after the installed manager (as its service account)
// has written the snapshots of namespace: a user bound to edit cannot change a snapshot; a user
// granted every verb on snapshots is stopped by the installer's admission policy from creating
// one or changing its spec, status or dlcsync's labels and annotations, and may still label it
// otherwise and delete it.
func checkOnlyTheManagerWritesSnapshots(t *testing.T, cfg *rest.Config, namespace string) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	admin, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	var list dlcv1alpha1.DLCJobSnapshotList
	g.Expect(admin.List(ctx, &list, client.InNamespace(namespace))).To(Succeed())
	g.Expect(list.Items).NotTo(BeEmpty(), "the manager wrote no snapshot")
	target := list.Items[0]
	statusPatch := client.RawPatch(types.MergePatchType, []byte(`{"status":{"phase":"Succeeded"}}`))

	// edit, with what the installer's dlcjobsnapshot viewer role aggregates into it (envtest runs
	// no aggregation controller): read only.
	allSnapshots := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "test-all-snapshot-verbs"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{dlcv1alpha1.GroupVersion.Group}, Resources: []string{"dlcjobsnapshots"}, Verbs: []string{"*"}}}}
	readSnapshots := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "test-read-snapshots"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{dlcv1alpha1.GroupVersion.Group}, Resources: []string{"dlcjobsnapshots"},
			Verbs: []string{"get", "list", "watch"}}}}
	g.Expect(admin.Create(ctx, allSnapshots)).To(Succeed())
	g.Expect(admin.Create(ctx, readSnapshots)).To(Succeed())
	bind(t, admin, namespace, "editor", "edit")
	bind(t, admin, namespace, "editor", readSnapshots.Name)
	bind(t, admin, namespace, "owner", allSnapshots.Name)
	editor, owner := userClient(t, cfg, "editor"), userClient(t, cfg, "owner")

	g.Eventually(func() error {
		return editor.Get(ctx, client.ObjectKeyFromObject(&target), &dlcv1alpha1.DLCJobSnapshot{})
	}).
		WithTimeout(10 * time.Second).Should(Succeed())
	err = editor.Patch(ctx, target.DeepCopy(), statusPatch)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "a user bound to edit patched a snapshot's status: %v", err)

	// The policy is loaded by the apiserver's informers: wait until it refuses a create.
	g.Eventually(func() string {
		probe := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "by-hand"},
			Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: "by-hand", RegionID: "cn-hangzhou"}}
		err := owner.Create(ctx, probe)
		if err == nil {
			_ = admin.Delete(ctx, probe)
			return "created"
		}
		return err.Error()
	}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(ContainSubstring(policyRefusal))

	err = owner.Patch(ctx, target.DeepCopy(), statusPatch)
	g.Expect(err).To(HaveOccurred(), "a user changed a snapshot's status")
	g.Expect(apierrors.IsForbidden(err) && strings.Contains(err.Error(), policyRefusal)).To(BeTrue(), "%v", err)
	// dlcsync's labels and annotations are what automation selects on and the manager decides with.
	for _, forged := range []string{`{"metadata":{"labels":{"dlc.dlcsync.io/status":"Failed"}}}`,
		`{"metadata":{"annotations":{"dlc.dlcsync.io/endpoint":"https://elsewhere.example"}}}`} {
		err = owner.Patch(ctx, target.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(forged)))
		g.Expect(apierrors.IsForbidden(err) && strings.Contains(err.Error(), "written only by the dlcsync manager")).To(BeTrue(),
			"%s: %v", forged, err)
	}
	g.Expect(owner.Patch(ctx, target.DeepCopy(), client.RawPatch(types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"team.example/tracked":"yes"}}}`)))).To(Succeed(), "other labels stay open")
	g.Expect(owner.Delete(ctx, target.DeepCopy())).To(Succeed(), "deletes stay open")
}
