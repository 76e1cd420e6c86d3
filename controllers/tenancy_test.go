package controllers

// Tenant safety through the real manager: a JobQuery reaches only allowed endpoints and only
// Secrets labelled for dlcsync, and the manager caches no other Secret.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// recordingServer counts the requests an endpoint receives and the credentials they carry.
func recordingServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
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

// An allowed endpoint that answers with a redirect does not move the signed requests elsewhere:
// the host it names receives nothing, and the condition says why the sync failed.
func TestARedirectFromAnAllowedEndpointIsNotFollowed(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	elsewhere, hits := recordingServer(t)
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirecting.Close)
	q := query(ns, "redirected")
	q.Spec.Endpoint = redirecting.URL
	got := createReady(t, q, dlcv1alpha1.ReasonBadResponse)
	g.Expect(hits.Load()).To(BeZero(), "the redirect was followed with the query's credentials")
	ready := meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(ready.Message).To(ContainSubstring("the endpoint redirected to " + elsewhere.URL + "; dlcsync follows no redirects"))
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
