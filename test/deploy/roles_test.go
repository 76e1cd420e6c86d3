package deploy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dlcsync/dlcsync/internal/testenv"
)

// checkUserRoles proves what the installer's aggregated roles give the people of a namespace, on
// the real apiserver with the real aggregation controller: users bound to the built-in view, edit
// and admin roles read JobQueries and snapshots, edit and admin write JobQueries, nobody writes
// snapshots (the manager alone does).
func checkUserRoles(t *testing.T, cfg *rest.Config, c client.Client, namespace string) {
	t.Helper()
	testenv.StartRoleAggregation(t, cfg)
	g := NewWithT(t)
	for user, role := range map[string]string{"alice": "view", "bob": "edit", "carol": "admin"} {
		g.Expect(c.Create(context.Background(), &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: user + "-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
		})).To(Succeed())
	}
	type access struct {
		user, verb, resource string
		allowed              bool
	}
	table := []access{
		{"alice", "get", "jobqueries", true}, {"alice", "list", "dlcjobsnapshots", true}, {"alice", "watch", "dlcjobsnapshots", true},
		{"alice", "create", "jobqueries", false}, {"alice", "patch", "dlcjobsnapshots", false},
		{"bob", "create", "jobqueries", true}, {"bob", "patch", "jobqueries", true}, {"bob", "delete", "jobqueries", true},
		{"bob", "get", "dlcjobsnapshots", true}, {"bob", "create", "dlcjobsnapshots", false}, {"bob", "patch", "dlcjobsnapshots", false},
		{"bob", "update", "dlcjobsnapshots", false}, {"bob", "delete", "dlcjobsnapshots", false},
		{"carol", "deletecollection", "jobqueries", true}, {"carol", "list", "dlcjobsnapshots", true},
		{"carol", "patch", "dlcjobsnapshots", false}, {"carol", "create", "dlcjobsnapshots", false},
	}
	NewWithT(t).Eventually(func(g Gomega) {
		for _, a := range table {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: a.user,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: a.verb,
					Group: "dlc.dlcsync.io", Resource: a.resource}}}
			g.Expect(c.Create(context.Background(), sar)).To(Succeed())
			g.Expect(sar.Status.Allowed).To(Equal(a.allowed), fmt.Sprintf("%s %s %s", a.user, a.verb, a.resource))
		}
	}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
}
