// Package image_test checks the image that `make image` writes: built twice it has one digest, its
// config and files are what a restricted pod needs, and its binary, run from the image's own file
// system, syncs a JobQuery from a simulator over HTTPS with the roots it is given and no others.
package image_test

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
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

// TestTheImageIsReproducible builds the image a second time from the same inputs into another folder
// and expects the same index digest: fixed file times, owners and creation time, a -trimpath build.
func TestTheImageIsReproducible(t *testing.T) {
	first := imagetest.SharedLayout(t)
	want, err := imagetest.Index(t, first).Digest()
	if err != nil {
		t.Fatal(err)
	}
	got := imagetest.Build(t, filepath.Join(t.TempDir(), "image"))
	if got != want.String() {
		t.Errorf("second build's index digest %s, first %s", got, want)
	}
}

// TestImagePushWritesTheIndexToARegistry is `make image-push` against go-containerregistry's
// in-memory registry: the pushed tag resolves to the digest the build printed, with the same
// platform image inside.
func TestImagePushWritesTheIndexToARegistry(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/dlcsync:" + imagetest.Version
	digest := imagetest.Build(t, filepath.Join(t.TempDir(), "image"), "--push", ref)
	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(parsed)
	if err != nil {
		t.Fatalf("pulling %s back: %v", ref, err)
	}
	if desc.Digest.String() != digest || desc.MediaType != types.OCIImageIndex {
		t.Errorf("registry holds %s (%s) under the tag, the build printed %s", desc.Digest, desc.MediaType, digest)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Platform == nil || m.Manifests[0].Platform.Architecture != "amd64" {
		t.Errorf("pushed index lists %+v, want the one linux/amd64 image", m.Manifests)
	}
}

// TestTheImageConfigAndFiles checks what a restricted pod relies on: entrypoint, numeric non-root
// user, OCI labels, OCI media types, and a file system with the binary and no shell.
func TestTheImageConfigAndFiles(t *testing.T) {
	dir := imagetest.SharedLayout(t)
	idx := imagetest.Index(t, dir)
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("index media type %s", mt)
	}
	img := imagetest.Image(t, dir, "linux/amd64")
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s", mt)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/manager"}) || len(cfg.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want [/manager] and none", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (numeric, so that runAsNonRoot can verify it)", cfg.Config.User)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cfg.OS, cfg.Architecture)
	}
	if got := cfg.Created.Unix(); got != 1700000000 {
		t.Errorf("created %v, want the --created time", cfg.Created)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.version":  imagetest.Version,
		"org.opencontainers.image.source":   "https://github.com/dlcsync/dlcsync",
		"org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
	} {
		if got := cfg.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	files := imagetest.Extract(t, img, t.TempDir())
	names := make([]string, 0, len(files))
	for path := range files {
		names = append(names, path)
	}
	slices.Sort(names)
	want := []string{"etc", "etc/group", "etc/passwd", "home", "home/nonroot", "manager", "tmp"}
	if !slices.Equal(names, want) {
		t.Errorf("image files %v, want %v (no shell, no package manager, no CA bundle)", names, want)
	}
	if m := files["manager"]; m.Mode != 0o755 || m.UID != 0 {
		t.Errorf("/manager mode %o uid %d, want 0755 owned by root (not writable by the user)", m.Mode, m.UID)
	}
	if h := files["home/nonroot"]; h.UID != 65532 {
		t.Errorf("/home/nonroot owned by %d, want 65532", h.UID)
	}
}

// TestTheImageBinaryPrintsItsVersion runs the extracted binary with --version.
func TestTheImageBinaryPrintsItsVersion(t *testing.T) {
	root := t.TempDir()
	imagetest.Extract(t, imagetest.Image(t, imagetest.SharedLayout(t), "linux/amd64"), root)
	out, err := exec.Command(filepath.Join(root, "manager"), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != imagetest.Version {
		t.Errorf("--version printed %q, want %q", got, imagetest.Version)
	}
}

const (
	operatorNS = "dlcsync-system"
	teamNS     = "ml-team"
)

// TestTheImageSyncsOverTLSWithTheRootsItIsGiven runs the image's binary as a pod would (its own root
// file system, user 65532, the service account's token and the generated manager role) against a
// simulator serving HTTPS with a certificate of a private CA. Without roots for that CA the sync
// fails on the certificate: the image trusts its embedded public roots only. With SSL_CERT_FILE
// naming the CA, as an administrator behind a TLS-inspecting proxy would mount it, the sync
// mirrors every matched job.
func TestTheImageSyncsOverTLSWithTheRootsItIsGiven(t *testing.T) {
	root := t.TempDir()
	img := imagetest.Image(t, imagetest.SharedLayout(t), "linux/amd64")
	imagetest.Extract(t, img, root)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}

	env, restCfg, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	c, err := client.New(restCfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	token := managerIdentity(t, c, restCfg)

	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{{AccessKeyID: "ak-team", AccessKeySecret: "sk-team",
		UserID: "1001", Username: "team", Admin: true}}, ShowOwnDefault: ptr.To(false), Seed: 16})
	sim.Generate(25)
	srv := httptest.NewTLSServer(sim.Handler())
	defer srv.Close()
	caFile := filepath.Join(root, "etc", "dlcsim-ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	must(t, c.Create(ctx, testenv.CredentialsSecret(teamNS, testenv.CredentialsSecretName, "ak-team", "sk-team")))
	q := testenv.JobQuery(teamNS, "all-jobs", srv.URL)
	q.Spec.Interval.Duration = 10 * time.Second
	// Generated jobs span the last 30 days; the default window is 7.
	q.Spec.Filter = dlcv1alpha1.JobFilter{ShowOwn: ptr.To(false),
		TimeRange: &dlcv1alpha1.TimeRange{Within: &metav1.Duration{Duration: 60 * 24 * time.Hour}}}
	must(t, c.Create(ctx, q))

	pod := imagetest.Pod{Root: root, Config: &cfg.Config, Namespace: operatorNS, Token: token, API: restCfg,
		Args: []string{"--health-probe-bind-address=127.0.0.1:0", "--metrics-bind-address=0",
			"--allowed-endpoints=https://127.0.0.1:*", "--zap-log-level=info"},
		Env: []string{"POD_NAMESPACE=" + operatorNS}}

	untrusted := imagetest.Run(t, pod)
	waitForCondition(t, c, q, untrusted, "certificate signed by unknown authority")
	_ = untrusted.Stop(10 * time.Second)
	var snaps dlcv1alpha1.DLCJobSnapshotList
	must(t, c.List(ctx, &snaps, client.InNamespace(teamNS)))
	if len(snaps.Items) != 0 {
		t.Fatalf("%d snapshots written through an untrusted certificate", len(snaps.Items))
	}

	pod.Env = append(pod.Env, "SSL_CERT_FILE=/etc/dlcsim-ca.crt")
	trusted := imagetest.Run(t, pod)
	synced, items := imagetest.WaitForSync(t, c, teamNS, q.Name, trusted)
	jobs := map[string]bool{}
	for _, j := range sim.Jobs() {
		jobs[j.JobID] = true
	}
	if synced.Status.MatchedJobs != int64(len(jobs)) {
		t.Errorf("matched %d jobs, the simulator holds %d (showOwn false, admin)", synced.Status.MatchedJobs, len(jobs))
	}
	for _, s := range items {
		if !jobs[s.Spec.JobID] {
			t.Errorf("snapshot %s mirrors job %q, which the simulator does not hold", s.Name, s.Spec.JobID)
		}
	}
}

// managerIdentity creates the operator's namespace, the team's namespace, the generated manager
// ClusterRole bound to the service account dlcsync-system/dlcsync, and returns a token for it.
func managerIdentity(t *testing.T, c client.Client, cfg *rest.Config) string {
	t.Helper()
	ctx := context.Background()
	for _, ns := range []string{operatorNS, teamNS} {
		must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	must(t, err)
	var role rbacv1.ClusterRole
	must(t, sigsyaml.Unmarshal(data, &role))
	must(t, c.Create(ctx, &role))
	must(t, c.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "dlcsync-manager"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: operatorNS, Name: "dlcsync"}}}))
	return imagetest.ServiceAccount(t, cfg, operatorNS, "dlcsync")
}

// waitForCondition waits for the JobQuery's Ready condition to be False with a message holding want.
func waitForCondition(t *testing.T, c client.Client, q *dlcv1alpha1.JobQuery, proc *imagetest.Process, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got dlcv1alpha1.JobQuery
		must(t, c.Get(context.Background(), client.ObjectKeyFromObject(q), &got))
		ready := meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady)
		if ready != nil && ready.Status == metav1.ConditionFalse && strings.Contains(ready.Message, want) {
			return
		}
		if proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("Ready never False with %q (exited %v): %+v", want, proc.Exited(), ready)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
