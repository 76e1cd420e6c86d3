package deploy_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
	"github.com/dlcsync/dlcsync/test/image/imagetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	imagetest.Cleanup()
	os.Exit(code)
}

// TestHelmInstallRunsTheImageAndSyncs is `helm install` end to end: the chart rendered with
// allowedEndpoints for a local simulator, every object (CRDs first, as helm does) created in a
// real apiserver, the image's binary run as the chart's pod would (its command, args, env and
// service account), then the chart's NOTES followed: a labelled Secret and the sample JobQuery.
func TestHelmInstallRunsTheImageAndSyncs(t *testing.T) {
	objs := decodeAll(t, helm(t, "template", "dlcsync", "charts/dlcsync", "--namespace", "dlcsync-system", "--include-crds",
		"--set", "allowedEndpoints={http://127.0.0.1:*}"))
	installAndSync(t, objs, "dlcsync-system")
}

// TestInstallYAMLRunsTheImageAndSyncs does the same with the kustomize installer (the content of
// dist/install.yaml) and the kustomize patch a user adds to allow the simulator's endpoint.
func TestInstallYAMLRunsTheImageAndSyncs(t *testing.T) {
	overlay := t.TempDir()
	// Note: kustomize refuses absolute resource paths; a relative one may leave the overlay's folder.
	base, err := filepath.Rel(overlay, filepath.Join(testenv.RepoRoot(), "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	kustomization := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- %s
patches:
- target: {kind: Deployment}
  patch: |-
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --allowed-endpoints=http://127.0.0.1:*
`, base)
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), overlay)
	if err != nil {
		t.Fatalf("kustomize build of config/default with the user's patch: %v", err)
	}
	data, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	installAndSync(t, decodeAll(t, data), "dlcsync-system")
}

// installAndSync creates objs in a fresh control plane (without CRDs of its own: the installer's
// are the ones used), runs the manager from the image as the Deployment describes, and follows
// the chart's NOTES to a synced JobQuery.
func installAndSync(t *testing.T, objs []*unstructured.Unstructured, namespace string) {
	scheme := testenv.Scheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{Scheme: scheme}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	create(t, c, objs, namespace)
	dep := deploymentOf(t, objs)

	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{{AccessKeyID: "ak-team", AccessKeySecret: "sk-team",
		UserID: "1001", Username: "team", Admin: true}}, ShowOwnDefault: ptr.To(false), Seed: 16})
	sim.Generate(60)
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()

	proc := runDeployment(t, cfg, dep)
	q := followNotes(t, c, "ml-team", srv.URL)
	imagetest.WaitForSync(t, c, q.Namespace, q.Name, proc)
	checkOnlyTheManagerWritesSnapshots(t, cfg, q.Namespace)
	checkUserRoles(t, cfg, c, q.Namespace)

	// --leader-elect from the installer: the manager holds its Lease in its own namespace, which the
	// installer's RBAC must allow.
	var lease coordinationv1.Lease
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: "dlcsync.dlcsync.io"}, &lease); err != nil {
		t.Errorf("leader election Lease: %v", err)
	} else if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("Lease %s has no holder", lease.Name)
	}
}

// create makes the installer's objects: CRDs first (and waits until they serve), then the rest.
func create(t *testing.T, c client.Client, objs []*unstructured.Unstructured, namespace string) {
	t.Helper()
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	var crds []string
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			if err := c.Create(ctx, o); err != nil {
				t.Fatalf("CRD %s: %v", o.GetName(), err)
			}
			crds = append(crds, o.GetName())
		}
	}
	if len(crds) != 2 {
		t.Fatalf("the installer holds CRDs %v, want both", crds)
	}
	for _, name := range crds {
		waitFor(t, 30*time.Second, "CRD "+name+" established", func() bool {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := c.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
				return false
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true
				}
			}
			return false
		})
	}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" || (o.GetKind() == "Namespace" && o.GetName() == namespace) {
			continue
		}
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

func deploymentOf(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	o := find(objs, "Deployment", "")
	if o == nil {
		t.Fatal("no Deployment")
	}
	var dep appsv1.Deployment
	if err := runtimeConvert(o, &dep); err != nil {
		t.Fatal(err)
	}
	return &dep
}

// runDeployment runs the image's entrypoint with the Deployment's manager container: its command,
// args and env, the pod's service account, and a root file system writable by nobody when the
// container asks for readOnlyRootFilesystem. Only the two bind addresses change, to free loopback
// ports, because the process shares the test's network namespace instead of having its own.
func runDeployment(t *testing.T, cfg *rest.Config, dep *appsv1.Deployment) *imagetest.Process {
	t.Helper()
	pod := dep.Spec.Template.Spec
	ctr := pod.Containers[0]
	img := imagetest.Image(t, imagetest.SharedLayout(t), "linux/amd64")
	imgCfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	checkRunsAsNonRoot(t, pod, imgCfg)
	root := t.TempDir()
	imagetest.Extract(t, img, root)
	if sc := ctr.SecurityContext; sc != nil && ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
		readOnly(t, root)
	}
	config := imgCfg.Config
	if len(ctr.Command) > 0 {
		config.Entrypoint = ctr.Command
	}
	args := make([]string, 0, len(ctr.Args))
	for _, a := range ctr.Args {
		switch {
		case strings.HasPrefix(a, "--health-probe-bind-address="):
			a = "--health-probe-bind-address=127.0.0.1:0"
		case strings.HasPrefix(a, "--metrics-bind-address="):
			a = "--metrics-bind-address=127.0.0.1:0"
		}
		args = append(args, a)
	}
	token := imagetest.ServiceAccount(t, cfg, dep.Namespace, pod.ServiceAccountName)
	return imagetest.Run(t, imagetest.Pod{Root: root, Config: &config, Args: args, Env: containerEnv(t, dep, ctr),
		Namespace: dep.Namespace, Token: token, API: cfg})
}

// checkRunsAsNonRoot is the kubelet's check: with runAsNonRoot and no runAsUser, the image's user
// must be a non-zero number.
func checkRunsAsNonRoot(t *testing.T, pod corev1.PodSpec, img *v1.ConfigFile) {
	t.Helper()
	if pod.SecurityContext == nil || !ptr.Deref(pod.SecurityContext.RunAsNonRoot, false) {
		t.Fatal("the pod does not ask for runAsNonRoot")
	}
	uid, _, _ := strings.Cut(img.Config.User, ":")
	if uid == "" || uid == "0" || strings.Trim(uid, "0123456789") != "" {
		t.Fatalf("image user %q: the kubelet would refuse runAsNonRoot", img.Config.User)
	}
}

// containerEnv resolves the container's env as the kubelet would for the references it uses.
func containerEnv(t *testing.T, dep *appsv1.Deployment, ctr corev1.Container) []string {
	t.Helper()
	env := make([]string, 0, len(ctr.Env))
	for _, e := range ctr.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			v = dep.Namespace
		case e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory":
			limit := ctr.Resources.Limits[corev1.ResourceMemory]
			v = fmt.Sprint(limit.Value())
		default:
			t.Fatalf("env %s: a reference this test does not resolve", e.Name)
		}
		env = append(env, e.Name+"="+v)
	}
	return env
}

// readOnly takes write permission away from every folder of the image's root.
func readOnly(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chmod(path, 0o555)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// followNotes does what the chart's NOTES.txt tells a user: a credentials Secret, labelled for
// dlcsync, and the sample JobQuery, pointed at the simulator (spec.endpoint, as for a proxy).
func followNotes(t *testing.T, c client.Client, ns, endpoint string) *dlcv1alpha1.JobQuery {
	t.Helper()
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "charts", "dlcsync", "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"kubectl create secret generic dlc-credentials", "dlc.dlcsync.io/credentials=true",
		"config/samples/dlc_v1alpha1_jobquery.yaml"} {
		if !strings.Contains(string(notes), step) {
			t.Fatalf("NOTES.txt no longer says %q: update this test with it", step)
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dlc-credentials"},
		StringData: map[string]string{"accessKeyId": "ak-team", "accessKeySecret": "sk-team"}}
	if err := c.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	secret.Labels = map[string]string{"dlc.dlcsync.io/credentials": "true"}
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "dlc_v1alpha1_jobquery.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var q dlcv1alpha1.JobQuery
	if err := sigsyaml.UnmarshalStrict(data, &q); err != nil {
		t.Fatal(err)
	}
	q.Namespace, q.Spec.Endpoint = ns, endpoint
	if err := c.Create(ctx, &q); err != nil {
		t.Fatal(err)
	}
	return &q
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
