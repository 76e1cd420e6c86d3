package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlc/dlcfake"
)

// A reconcile woken right after a sync (a Secret's add event arriving late, as in
// TestAQuietQueryShowsItsFreshnessWithoutSnapshotWrites) reads its query from a cache that has
// not yet seen the status that sync wrote. It must not sync again, and whatever it computes from
// that older query must not be written over the first sync's status: a merge patch computed from
// the older query once replaced `created: 3` with `created: 0` (the flake of that test, one run
// in seven). Once this process no longer trusts its record of its own write (lateBy beyond
// cacheLagLimit), the resourceVersion guard of the status write is what keeps the status.
func TestAReconcileOnALaggingCacheNeitherSyncsAgainNorOverwritesTheStatus(t *testing.T) {
	for name, lateBy := range map[string]time.Duration{"soon after the write": 0, "long after the write": 2 * cacheLagLimit} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			c, stored, lister := laggingCache(t)
			clock := time.Now()
			r := &JobQueryReconciler{Client: c, APIReader: stored, Recorder: clientevents.NewFakeRecorder(100), Listers: fixedListers{lister},
				Endpoints: loopbackPolicy(t), Now: func() time.Time { return clock }}
			req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "team", Name: "lagging"}}

			_, err := r.Reconcile(ctx, req)
			g.Expect(err).NotTo(HaveOccurred())
			calls := len(lister.Requests())
			clock = clock.Add(lateBy)
			// The woken reconcile, on the lagging cache.
			result, err := r.Reconcile(ctx, req)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(result.RequeueAfter).To(BeNumerically(">", 0), "the query is looked at again once the cache caught up")
			if lateBy == 0 {
				g.Expect(lister.Requests()).To(HaveLen(calls), "the woken reconcile listed the jobs again")
			}
			// The cache still lags: the query waits for it instead of syncing again and again.
			calls = len(lister.Requests())
			_, err = r.Reconcile(ctx, req)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(lister.Requests()).To(HaveLen(calls), "a reconcile on the same lagging cache listed the jobs again")

			var got dlcv1alpha1.JobQuery
			g.Expect(stored.Get(ctx, req.NamespacedName, &got)).To(Succeed())
			g.Expect(readyReason(got.Status.Conditions)).To(Equal(dlcv1alpha1.ReasonSynced))
			g.Expect(got.Status.LastSyncStats).NotTo(BeNil())
			g.Expect(got.Status.LastSyncStats.Created).To(Equal(int32(3)), "the first sync's status was overwritten")
		})
	}
}

// laggingCache returns the store of an apiserver holding a query and its Secret, a cache of it whose
// reads of the query return, once the first status write is on its way, the version stored just before
// it (as an informer does until the write's watch event arrives), and an honest lister of 3 jobs.
func laggingCache(t *testing.T) (cache, stored client.Client, lister *dlcfake.Lister) {
	t.Helper()
	_, base := fakeCluster("lagging")
	created := time.Now().Add(-time.Hour).UTC().Format(dlc.TimeLayout)
	var jobs []dlc.JobItem
	for i := range 3 {
		jobs = append(jobs, dlc.JobItem{JobID: fmt.Sprintf("dlclag%d", i), GmtCreateTime: created, Status: dlc.StatusSucceeded})
	}
	var lagging *dlcv1alpha1.JobQuery
	cache = interceptor.NewClient(base, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if got, ok := obj.(*dlcv1alpha1.JobQuery); ok && lagging != nil {
				lagging.DeepCopyInto(got)
				return nil
			}
			return c.Get(ctx, key, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch,
			opts ...client.SubResourcePatchOption) error {
			if lagging == nil {
				before := &dlcv1alpha1.JobQuery{}
				if err := c.Get(ctx, client.ObjectKeyFromObject(obj), before); err != nil {
					return err
				}
				lagging = before
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	return cache, base, &dlcfake.Lister{Jobs: jobs}
}
