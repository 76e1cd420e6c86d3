package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// StartRoleAggregation runs kube-controller-manager's ClusterRole aggregation controller against
// an envtest control plane, which runs none: with it, roles labelled aggregate-to-view, -edit and
// -admin reach the built-in view, edit and admin as in a cluster. It returns once a probe role
// has been aggregated, and stops when t ends.
func StartRoleAggregation(t testing.TB, cfg *rest.Config) {
	t.Helper()
	runControllers(t, cfg, "clusterrole-aggregation-controller", waitAggregating)
}

// waitAggregating proves the controller works: a probe role's rules reach a probe aggregate.
func waitAggregating(ctx context.Context, cfg *rest.Config, p *Process) error {
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	label := "probe.dlcsync.io/aggregate-" + rand.String(6)
	aggregate := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "aggregation-probe-" + rand.String(6)},
		AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{label: "true"}}}}}
	part := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: aggregate.Name + "-part", Labels: map[string]string{label: "true"}},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}}
	for _, obj := range []client.Object{aggregate, part} {
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %s: %w", obj.GetName(), err)
		}
	}
	return wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("kube-controller-manager exited: %v", p.ExitError())
		}
		var got rbacv1.ClusterRole
		if err := c.Get(ctx, client.ObjectKeyFromObject(aggregate), &got); err != nil {
			return false, err
		}
		return len(got.Rules) > 0, nil
	})
}
