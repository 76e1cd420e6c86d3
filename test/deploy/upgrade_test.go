package deploy_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	sigsyaml "sigs.k8s.io/yaml"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// previousChart is the chart of the previous release, as `helm package` wrote it (chart 0.1.0,
// packaged from commit b5feb0c): the one a user upgrades from. Replace it with each release.
const previousChart = "test/deploy/testdata/dlcsync-0.1.0.tgz"

// TestHelmUpgradeFromThePreviousChartUpgradesTheCRDs is a user's upgrade on a real apiserver with
// the real helm: the previous chart installed (its CRDs from crds/, which helm never upgrades),
// a JobQuery created, then `helm upgrade` to this chart with monitoring on. The CRDs on the
// apiserver are then this chart's (no field of the new manager is pruned), owned by the release,
// kept by `helm uninstall` with the JobQuery; the built-in roles give what docs/cli.md promises.
func TestHelmUpgradeFromThePreviousChartUpgradesTheCRDs(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	scheme := testenv.Scheme()
	g.Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	env := &envtest.Environment{Scheme: scheme, ControlPlaneStartTimeout: testenv.ControlPlaneStartTimeout}
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = env.Stop() }()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	admin, err := env.AddUser(envtest.User{Name: "helm-admin", Groups: []string{"system:masters"}}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfigData, err := admin.KubeConfig()
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	g.Expect(os.WriteFile(kubeconfig, kubeconfigData, 0o600)).To(Succeed())
	helmOn := func(args ...string) {
		helm(t, append(args, "--kubeconfig", kubeconfig, "--namespace", "dlcsync-system")...)
	}
	for _, path := range prometheusOperatorCRDs(t) {
		data, err := os.ReadFile(path)
		g.Expect(err).NotTo(HaveOccurred())
		for _, o := range decodeAll(t, data) {
			g.Expect(c.Create(ctx, o)).To(Succeed())
		}
	}

	previousCRDs := chartCRDs(t, previousChart)
	currentCRDs := chartCRDs(t, "charts/dlcsync")
	changed := false
	for name, spec := range currentCRDs {
		changed = changed || !apiequality.Semantic.DeepEqual(previousCRDs[name], spec)
	}
	g.Expect(changed).To(BeTrue(), "the previous chart's CRDs equal this chart's: %s is not the previous release's chart", previousChart)

	helmOn("install", "dlcsync", previousChart, "--create-namespace")
	g.Expect(serverCRDs(t, c)).To(Equal(previousCRDs), "the previous chart installed its own CRDs")
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ml-team"}})).To(Succeed())
	query := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ml-team", Name: "kept"},
		Spec: dlcv1alpha1.JobQuerySpec{RegionID: "cn-hangzhou", Interval: metav1.Duration{Duration: time.Minute}, Credentials: dlcv1alpha1.Credentials{
			SecretRef: &dlcv1alpha1.SecretCredentials{Name: "dlc-credentials"}}}}
	g.Expect(c.Create(ctx, query)).To(Succeed())

	// The previous chart's CRDs carry no release ownership: a plain upgrade stops, naming it, as
	// docs/release.md says; --take-ownership (helm 3.17 or later) adopts them once.
	monitoringOn := []string{"--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true",
		"--set", "grafanaDashboard.enabled=true"}
	out, err := helmCommand(append([]string{"upgrade", "dlcsync", "charts/dlcsync", "--kubeconfig", kubeconfig,
		"--namespace", "dlcsync-system"}, monitoringOn...)...)
	g.Expect(err).To(HaveOccurred(), "an upgrade without --take-ownership adopted CRDs helm did not own:\n%s", out)
	g.Expect(out).To(ContainSubstring("invalid ownership metadata"))
	// As docs/release.md says: the release's values kept (0.1.0's have no crds key).
	helmOn(append([]string{"upgrade", "dlcsync", "charts/dlcsync", "--reuse-values", "--take-ownership"}, monitoringOn...)...)

	checkUpgraded(t, c, currentCRDs, query)
	checkUserRoles(t, cfg, c, "ml-team")

	// Later upgrades need no flag: the release owns the CRDs now.
	helmOn("upgrade", "dlcsync", "charts/dlcsync", "--reuse-values", "--set", "logLevel=debug")
	checkASecondReleaseLeavesTheCRDsToTheFirst(t, kubeconfig)

	helmOn("uninstall", "dlcsync")
	g.Expect(serverCRDs(t, c)).To(Equal(currentCRDs), "helm uninstall removed the CRDs it was told to keep")
	err = c.Get(ctx, client.ObjectKeyFromObject(query), query)
	g.Expect(err).NotTo(HaveOccurred(), "the JobQuery is gone after helm uninstall")
	g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: "dlcsync-system", Name: "dlcsync"},
		&corev1.ServiceAccount{}))).To(BeTrue(), "helm uninstall kept the release's other objects")
}

// checkUpgraded: after the upgrade the apiserver serves this chart's CRDs, owned by the release
// and kept on uninstall, the JobQuery is still there and the monitoring objects exist.
func checkUpgraded(t *testing.T, c client.Client, currentCRDs map[string]apiextensionsv1.CustomResourceDefinitionSpec,
	query *dlcv1alpha1.JobQuery) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(serverCRDs(t, c)).To(Equal(currentCRDs), "helm upgrade left the previous release's CRDs")
	for name := range currentCRDs {
		var crd apiextensionsv1.CustomResourceDefinition
		g.Expect(c.Get(ctx, client.ObjectKey{Name: name}, &crd)).To(Succeed())
		g.Expect(crd.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"), name)
		g.Expect(crd.Annotations).To(HaveKeyWithValue("meta.helm.sh/release-name", "dlcsync"), name)
		g.Expect(crd.Annotations).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"), name)
	}
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(query), query)).To(Succeed(), "the JobQuery survives the upgrade")
	for _, o := range []struct{ group, version, kind, name string }{
		{"monitoring.coreos.com", "v1", "ServiceMonitor", "dlcsync"},
		{"monitoring.coreos.com", "v1", "PrometheusRule", "dlcsync"},
		{"", "v1", "ConfigMap", "dlcsync-dashboard"},
	} {
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(schema.GroupVersionKind{Group: o.group, Version: o.version, Kind: o.kind})
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "dlcsync-system", Name: o.name}, obj)).To(Succeed(), o.kind)
	}
}

// checkASecondReleaseLeavesTheCRDsToTheFirst: a release per shard (docs/operating.md, Sharding)
// shares the CRDs of the first; installing them again is refused, naming the owner, and
// crds.install=false installs.
func checkASecondReleaseLeavesTheCRDsToTheFirst(t *testing.T, kubeconfig string) {
	t.Helper()
	shard := []string{"install", "shard2", "charts/dlcsync", "--kubeconfig", kubeconfig, "--namespace", "dlcsync-shard2",
		"--create-namespace", "--set", "watchLabelSelector=sharding.dlcsync.io/key=shard2",
		"--set", "snapshotWritersPolicy.extraWriters={system:serviceaccount:dlcsync-system:dlcsync}"}
	if out, err := helmCommand(shard...); err == nil || !strings.Contains(out, "dlcsync") {
		t.Errorf("a second release installed the CRDs the first owns, or did not name the owner: %v\n%s", err, out)
	}
	helm(t, append(shard, "--set", "crds.install=false")...)
}

// prometheusOperatorCRDs are the Prometheus Operator's CRDs make manifests generates for the tests.
func prometheusOperatorCRDs(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "test", "deploy", "testdata", "prometheus-operator-crds", "*.yaml"))
	if err != nil || len(paths) != 2 {
		t.Fatalf("the Prometheus Operator CRDs: %v %v", paths, err)
	}
	return paths
}

// chartCRDs renders a chart as helm installs it, CRDs included, and returns its dlcsync CRDs'
// specs by name.
func chartCRDs(t *testing.T, chart string) map[string]apiextensionsv1.CustomResourceDefinitionSpec {
	t.Helper()
	specs := map[string]apiextensionsv1.CustomResourceDefinitionSpec{}
	for _, o := range decodeAll(t, helm(t, "template", "dlcsync", chart, "--include-crds")) {
		if o.GetKind() != "CustomResourceDefinition" || !strings.HasSuffix(o.GetName(), ".dlc.dlcsync.io") {
			continue
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := runtimeConvert(o, &crd); err != nil {
			t.Fatal(err)
		}
		specs[crd.Name] = normalised(t, crd.Spec)
	}
	if len(specs) != 2 {
		t.Fatalf("%s renders CRDs %v, want dlcsync's two", chart, specs)
	}
	return specs
}

// serverCRDs returns the dlcsync CRDs' specs the apiserver serves.
func serverCRDs(t *testing.T, c client.Client) map[string]apiextensionsv1.CustomResourceDefinitionSpec {
	t.Helper()
	var list apiextensionsv1.CustomResourceDefinitionList
	if err := c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	specs := map[string]apiextensionsv1.CustomResourceDefinitionSpec{}
	for _, crd := range list.Items {
		if strings.HasSuffix(crd.Name, ".dlc.dlcsync.io") {
			specs[crd.Name] = normalised(t, crd.Spec)
		}
	}
	return specs
}

// normalised drops what the apiserver fills in (conversion strategy, defaults of the schema's
// round trip) by a JSON round trip of the spec's schemas and names only, so a rendered CRD and a
// served one compare equal when they say the same.
func normalised(t *testing.T, spec apiextensionsv1.CustomResourceDefinitionSpec) apiextensionsv1.CustomResourceDefinitionSpec {
	t.Helper()
	spec.Conversion = nil
	data, err := sigsyaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var out apiextensionsv1.CustomResourceDefinitionSpec
	if err := sigsyaml.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The CRD values: install false leaves the CRDs to whoever manages them (a GitOps tool applying
// install.yaml), keep false lets helm uninstall delete them, annotations are added as given.
func TestTheChartsCRDValues(t *testing.T) {
	crdsOf := func(args ...string) []*unstructured.Unstructured {
		var crds []*unstructured.Unstructured
		for _, o := range decodeAll(t, helm(t, append([]string{"template", "dlcsync", "charts/dlcsync"}, args...)...)) {
			if o.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, o)
			}
		}
		return crds
	}
	if crds := crdsOf("--set", "crds.install=false"); len(crds) != 0 {
		t.Errorf("crds.install=false rendered %d CRDs", len(crds))
	}
	for _, crd := range crdsOf("--set", "crds.keep=false", "--set", "crds.annotations.team=platform") {
		if _, kept := crd.GetAnnotations()["helm.sh/resource-policy"]; kept {
			t.Errorf("crds.keep=false: %s still has the keep policy", crd.GetName())
		}
		if crd.GetAnnotations()["team"] != "platform" {
			t.Errorf("%s annotations %v lack crds.annotations", crd.GetName(), crd.GetAnnotations())
		}
	}
}

// A team's roles reach the manager's --assumable-roles (sorted by namespace, every pattern of
// each), the STS endpoint its --sts-endpoint; extra volumes and mounts and pod labels reach the
// pod, and a pod label cannot take the selector's label away from the pod.
func TestTheChartPassesIdentityAndPodValues(t *testing.T) {
	objs := decodeAll(t, helm(t, "template", "dlcsync", "charts/dlcsync", "--namespace", "dlcsync-system",
		"--set-json", `assumableRoles={"ml-team":["acs:ram::1:role/ml-*","acs:ram::1:role/shared"],"cv-team":["acs:ram::1:role/cv"]}`,
		"--set", "stsEndpoint=sts-vpc.cn-hangzhou.aliyuncs.com", "--set", "podLabels.team=platform",
		"--set", "podLabels.control-plane=hijacked",
		"--set-json", `extraVolumes=[{"name":"ca","configMap":{"name":"corp-ca"}}]`,
		"--set-json", `extraVolumeMounts=[{"name":"ca","mountPath":"/etc/corp-ca","readOnly":true}]`))
	dep := deploymentOf(t, objs)
	args := dep.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--assumable-roles=cv-team=acs:ram::1:role/cv,ml-team=acs:ram::1:role/ml-*,ml-team=acs:ram::1:role/shared",
		"--sts-endpoint=sts-vpc.cn-hangzhou.aliyuncs.com"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	labels := dep.Spec.Template.Labels
	if labels["team"] != "platform" || labels["control-plane"] != dep.Spec.Selector.MatchLabels["control-plane"] {
		t.Errorf("pod labels %v, selector %v", labels, dep.Spec.Selector.MatchLabels)
	}
	volumes, mounts := dep.Spec.Template.Spec.Volumes, dep.Spec.Template.Spec.Containers[0].VolumeMounts
	if len(volumes) != 1 || volumes[0].ConfigMap == nil || volumes[0].ConfigMap.Name != "corp-ca" ||
		len(mounts) != 1 || mounts[0].MountPath != "/etc/corp-ca" {
		t.Errorf("volumes %+v, mounts %+v", volumes, mounts)
	}
	applyDryRun(t, objs)
}

// A new RRSA role on the ServiceAccount changes the pod template (a checksum of its
// annotations), so that helm upgrade replaces the pods: the webhook sets a pod's identity only
// when the pod is created.
func TestANewServiceAccountRoleReplacesThePods(t *testing.T) {
	checksum := func(args ...string) string {
		dep := deploymentOf(t, decodeAll(t, helm(t, append([]string{"template", "dlcsync", "charts/dlcsync"}, args...)...)))
		return dep.Spec.Template.Annotations["checksum/serviceaccount-annotations"]
	}
	none := checksum()
	reader := checksum("--set", `serviceAccount.annotations.pod-identity\.alibabacloud\.com/role-name=dlcsync-reader`)
	writer := checksum("--set", `serviceAccount.annotations.pod-identity\.alibabacloud\.com/role-name=dlcsync-writer`)
	if none == "" || none == reader || reader == writer {
		t.Errorf("pod template checksums: none %q, reader %q, writer %q: a new role would not replace the pods", none, reader, writer)
	}
	if again := checksum("--set", `serviceAccount.annotations.pod-identity\.alibabacloud\.com/role-name=dlcsync-reader`); again != reader {
		t.Errorf("the same annotations gave checksums %q and %q: every upgrade would restart the manager", reader, again)
	}
}
