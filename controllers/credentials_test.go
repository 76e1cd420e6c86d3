package controllers

// Tenant safety, decided before any request (resolveAccess and the credentials Secret): a
// JobQuery reaches only allowed endpoints and only Secrets labelled for dlcsync, and the manager
// caches no other Secret.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlc/dlcfake"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
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

func TestSecretRotationTriggersASync(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcrotate", 2, "TFJob")
	g.Expect(k8s.Create(testCtx, credentialsSecret(ns, "rotating", dlcsim.Identity{AccessKeyID: simAdmin.AccessKeyID, AccessKeySecret: "old-wrong"}))).To(Succeed())
	q := queryFor(ns, "r", "dlcrotate")
	q.Spec.Credentials.SecretRef.Name = "rotating"
	createReady(t, q, dlcv1alpha1.ReasonUnauthorized)

	var secret corev1.Secret
	g.Expect(k8s.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "rotating"}, &secret)).To(Succeed())
	secret.Data["accessKeySecret"] = []byte(simAdmin.AccessKeySecret)
	g.Expect(k8s.Update(testCtx, &secret)).To(Succeed())
	waitReady(t, ns, "r", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveLen(2))
}

func TestAnEndpointOutsideTheAllowListGetsNoRequest(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv, hits := recordingServer(t)
	// The tests allow http://127.0.0.1:* only; the same server named "localhost" is not allowed.
	q := query(ns, "elsewhere")
	q.Spec.Endpoint = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	got := createReady(t, q, dlcv1alpha1.ReasonEndpointNotAllowed)
	ready := meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(ready.Message).To(ContainSubstring("--allowed-endpoints"))
	g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, dlcv1alpha1.ConditionStalled)).To(BeTrue())
	// Refused before any request: the credentials never left the manager.
	resync(t, ns, "elsewhere", dlcv1alpha1.ReasonEndpointNotAllowed)
	g.Expect(hits.Load()).To(BeZero())
	g.Expect(snapshots(g, ns)).To(BeEmpty())
}

func TestASecretWithoutTheCredentialsLabelIsRefusedAndNeverCached(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	// A Secret created with `kubectl apply` carries its whole data in an annotation.
	plain := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-db", Annotations: map[string]string{
			"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"password":"aHVudGVyMg=="}}`}},
		StringData: map[string]string{"password": "hunter2", "user": "app"},
	}
	g.Expect(k8s.Create(testCtx, plain)).To(Succeed())
	q := query(ns, "exfiltrate")
	q.Spec.Credentials.SecretRef = &dlcv1alpha1.SecretCredentials{Name: "app-db", AccessKeyIDKey: "password", AccessKeySecretKey: "user"}
	got := createReady(t, q, dlcv1alpha1.ReasonSecretNotLabelled)
	ready := meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(ready.Message).To(ContainSubstring(dlcv1alpha1.LabelCredentials + "=true"))
	g.Expect(ready.Message).NotTo(ContainSubstring("hunter2"))

	// The manager's cache holds only labelled Secrets, metadata only, without annotations.
	labelled := credentialsSecret(ns, "labelled", simAdmin)
	labelled.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"accessKeySecret":"x"}}`}
	g.Expect(k8s.Create(testCtx, labelled)).To(Succeed())
	g.Eventually(func(g Gomega) {
		var cached metav1.PartialObjectMetadataList
		cached.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
		g.Expect(testManager.GetCache().List(testCtx, &cached, client.InNamespace(ns))).To(Succeed())
		names := map[string]metav1.PartialObjectMetadata{}
		for _, s := range cached.Items {
			names[s.Name] = s
		}
		g.Expect(names).NotTo(HaveKey("app-db"))
		g.Expect(names).To(HaveKey("labelled"))
		g.Expect(names["labelled"].Annotations).To(BeEmpty())
	}).WithTimeout(10 * time.Second).Should(Succeed())

	// Labelling the Secret is the opt-in: the label-selected watch starts a sync at once.
	g.Expect(k8s.Get(testCtx, client.ObjectKeyFromObject(plain), plain)).To(Succeed())
	plain.Labels = map[string]string{dlcv1alpha1.LabelCredentials: "true"}
	g.Expect(k8s.Update(testCtx, plain)).To(Succeed())
	g.Eventually(func(g Gomega) {
		q := getQuery(g, ns, "exfiltrate")
		g.Expect(readyReason(q.Status.Conditions)).NotTo(Equal(dlcv1alpha1.ReasonSecretNotLabelled))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// TestAnUnlabelledSecretsDataIsNeverRead proves at the reader: the Secret's data is never fetched,
// only its metadata (which says it is not meant for dlcsync).
func TestAnUnlabelledSecretsDataIsNeverRead(t *testing.T) {
	g := NewWithT(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "app-db"}, Data: map[string][]byte{"password": []byte("hunter2")}}
	var dataReads, metadataReads int
	reader := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(secret).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			switch obj.(type) {
			case *corev1.Secret:
				dataReads++
			case *metav1.PartialObjectMetadata:
				metadataReads++
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	// The reader stands for both the manager's cache and the apiserver.
	r := &JobQueryReconciler{Client: reader, APIReader: reader}
	_, err := r.secretVersion(context.Background(), "team", "app-db")
	reason, retryable := listingReason(err)
	g.Expect(reason).To(Equal(dlcv1alpha1.ReasonSecretNotLabelled))
	g.Expect(retryable).To(BeFalse())
	g.Expect(metadataReads).To(Equal(1))
	g.Expect(dataReads).To(BeZero())
	g.Expect(err.Error()).NotTo(ContainSubstring("hunter2"))

	// Labelled, it is read once and used.
	secret.Labels = map[string]string{dlcv1alpha1.LabelCredentials: "true"}
	secret.Data["accessKeySecret"] = []byte("s")
	g.Expect(reader.Update(context.Background(), secret)).To(Succeed())
	_, err = r.secretVersion(context.Background(), "team", "app-db")
	g.Expect(err).NotTo(HaveOccurred())
	static, _, err := r.secretCredentials(context.Background(), "team", &dlcv1alpha1.SecretCredentials{Name: "app-db", AccessKeyIDKey: "password"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(static.AccessKeyID).To(Equal("hunter2"))
	g.Expect(dataReads).To(Equal(1))
}
