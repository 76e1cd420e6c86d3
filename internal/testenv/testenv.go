// Package testenv starts a real kube-apiserver and etcd (controller-runtime envtest) with the
// dlcsync CRDs installed, for the integration tests of every package.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// RepoRoot is the root of the repository, found from this file's location so that tests of any
// package can reach config/.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Scheme holds the client-go types and the dlcsync API types.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := dlcv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// ControlPlaneStartTimeout is how long etcd and kube-apiserver may take to start. The envtest
// default, 20 s, is not enough on 2 cores while another package's test loads the machine
// (go test runs two packages at once there).
const ControlPlaneStartTimeout = 2 * time.Minute

// Start starts a control plane with the CRDs of config/crd/bases installed. It fails with a
// message that says how to get the binaries when KUBEBUILDER_ASSETS is not set, because a
// silently skipped integration test proves nothing.
func Start() (*envtest.Environment, *rest.Config, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, " +
			"or export KUBEBUILDER_ASSETS=$(hack/setup-envtest.sh)")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:        []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   Scheme(),
		ControlPlaneStartTimeout: ControlPlaneStartTimeout,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("starting envtest control plane: %w", err)
	}
	return env, cfg, nil
}

// StartWithClient starts a control plane as Start does, stopped with the test, and a client of it.
func StartWithClient(t testing.TB) (*envtest.Environment, client.Client) {
	t.Helper()
	env, cfg, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return env, c
}

// CredentialsSecret is a credentials Secret as a user writes it for dlcsync: the AccessKey under
// the default keys and the label that lets JobQueries of its namespace use it.
func CredentialsSecret(namespace, name, accessKeyID, accessKeySecret string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels: map[string]string{dlcv1alpha1.LabelCredentials: "true"}},
		StringData: map[string]string{"accessKeyId": accessKeyID, "accessKeySecret": accessKeySecret},
	}
}

// CredentialsSecretName is the name of the Secret CreateTenant writes, which the tests' JobQueries
// reference.
const CredentialsSecretName = "dlc-credentials"

// JobQuery is the JobQuery the tests, the demo's checks and the benchmark start from: region
// cn-hangzhou, the given endpoint (a simulator), the tenant's credentials Secret
// (CredentialsSecretName) and a 1h interval; each suite sets the filter and bounds it needs.
func JobQuery(namespace, name, endpoint string) *dlcv1alpha1.JobQuery {
	return &dlcv1alpha1.JobQuery{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: dlcv1alpha1.JobQuerySpec{
			RegionID:    "cn-hangzhou",
			Endpoint:    endpoint,
			Credentials: dlcv1alpha1.Credentials{SecretRef: &dlcv1alpha1.SecretCredentials{Name: CredentialsSecretName}},
			Interval:    metav1.Duration{Duration: time.Hour},
		},
	}
}

// CreateTenant creates a namespace as a team using dlcsync would have it: the namespace and its
// labelled credentials Secret (CredentialsSecretName) with the given AccessKey. An existing
// namespace or Secret is kept, so tests may share the namespaces the manager treats specially.
func CreateTenant(ctx context.Context, c client.Client, namespace, accessKeyID, accessKeySecret string) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); client.IgnoreAlreadyExists(err) != nil {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	secret := CredentialsSecret(namespace, CredentialsSecretName, accessKeyID, accessKeySecret)
	if err := c.Create(ctx, secret); client.IgnoreAlreadyExists(err) != nil {
		return fmt.Errorf("creating the credentials Secret of %s: %w", namespace, err)
	}
	return nil
}

// LoopbackEndpoints is the --allowed-endpoints value for a simulator on this machine.
const LoopbackEndpoints = "http://127.0.0.1:*"

// WriteKubeconfig writes to path (creating its folder) a kubeconfig for a new user of env in
// system:masters, for a process that runs against the test apiserver as a user's would.
func WriteKubeconfig(env *envtest.Environment, userName, path string) error {
	user, err := env.AddUser(envtest.User{Name: userName, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding user %s: %w", userName, err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("the kubeconfig of %s: %w", userName, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// RequestSync asks for a sync of a JobQuery now, as `kubectl dlcsync sync` does: it sets the
// requestedAt annotation to a new value, which it returns (the query's
// status.lastHandledReconcileAt says when that sync has run).
func RequestSync(ctx context.Context, c client.Client, namespace, name string) (string, error) {
	var q dlcv1alpha1.JobQuery
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &q); err != nil {
		return "", fmt.Errorf("reading JobQuery %s/%s: %w", namespace, name, err)
	}
	patch := client.MergeFrom(q.DeepCopy())
	value := strconv.FormatInt(time.Now().UnixNano(), 10)
	if q.Annotations == nil {
		q.Annotations = map[string]string{}
	}
	q.Annotations[dlcv1alpha1.AnnotationRequestedAt] = value
	if err := c.Patch(ctx, &q, patch); err != nil {
		return "", fmt.Errorf("requesting a sync of JobQuery %s/%s: %w", namespace, name, err)
	}
	return value, nil
}

// WaitReady waits until the JobQuery's last sync handled the requestedAt value handled ("" for a
// query never asked) and, unless reason is empty, its Ready condition has that reason; it returns
// the query as last read. On timeout the error says what the query showed last.
func WaitReady(ctx context.Context, c client.Client, namespace, name, reason, handled string,
	timeout time.Duration) (*dlcv1alpha1.JobQuery, error) {
	q := &dlcv1alpha1.JobQuery{}
	last := "not read yet"
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		// A fresh object each time: the client does not clear fields a newer version lacks.
		*q = dlcv1alpha1.JobQuery{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, q); err != nil {
			last = err.Error()
			return false, nil
		}
		ready := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
		switch {
		case q.Status.LastHandledReconcileAt != handled:
			last = fmt.Sprintf("lastHandledReconcileAt %q", q.Status.LastHandledReconcileAt)
		case reason == "":
			return true, nil
		case ready == nil:
			last = "no Ready condition"
		case ready.Reason != reason:
			last = fmt.Sprintf("Ready reason %s: %s", ready.Reason, ready.Message)
		default:
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return q, fmt.Errorf("waiting for JobQuery %s/%s to be Ready with reason %q after request %q: %w; last seen: %s",
			namespace, name, reason, handled, err, last)
	}
	return q, nil
}
