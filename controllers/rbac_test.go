package controllers

import (
	"os"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/dlcsync/dlcsync/internal/testenv"
)

// TestTheGeneratedRoleIsLeastPrivilege reads config/rbac/role.yaml, generated from the
// +kubebuilder:rbac markers, and checks it grants only what the reconciler uses.
func TestTheGeneratedRoleIsLeastPrivilege(t *testing.T) {
	data, err := os.ReadFile(testenv.RepoRoot() + "/config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	granted := map[string][]string{}
	for _, rule := range role.Rules {
		for _, group := range rule.APIGroups {
			for _, res := range rule.Resources {
				if slices.Contains(rule.Verbs, "*") || res == "*" || group == "*" {
					t.Errorf("wildcard in rule %+v", rule)
				}
				key := group + "/" + res
				granted[key] = append(granted[key], rule.Verbs...)
			}
		}
	}
	want := map[string][]string{
		"/secrets":                             {"get", "list", "watch"},
		"events.k8s.io/events":                 {"create", "patch"},
		"dlc.dlcsync.io/jobqueries":            {"get", "list", "patch", "update", "watch"},
		"dlc.dlcsync.io/jobqueries/status":     {"get", "patch", "update"},
		"dlc.dlcsync.io/jobqueries/finalizers": {"update"},
		"dlc.dlcsync.io/dlcjobsnapshots":       {"create", "delete", "get", "list", "patch", "update", "watch"},
	}
	for key, verbs := range granted {
		slices.Sort(verbs)
		if !slices.Equal(verbs, want[key]) {
			t.Errorf("%s: granted %v, want %v", key, verbs, want[key])
		}
	}
	for key := range want {
		if _, ok := granted[key]; !ok {
			t.Errorf("%s: not granted", key)
		}
	}
}
