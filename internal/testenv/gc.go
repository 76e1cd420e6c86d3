package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// GarbageCollector is a kube-controller-manager that runs only the garbage collector controller
// against an envtest control plane, which runs no controller of its own: with it, owner
// references, foreground and background deletion behave as in a cluster.
type GarbageCollector struct {
	*Process
}

// controllersReadyTimeout bounds the start: kube-controller-manager waits for the apiserver,
// discovers every resource and fills its informers before its controllers act.
const controllersReadyTimeout = 90 * time.Second

// StartGarbageCollector runs kube-controller-manager (from KUBEBUILDER_ASSETS, built there by
// hack/setup-envtest.sh) with only the garbage collector, authenticated as cfg's user, and
// returns once it has collected a probe object, so a test can rely on it at once. It stops when
// t ends; its log is shown when t failed.
func StartGarbageCollector(t testing.TB, cfg *rest.Config) *GarbageCollector {
	t.Helper()
	p := runControllers(t, cfg, "garbage-collector-controller", waitCollecting, "--concurrent-gc-syncs=5")
	return &GarbageCollector{Process: p}
}

// runControllers runs kube-controller-manager with only the given controllers until t ends,
// and returns once ready says they act; its log is shown when t failed.
func runControllers(t testing.TB, cfg *rest.Config, controllers string,
	ready func(context.Context, *rest.Config, *Process) error, extra ...string) *Process {
	t.Helper()
	cmd, err := controllerManager(cfg, t.TempDir(), controllers, extra...)
	if err != nil {
		t.Fatalf("kube-controller-manager (%s): %v", controllers, err)
	}
	p := RunProcess(t, "kube-controller-manager ("+controllers+")", cmd, 10*time.Second, true)
	ctx, cancel := context.WithTimeout(context.Background(), controllersReadyTimeout)
	defer cancel()
	if err := ready(ctx, cfg, p); err != nil {
		t.Fatalf("kube-controller-manager (%s) did not start acting: %v\nits log (last 60 lines):\n%s", controllers, err, p.Tail(60))
	}
	return p
}

// controllerManager is the command of kube-controller-manager with only the given controllers.
func controllerManager(cfg *rest.Config, dir, controllers string, extra ...string) (*exec.Cmd, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	binary := filepath.Join(assets, "kube-controller-manager")
	if _, err := os.Stat(binary); assets == "" || err != nil {
		return nil, fmt.Errorf("no kube-controller-manager in KUBEBUILDER_ASSETS (%q): build it with hack/setup-envtest.sh", assets)
	}
	kubeconfig := filepath.Join(dir, "kube-controller-manager.kubeconfig")
	if err := writeKubeconfig(cfg, kubeconfig); err != nil {
		return nil, err
	}
	// --secure-port=0 serves nothing, so no port can clash between parallel test binaries
	// and no authentication or authorization delegation is configured; no leader election (one
	// instance); no service-account credentials (envtest signs no tokens): every controller acts
	// as the kubeconfig's user, envtest's admin.
	cmd := exec.Command(binary, append([]string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + controllers,
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--secure-port=0",
	}, extra...)...)
	cmd.SysProcAttr = dieWithParent()
	return cmd, nil
}

// Stop ends kube-controller-manager: SIGTERM, then SIGKILL after 10 seconds. It may be called
// more than once.
func (gc *GarbageCollector) Stop() error { return gc.Process.Stop(10 * time.Second) }

// waitCollecting proves the collector works: a ConfigMap owned by another is deleted once its
// owner is gone. The probe lives in kube-system, which no test uses.
func waitCollecting(ctx context.Context, cfg *rest.Config, gc *Process) error {
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	suffix := rand.String(6)
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: "gc-probe-owner-" + suffix}}
	if err := c.Create(ctx, owner); err != nil {
		return fmt.Errorf("creating the probe owner: %w", err)
	}
	dependent := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: "gc-probe-dependent-" + suffix,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}}}}
	if err := c.Create(ctx, dependent); err != nil {
		return fmt.Errorf("creating the probe dependent: %w", err)
	}
	if err := c.Delete(ctx, owner); err != nil {
		return fmt.Errorf("deleting the probe owner: %w", err)
	}
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if gc.Exited() {
			return false, fmt.Errorf("kube-controller-manager exited: %v", gc.ExitError())
		}
		err := c.Get(ctx, client.ObjectKeyFromObject(dependent), &corev1.ConfigMap{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, client.IgnoreNotFound(err)
	})
	if err != nil {
		return fmt.Errorf("waiting for the probe dependent %s to be collected: %w", client.ObjectKeyFromObject(dependent), err)
	}
	return nil
}

// writeKubeconfig writes a kubeconfig for cfg's server and user (envtest's admin: client
// certificate, or a bearer token).
func writeKubeconfig(cfg *rest.Config, path string) error {
	const name = "envtest"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData,
		CertificateAuthority: cfg.CAFile, InsecureSkipTLSVerify: cfg.Insecure}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData,
		ClientCertificate: cfg.CertFile, ClientKey: cfg.KeyFile, Token: cfg.BearerToken, TokenFile: cfg.BearerTokenFile,
		Username: cfg.Username, Password: cfg.Password}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("writing the kubeconfig of kube-controller-manager: %w", err)
	}
	return nil
}
