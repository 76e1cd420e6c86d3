// Package deploy_test checks what users install: the kustomize installer (config/default, the
// content of dist/install.yaml) and the Helm chart, rendered and sent to a real kube-apiserver.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/dlcsync/dlcsync/internal/testenv"
)

func decodeAll(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if err == io.EOF {
				return out
			}
			t.Fatalf("invalid YAML: %v", err)
		}
		if len(obj.Object) > 0 {
			out = append(out, obj)
		}
	}
}

func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(testenv.RepoRoot(), dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	data, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, data)
}

func find(objs []*unstructured.Unstructured, kind, nameSuffix string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && strings.HasSuffix(o.GetName(), nameSuffix) {
			return o
		}
	}
	return nil
}

// managerRules are the rules of the generated manager role.
func managerRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := sigsyaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	return role.Rules
}

func rulesOf(t *testing.T, obj *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	var role rbacv1.ClusterRole
	if err := runtimeConvert(obj, &role); err != nil {
		t.Fatal(err)
	}
	return role.Rules
}

func runtimeConvert(obj *unstructured.Unstructured, into any) error {
	data, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	return sigsyaml.Unmarshal(data, into)
}

func checkInstall(t *testing.T, objs []*unstructured.Unstructured, managerRole string) {
	t.Helper()
	for _, crd := range []string{"jobqueries.dlc.dlcsync.io", "dlcjobsnapshots.dlc.dlcsync.io"} {
		if find(objs, "CustomResourceDefinition", crd) == nil {
			t.Errorf("CRD %s missing", crd)
		}
	}
	role := find(objs, "ClusterRole", managerRole)
	if role == nil {
		t.Fatalf("ClusterRole *%s missing", managerRole)
	}
	if got, want := rulesOf(t, role), managerRules(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("manager rules differ from the generated role:\n got %v\nwant %v", got, want)
	}
	dep := find(objs, "Deployment", "")
	if dep == nil {
		t.Fatal("Deployment missing")
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	args := fmt.Sprint(c["args"])
	for _, want := range []string{"--leader-elect", "--metrics-bind-address=:8443", "--health-probe-bind-address=:8081"} {
		if !strings.Contains(args, want) {
			t.Errorf("manager args %s lack %s", args, want)
		}
	}
	sc := c["securityContext"].(map[string]any)
	if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false {
		t.Errorf("container securityContext %v", sc)
	}
	if nonRoot, _, _ := unstructured.NestedBool(dep.Object, "spec", "template", "spec", "securityContext", "runAsNonRoot"); !nonRoot {
		t.Error("pod does not run as non-root")
	}
	for _, k := range []string{"resources", "livenessProbe", "readinessProbe"} {
		if c[k] == nil {
			t.Errorf("container lacks %s", k)
		}
	}
	checkWritersPolicy(t, objs)
	for _, kind := range []string{"ServiceAccount", "Service", "NetworkPolicy", "ClusterRoleBinding", "Role", "RoleBinding"} {
		if find(objs, kind, "") == nil {
			t.Errorf("%s missing", kind)
		}
	}
}

func TestTheKustomizeInstallerHasEveryCRDAndTheRBAC(t *testing.T) {
	objs := kustomize(t, "config/default")
	checkInstall(t, objs, "dlcsync-manager-role")
	if find(objs, "Namespace", "dlcsync-system") == nil {
		t.Error("namespace dlcsync-system missing")
	}
	withMonitor := kustomize(t, "config/prometheus")
	if find(withMonitor, "ServiceMonitor", "") == nil {
		t.Error("config/prometheus renders no ServiceMonitor")
	}
	applyDryRun(t, objs)
}

func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		t.Fatal("HELM is not set: run the tests with `make test`, which installs helm into bin/")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = testenv.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

func TestTheHelmChartLintsAndRenders(t *testing.T) {
	helm(t, "lint", "--strict", "charts/dlcsync")
	objs := decodeAll(t, helm(t, "template", "dlcsync", "charts/dlcsync", "--namespace", "dlcsync-system", "--include-crds",
		"--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.additionalLabels.release=kube-prometheus-stack",
		"--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true",
		"--set", "ambientCredentialsNamespaces={ml-team,dlcsync-system}",
		"--set", "serviceAccount.annotations.pod-identity\\.alibabacloud\\.com/role-name=dlcsync-reader",
		"--set", "replicas=2", "--set", "image.tag=v9.9.9"))
	checkInstall(t, objs, "dlcsync-manager")
	dep := find(objs, "Deployment", "")
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	if !slices.Contains(toStrings(c["args"]), "--ambient-credentials-namespaces=ml-team,dlcsync-system") {
		t.Errorf("args %v lack the ambient namespaces", c["args"])
	}
	if !slices.Contains(toStrings(c["args"]), "--memory-limit-ratio=0.8") {
		t.Errorf("args %v lack the default memory limit ratio", c["args"])
	}
	if c["image"] != "ghcr.io/dlcsync/dlcsync:v9.9.9" {
		t.Errorf("image %v", c["image"])
	}
	if replicas, _, _ := unstructured.NestedFieldNoCopy(dep.Object, "spec", "replicas"); fmt.Sprint(replicas) != "2" {
		t.Errorf("replicas %v", replicas)
	}
	sa := find(objs, "ServiceAccount", "")
	if sa.GetAnnotations()["pod-identity.alibabacloud.com/role-name"] != "dlcsync-reader" {
		t.Errorf("ServiceAccount annotations %v", sa.GetAnnotations())
	}
	checkMonitoring(t, objs)
	// The Go runtime's soft memory limit follows the container's: the manager reads it.
	env, _ := c["env"].([]any)
	var memLimit bool
	for _, e := range env {
		m := e.(map[string]any)
		ref, _, _ := unstructured.NestedString(m, "valueFrom", "resourceFieldRef", "resource")
		memLimit = memLimit || (m["name"] == "DLCSYNC_MEMORY_LIMIT" && ref == "limits.memory")
	}
	if !memLimit {
		t.Errorf("env %v lacks DLCSYNC_MEMORY_LIMIT from limits.memory", env)
	}
	var withoutMonitor []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() != "ServiceMonitor" && o.GetKind() != "PrometheusRule" {
			withoutMonitor = append(withoutMonitor, o)
		}
	}
	applyDryRun(t, withoutMonitor)
}

// With watchNamespaces the manager gets namespaced Roles only, so it cannot read a Secret of any
// other namespace; allowedEndpoints and revealNamespaces become the manager's flags.
func TestTheHelmChartWithWatchNamespacesGrantsNamespacedRolesOnly(t *testing.T) {
	objs := decodeAll(t, helm(t, "template", "dlcsync", "charts/dlcsync", "--namespace", "dlcsync-system",
		"--set", "watchNamespaces={team-a,team-b}", "--set", "allowedEndpoints={http://127.0.0.1:*}",
		"--set", "revealNamespaces={team-a}"))
	var roleNamespaces []string
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" && strings.HasSuffix(o.GetName(), "-manager") {
			t.Errorf("ClusterRole %s rendered with watchNamespaces", o.GetName())
		}
		if o.GetKind() == "ClusterRoleBinding" && strings.HasSuffix(o.GetName(), "-manager") {
			t.Errorf("ClusterRoleBinding %s rendered with watchNamespaces", o.GetName())
		}
		if o.GetKind() == "Role" && strings.HasSuffix(o.GetName(), "-manager") {
			roleNamespaces = append(roleNamespaces, o.GetNamespace())
			rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
			if !strings.Contains(fmt.Sprint(rules), "secrets") {
				t.Errorf("Role in %s lacks the manager's rules: %v", o.GetNamespace(), rules)
			}
		}
	}
	slices.Sort(roleNamespaces)
	if !slices.Equal(roleNamespaces, []string{"team-a", "team-b"}) {
		t.Errorf("manager Roles in %v, want team-a and team-b", roleNamespaces)
	}
	// The snapshot writers policy guards only these namespaces: releases sharded by namespace
	// must not refuse each other's managers.
	binding := find(objs, "ValidatingAdmissionPolicyBinding", "")
	selector, _, _ := unstructured.NestedSlice(binding.Object, "spec", "matchResources", "namespaceSelector", "matchExpressions")
	if got := fmt.Sprint(selector); !strings.Contains(got, "kubernetes.io/metadata.name") || !strings.Contains(got, "[team-a team-b]") {
		t.Errorf("the snapshot writers binding selects namespaces %s, want team-a and team-b", got)
	}
	dep := find(objs, "Deployment", "")
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	args := toStrings(containers[0].(map[string]any)["args"])
	for _, want := range []string{"--watch-namespaces=team-a,team-b", "--allowed-endpoints=http://127.0.0.1:*", "--reveal-namespaces=team-a"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
}

func toStrings(v any) []string {
	items := v.([]any)
	out := make([]string, 0, len(items))
	for _, s := range items {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

// applyDryRun sends every object to a real apiserver with dry-run, so the API server validates
// them against its schemas. CRDs are installed for real by envtest already.
func applyDryRun(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	env, cfg, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dlcsync-system"}}); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" || (o.GetKind() == "Namespace" && o.GetName() == "dlcsync-system") {
			continue
		}
		if err := c.Create(ctx, o, client.DryRunAll); err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// TestTheChartRefusesBadValues: values.schema.json makes helm refuse, before rendering anything, a
// value the templates would turn into a broken manager flag or object.
func TestTheChartRefusesBadValues(t *testing.T) {
	for _, tc := range []struct{ set, field string }{
		{"maxConcurrentSyncs=0", "maxConcurrentSyncs"},
		{"logLevel=loud", "logLevel"},
		{"image.pullPolicy=Sometimes", "pullPolicy"},
		{"allowedEndpoints={127.0.0.1:8080}", "allowedEndpoints"},
		{"watchNamespaces={Team_A}", "watchNamespaces"},
		{"metrics.port=70000", "port"},
		{"dlc.qps=0", "qps"},
		{"allowedEndpoint={http://127.0.0.1:*}", "allowedEndpoint"}, // a typo, not silently ignored
		{"extraArgs={leader-elect}", "extraArgs"},
		{"memoryLimitRatio=0", "memoryLimitRatio"},
		{"memoryLimitRatio=1.5", "memoryLimitRatio"}, // --set passes it as a string
		{"memoryLimitRatio=-0.5", "memoryLimitRatio"},
		{"memoryLimitRatio=0.x", "memoryLimitRatio"},
		// A quote would end the CEL string the name is written into.
		{"snapshotWritersPolicy.extraWriters={system:serviceaccount:a:b'] || true || ['}", "extraWriters"},
		{"stsEndpoint=https://sts.aliyuncs.com", "stsEndpoint"},
		{"assumableRoles.ml-team={ml-team-dlc}", "assumableRoles"},
		{"assumableRoles.Team_A={acs:ram::1:role/x}", "Team_A"}, // the schema library names the property, not its path
		{"extraVolumeMounts[0].name=ca", "extraVolumeMounts"},   // no mountPath
		{"crds.upgrade=true", "crds"},
	} {
		out, err := helmCommand("template", "dlcsync", "charts/dlcsync", "--set", tc.set)
		if err == nil {
			t.Errorf("--set %s rendered:\n%.200s", tc.set, out)
			continue
		}
		if !strings.Contains(out, "values don't meet the specifications of the schema") || !strings.Contains(out, tc.field) {
			t.Errorf("--set %s refused without naming %s in a schema error:\n%s", tc.set, tc.field, out)
		}
	}
	// A newline would end the CEL string a writer's name is written into, like a quote.
	if out, err := helmCommand("template", "dlcsync", "charts/dlcsync", "--set-json",
		`snapshotWritersPolicy.extraWriters=["system:serviceaccount:a:b\nc"]`); err == nil || !strings.Contains(out, "extraWriters") {
		t.Errorf("a writer with a newline: %v\n%.300s", err, out)
	}
	// A number above 1 from a values file or --set-json is refused too.
	if out, err := helmCommand("template", "dlcsync", "charts/dlcsync", "--set-json", "memoryLimitRatio=1.5"); err == nil ||
		!strings.Contains(out, "memoryLimitRatio") {
		t.Errorf("--set-json memoryLimitRatio=1.5: %v\n%.300s", err, out)
	}
	// A ratio below 1 reaches the manager's flag, from --set (a string) and --set-json (a number).
	for _, set := range [][]string{{"--set", "memoryLimitRatio=0.7"}, {"--set-json", "memoryLimitRatio=0.7"}, {"--set", "memoryLimitRatio=1"}} {
		want := "--memory-limit-ratio=" + strings.SplitN(set[1], "=", 2)[1]
		if out := helm(t, "template", "dlcsync", "charts/dlcsync", set[0], set[1]); !strings.Contains(string(out), want) {
			t.Errorf("%s %s: the manager's args lack %s", set[0], set[1], want)
		}
	}
	// The defaults and the documented examples pass.
	helm(t, "template", "dlcsync", "charts/dlcsync", "--set", "logLevel=2",
		"--set", "allowedEndpoints={https://*.proxy.example.internal,http://127.0.0.1:*}",
		"--set", "extraArgs={--zap-devel}", "--set", "replicas=0")
}

// checkWritersPolicy: the installer lets only its manager's service account write snapshots, by a
// policy whose binding names it.
func checkWritersPolicy(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	policy, binding := find(objs, "ValidatingAdmissionPolicy", ""), find(objs, "ValidatingAdmissionPolicyBinding", "")
	sa := find(objs, "ServiceAccount", "")
	if policy == nil || binding == nil || sa == nil {
		t.Fatalf("policy %v, binding %v, service account %v: one is missing", policy != nil, binding != nil, sa != nil)
	}
	if name, _, _ := unstructured.NestedString(binding.Object, "spec", "policyName"); name != policy.GetName() {
		t.Errorf("the binding names policy %q, the policy is %q", name, policy.GetName())
	}
	conditions, _, _ := unstructured.NestedSlice(policy.Object, "spec", "matchConditions")
	expr := fmt.Sprint(conditions)
	writer := "system:serviceaccount:" + sa.GetNamespace() + ":" + sa.GetName()
	if !strings.Contains(strings.ReplaceAll(expr, "' + '", ""), writer) {
		t.Errorf("the policy's match condition %s does not exempt the manager %s", expr, writer)
	}
}

// helmCommand runs helm and returns its combined output and error, for expected failures.
func helmCommand(args ...string) (string, error) {
	bin := os.Getenv("HELM")
	if bin == "" {
		return "", fmt.Errorf("HELM is not set")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// otherShard names the manager of another release, as every label-sharded release must.
const otherShard = "snapshotWritersPolicy.extraWriters={system:serviceaccount:dlcsync-shard2:shard2-dlcsync}"

// A label-sharded release whose snapshot writers policy names no other release would refuse the
// other releases' managers (they write snapshots in the same namespaces): the chart says so.
func TestALabelShardedReleaseMustNameTheOtherWriters(t *testing.T) {
	out, err := helmCommand("template", "dlcsync", "charts/dlcsync", "--set", "watchLabelSelector=sharding.dlcsync.io/key=shard1")
	if err == nil || !strings.Contains(out, "snapshotWritersPolicy.extraWriters") {
		t.Errorf("a label shard without extraWriters: %v\n%.300s", err, out)
	}
	objs := decodeAll(t, helm(t, "template", "dlcsync", "charts/dlcsync", "--namespace", "dlcsync-system",
		"--set", "watchLabelSelector=sharding.dlcsync.io/key=shard1", "--set", otherShard))
	conditions, _, _ := unstructured.NestedSlice(find(objs, "ValidatingAdmissionPolicy", "").Object, "spec", "matchConditions")
	for _, writer := range []string{"system:serviceaccount:dlcsync-system:dlcsync", "system:serviceaccount:dlcsync-shard2:shard2-dlcsync"} {
		if !strings.Contains(fmt.Sprint(conditions), "'"+writer+"'") {
			t.Errorf("the policy's match condition %v does not exempt %s", conditions, writer)
		}
	}
	if out, err := helmCommand("template", "dlcsync", "charts/dlcsync", "--set", "watchLabelSelector=k=v",
		"--set", "snapshotWritersPolicy.enabled=false"); err != nil {
		t.Errorf("a label shard without the policy: %v\n%.300s", err, out)
	}
}

// watchLabelSelector becomes --watch-label-selector as one argument, whatever the selector holds
// (spaces, commas, parentheses, a leading '!'), and is absent by default.
func TestTheHelmChartPassesTheWatchLabelSelector(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{nil, ""},
		{[]string{"--set", "watchLabelSelector=!sharding.dlcsync.io/key", "--set", otherShard}, "--watch-label-selector=!sharding.dlcsync.io/key"},
		{[]string{"--set-json", `watchLabelSelector="sharding.dlcsync.io/key in (shard1, shard2)"`, "--set", otherShard},
			"--watch-label-selector=sharding.dlcsync.io/key in (shard1, shard2)"},
	} {
		args := append([]string{"template", "dlcsync", "charts/dlcsync", "--namespace", "dlcsync-system"}, tc.set...)
		dep := find(decodeAll(t, helm(t, args...)), "Deployment", "")
		containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
		var got []string
		for _, a := range toStrings(containers[0].(map[string]any)["args"]) {
			if strings.HasPrefix(a, "--watch-label-selector") {
				got = append(got, a)
			}
		}
		if want := []string{tc.want}; tc.want == "" && len(got) != 0 || tc.want != "" && !slices.Equal(got, want) {
			t.Errorf("%v: args %v, want %q", tc.set, got, tc.want)
		}
	}
}

// checkMonitoring checks what the chart's monitoring values make: a ServiceMonitor that
// kube-prometheus-stack's Prometheus selects (its release label), that keeps the metrics' own
// namespace label, and that selects the metrics Service; the PrometheusRule with the recipe's
// alerts; the dashboard ConfigMap for Grafana's sidecar.
func checkMonitoring(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	monitor := find(objs, "ServiceMonitor", "")
	if monitor == nil {
		t.Fatal("ServiceMonitor missing with serviceMonitor.enabled")
	}
	if monitor.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v lack serviceMonitor.additionalLabels", monitor.GetLabels())
	}
	endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
	if len(endpoints) != 1 || endpoints[0].(map[string]any)["honorLabels"] != true {
		t.Errorf("ServiceMonitor endpoints %v: want honorLabels", endpoints)
	}
	selector, _, _ := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
	service := find(objs, "Service", "dlcsync-metrics")
	if service == nil {
		t.Fatal("no metrics Service")
	}
	for k, v := range selector {
		if service.GetLabels()[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, which the metrics Service (labels %v) lacks", k, v, service.GetLabels())
		}
	}

	rule := find(objs, "PrometheusRule", "")
	if rule == nil {
		t.Fatal("PrometheusRule missing with prometheusRule.enabled")
	}
	// Every field is one the Prometheus Operator's API has (strict: an unknown field fails).
	for obj, typed := range map[*unstructured.Unstructured]any{monitor: &monitoringv1.ServiceMonitor{}, rule: &monitoringv1.PrometheusRule{}} {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.Object, typed, true); err != nil {
			t.Errorf("%s: %v", obj.GetKind(), err)
		}
	}
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "recipes", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var recipe unstructured.Unstructured
	if err := sigsyaml.Unmarshal(data, &recipe.Object); err != nil {
		t.Fatal(err)
	}
	want, _, _ := unstructured.NestedSlice(recipe.Object, "spec", "groups")
	got, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the chart's PrometheusRule groups differ from docs/recipes/prometheusrule.yaml:\n%v\n%v", got, want)
	}

	dashboard := find(objs, "ConfigMap", "dlcsync-dashboard")
	if dashboard == nil {
		t.Fatal("dashboard ConfigMap missing with grafanaDashboard.enabled")
	}
	if dashboard.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard labels %v lack the Grafana sidecar's", dashboard.GetLabels())
	}
	text, _, _ := unstructured.NestedString(dashboard.Object, "data", "dlcsync.json")
	source, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "recipes", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var inChart, inDocs any
	if err := json.Unmarshal([]byte(text), &inChart); err != nil {
		t.Fatalf("the dashboard ConfigMap holds no JSON: %v", err)
	}
	if err := json.Unmarshal(source, &inDocs); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inChart, inDocs) {
		t.Error("the chart's dashboard differs from docs/recipes/grafana-dashboard.json")
	}
}
