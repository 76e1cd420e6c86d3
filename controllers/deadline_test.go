package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// fixedListers hands every query the same lister: the phase and deadline tests' lister factory.
type fixedListers struct{ lister dlc.Lister }

func (f fixedListers) Lister(dlc.Config) (dlc.Lister, error) { return f.lister, nil }

// fakeCluster is a fake client holding a query and its credentials Secret, with the index a sync
// reads its snapshots by: for tests that run Reconcile with a lister of their own.
func fakeCluster(namespace, name string) (*dlcv1alpha1.JobQuery, client.WithWatch) {
	q := testenv.JobQuery(namespace, name, "http://127.0.0.1:1")
	q.Generation = 1
	secret := testenv.CredentialsSecret(namespace, testenv.CredentialsSecretName, "id", "secret")
	// The fake client does not turn stringData into data as the apiserver does.
	secret.Data = map[string][]byte{"accessKeyId": []byte("id"), "accessKeySecret": []byte("secret")}
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).
		WithObjects(q, secret).
		WithStatusSubresource(q).
		WithIndex(&dlcv1alpha1.DLCJobSnapshot{}, ownerIndexKey, ownerUIDsOf).
		Build()
	return q, c
}

// hangingLister answers only when the caller gives up, as an endpoint that accepts the
// connection and never replies.
type hangingLister struct{ calls int }

func (h *hangingLister) ListJobs(ctx context.Context, _ *dlc.ListJobsRequest) (*dlc.ListJobsResponse, error) {
	h.calls++
	<-ctx.Done()
	return nil, ctx.Err()
}

// A sync whose endpoint never answers ends at its deadline, says so, and is retried later:
// it does not hold a sync worker for as long as the endpoint likes.
func TestASyncEndsAtItsDeadline(t *testing.T) {
	g := NewWithT(t)
	q, c := fakeCluster("team", "slow")
	lister := &hangingLister{}
	r := &JobQueryReconciler{Client: c, APIReader: c, Recorder: clientevents.NewFakeRecorder(10), Listers: fixedListers{lister},
		Endpoints: loopbackPolicy(t), SyncTimeout: 200 * time.Millisecond}

	start := time.Now()
	result, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(q)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	g.Expect(lister.calls).To(Equal(1))
	g.Expect(result.RequeueAfter).To(Equal(retryDelay(1)))
	got := &dlcv1alpha1.JobQuery{}
	g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(q), got)).To(Succeed())
	g.Expect(readyReason(got.Status.Conditions)).To(Equal(dlcv1alpha1.ReasonSyncTimeout))
	g.Expect(isStalled(got.Status.Conditions)).To(BeFalse())
}
