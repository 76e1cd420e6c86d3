package controllers

import (
	"context"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlc/dlcfake"
	"github.com/dlcsync/dlcsync/internal/endpoints"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// recordingListers records the credentials of every client a sync asks for.
type recordingListers struct {
	mu      sync.Mutex
	configs []dlc.Config
}

func (l *recordingListers) Lister(cfg dlc.Config) (dlc.Lister, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.configs = append(l.configs, cfg)
	return &dlcfake.Lister{}, nil
}

// A JobQuery stored before admission refused it, or under a CRD not yet upgraded, may still name
// one Secret key for two roles. The manager refuses it before reading the Secret's data: the
// AccessKey secret never becomes the STS token header or the AccessKey ID of a request.
// Note: the fake client, because the apiserver (envtest) no longer accepts such a JobQuery.
func TestSecretKeyNamesThatCoincideAreRefusedBeforeAnyRequest(t *testing.T) {
	for name, keys := range map[string]dlcv1alpha1.SecretCredentials{
		"token key names the secret":                              {SecurityTokenKey: "accessKeySecret"},
		"id key names the secret":                                 {AccessKeyIDKey: "accessKeySecret"},
		"secret key names the id":                                 {AccessKeySecretKey: "accessKeyId"},
		"id and token share a key":                                {AccessKeyIDKey: "k", SecurityTokenKey: "k"},
		"one key for every credential":                            {AccessKeyIDKey: "k", AccessKeySecretKey: "k", SecurityTokenKey: "k"},
		"id and secret swapped":                                   {AccessKeyIDKey: "accessKeySecret", AccessKeySecretKey: "accessKeyId"},
		"token names the default secret, the secret is elsewhere": {AccessKeySecretKey: "k", SecurityTokenKey: "accessKeySecret"},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			q := testenv.JobQuery("team", "keys", "http://127.0.0.1:1")
			q.Generation = 1
			keys.Name = testenv.CredentialsSecretName
			q.Spec.Credentials.SecretRef = &keys
			secret := testenv.CredentialsSecret("team", testenv.CredentialsSecretName, "id", "the-secret")
			// The fake client does not turn stringData into data as the apiserver does.
			secret.Data = map[string][]byte{"accessKeyId": []byte("id"), "accessKeySecret": []byte("the-secret"),
				"securityToken": []byte("token"), "k": []byte("the-secret")}
			var secretReads int
			c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).
				WithObjects(q, secret).
				WithStatusSubresource(q).
				WithIndex(&dlcv1alpha1.DLCJobSnapshot{}, ownerIndexKey, ownerUIDsOf).
				WithInterceptorFuncs(interceptor.Funcs{
					Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
						if _, ok := obj.(*corev1.Secret); ok {
							secretReads++
						}
						return c.Get(ctx, key, obj, opts...)
					},
				}).
				Build()
			policy, err := endpoints.ParsePatterns(testenv.LoopbackEndpoints)
			g.Expect(err).NotTo(HaveOccurred())
			listers := &recordingListers{}
			r := &JobQueryReconciler{Client: c, APIReader: c, Recorder: clientevents.NewFakeRecorder(10), Listers: listers,
				Endpoints: policy}

			_, err = r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(q)})
			g.Expect(err).NotTo(HaveOccurred())
			for _, cfg := range listers.configs {
				g.Expect(cfg.Static).To(BeNil(), "a client was built with AccessKey ID %q, secret %q, token %q",
					cfg.Static.AccessKeyID, cfg.Static.AccessKeySecret, cfg.Static.SecurityToken)
			}
			g.Expect(listers.configs).To(BeEmpty(), "a client was built for a refused query")
			g.Expect(secretReads).To(BeZero(), "the Secret's data was read for a refused query")
			got := &dlcv1alpha1.JobQuery{}
			g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(q), got)).To(Succeed())
			ready := meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal(dlcv1alpha1.ReasonSecretKeysNotDistinct), ready.Message)
			g.Expect(ready.Message).To(ContainSubstring("spec.credentials.secretRef"))
			g.Expect(ready.Message).To(ContainSubstring("must name different keys"))
			g.Expect(ready.Message).NotTo(ContainSubstring("the-secret"))
			g.Expect(isStalled(got.Status.Conditions)).To(BeTrue())
			g.Expect(got.Status.NextSyncTime).To(BeNil(), "only a change to the spec can help")
		})
	}
}
