// Package imagetest builds the dlcsync image with hack/image, opens it with go-containerregistry,
// unpacks its file system and runs its entrypoint the way a kubelet would: inside the image's root
// (chroot), as the image's user, with the pod's service account files and no other environment.
// test/image and test/deploy share it.
package imagetest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"

	"github.com/dlcsync/dlcsync/internal/testenv"
)

// Inputs of the test build: fixed, so that two builds can be compared.
const (
	Version = "v0.0.0-imagetest"
	Created = "1700000000"
)

// Build runs hack/image for linux/amd64 only (to save the second compile) into out, with extra
// flags, and returns the digest it printed.
func Build(t testing.TB, out string, extra ...string) string {
	t.Helper()
	args := append([]string{"run", "./hack/image", "--out", out, "--platforms", "linux/amd64",
		"--version", Version, "--created", Created, "--revision", "0123456789abcdef0123456789abcdef01234567"}, extra...)
	cmd := exec.Command("go", args...)
	cmd.Dir = testenv.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	digest, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/image: %v\n%s", err, stderr.String())
	}
	t.Logf("hack/image built %s in %s", strings.TrimSpace(string(digest)), time.Since(start).Round(time.Second))
	return strings.TrimSpace(string(digest))
}

var (
	sharedOnce   sync.Once
	sharedLayout string
	sharedErr    error
)

// SharedLayout builds the image once per test binary into a folder that outlives the tests that use
// it (removed by Cleanup from TestMain).
func SharedLayout(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dlcsync-imagetest-")
		if err != nil {
			sharedErr = err
			return
		}
		sharedLayout = filepath.Join(dir, "image")
		Build(t, sharedLayout)
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedLayout
}

// Cleanup removes the shared layout; call it from TestMain after m.Run.
func Cleanup() {
	if sharedLayout != "" {
		_ = os.RemoveAll(filepath.Dir(sharedLayout))
	}
}

// Index opens the layout and returns the index that index.json names.
func Index(t testing.TB, dir string) v1.ImageIndex {
	t.Helper()
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("opening the OCI layout %s: %v", dir, err)
	}
	m, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("index.json of %s lists %d manifests, want the one index", dir, len(m.Manifests))
	}
	idx, err := root.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		t.Fatalf("reading index %s: %v", m.Manifests[0].Digest, err)
	}
	return idx
}

// Image returns the image of the platform os/arch from the layout's index.
func Image(t testing.TB, dir, platform string) v1.Image {
	t.Helper()
	idx := Index(t, dir)
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS+"/"+d.Platform.Architecture == platform {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no %s image in %s", platform, dir)
	return nil
}

// File is one entry of the image's file system.
type File struct {
	Mode     int64
	Type     byte
	UID, GID int
}

// Extract writes the image's flattened file system into root and returns its entries by path.
func Extract(t testing.TB, img v1.Image, root string) map[string]File {
	t.Helper()
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	files := map[string]File{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("reading the image's layers: %v", err)
		}
		name := filepath.Clean(h.Name)
		files[name] = File{Mode: h.Mode, Type: h.Typeflag, UID: h.Uid, GID: h.Gid}
		if err := writeEntry(root, name, h, tr); err != nil {
			t.Fatal(err)
		}
	}
}

func writeEntry(root, name string, h *tar.Header, r io.Reader) error {
	path := filepath.Join(root, name)
	if !strings.HasPrefix(path, filepath.Clean(root)+string(os.PathSeparator)) {
		return fmt.Errorf("layer entry %q escapes the root", h.Name)
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(path, 0o755); err != nil {
			return err
		}
		mode := os.FileMode(h.Mode).Perm()
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
		return os.Lchown(path, h.Uid, h.Gid)
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	}
	return fmt.Errorf("layer entry %q has type %q, which the image should not hold", h.Name, h.Typeflag)
}

// ServiceAccount makes the service account namespace/name (creating it when missing) and returns a
// token for it, as the kubelet projects into a pod.
func ServiceAccount(t testing.TB, cfg *rest.Config, namespace, name string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = cs.CoreV1().ServiceAccounts(namespace).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating service account %s/%s: %v", namespace, name, err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", namespace, name, err)
	}
	return tok.Status.Token
}

// Pod says how to run the image's entrypoint.
type Pod struct {
	Root      string       // the extracted file system
	Config    *v1.Config   // the image's config: entrypoint, user, working dir, env
	Args      []string     // the container's args
	Env       []string     // the container's env, NAME=value
	Namespace string       // the pod's namespace, in the service account files
	Token     string       // the service account token
	API       *rest.Config // the apiserver (host and CA) the in-cluster config points at
}

// Process is a running entrypoint.
type Process = testenv.Process

// Run starts the entrypoint. As root, it runs chrooted into the image's root as the image's
// user, so a missing file (CA bundle, /etc/passwd, a writable folder) fails here as in a pod;
// without root it runs the extracted binary directly, and says so in the test log.
func Run(t testing.TB, p Pod) *Process {
	t.Helper()
	hostURL := p.API.Host
	if !strings.Contains(hostURL, "://") {
		hostURL = "https://" + hostURL
	}
	host, err := url.Parse(hostURL)
	if err != nil || host.Hostname() == "" {
		t.Fatalf("apiserver host %q: %v", p.API.Host, err)
	}
	// The image's root is "/" for the process: the user must be able to traverse it.
	if err := os.Chmod(p.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	sa := filepath.Join(p.Root, "var/run/secrets/kubernetes.io/serviceaccount")
	if err := os.MkdirAll(sa, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"token": []byte(p.Token), "ca.crt": p.API.CAData, "namespace": []byte(p.Namespace)} {
		if err := os.WriteFile(filepath.Join(sa, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(p.Config.Entrypoint) == 0 {
		t.Fatal("the image has no entrypoint")
	}
	env := append([]string{"KUBERNETES_SERVICE_HOST=" + host.Hostname(), "KUBERNETES_SERVICE_PORT=" + host.Port(),
		"HOME=/home/nonroot"}, p.Config.Env...)
	env = append(env, p.Env...)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command(p.Config.Entrypoint[0], append(p.Config.Entrypoint[1:], p.Args...)...)
		uid, gid := userOf(t, p.Config.User)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: p.Root, Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		cmd.Dir = p.Config.WorkingDir
		if cmd.Dir == "" {
			cmd.Dir = "/"
		}
	} else {
		t.Log("not root: running the image's binary without chroot, as the current user")
		cmd = exec.Command(filepath.Join(p.Root, p.Config.Entrypoint[0]), append(p.Config.Entrypoint[1:], p.Args...)...)
	}
	cmd.Env = env
	// Stopped with SIGTERM, as the kubelet does; a manager that had exited already was
	// reported where it mattered.
	return testenv.RunProcess(t, "manager ("+p.Config.Entrypoint[0]+")", cmd, stopGrace, false)
}

// stopGrace is how long a stopped entrypoint may take before it is killed.
const stopGrace = 10 * time.Second

// userOf reads a numeric "uid:gid" image user; names would need the image's /etc/passwd.
func userOf(t testing.TB, user string) (uint32, uint32) {
	t.Helper()
	u, g, ok := strings.Cut(user, ":")
	uid, err1 := strconv.ParseUint(u, 10, 32)
	gid, err2 := strconv.ParseUint(g, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("image user %q: want numeric uid:gid", user)
	}
	return uint32(uid), uint32(gid)
}

// WaitForSync waits until the JobQuery namespace/name is Ready after a sync that matched jobs, and
// returns it with the snapshots of its namespace.
func WaitForSync(t testing.TB, c client.Client, namespace, name string, proc *Process) (
	*dlcv1alpha1.JobQuery, []dlcv1alpha1.DLCJobSnapshot) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var q dlcv1alpha1.JobQuery
		var snaps dlcv1alpha1.DLCJobSnapshotList
		err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &q)
		if err == nil {
			err = c.List(context.Background(), &snaps, client.InNamespace(namespace))
		}
		ready := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
		if err == nil && ready != nil && ready.Status == metav1.ConditionTrue && q.Status.MatchedJobs > 0 &&
			int64(len(snaps.Items)) == q.Status.MatchedJobs {
			return &q, snaps.Items
		}
		if proc != nil && proc.Exited() {
			t.Fatalf("the manager exited before JobQuery %s/%s synced", namespace, name)
		}
		if time.Now().After(deadline) {
			t.Fatalf("JobQuery %s/%s did not sync within 90s: err %v, Ready %+v, matched %d, snapshots %d",
				namespace, name, err, ready, q.Status.MatchedJobs, len(snaps.Items))
		}
		time.Sleep(300 * time.Millisecond)
	}
}
