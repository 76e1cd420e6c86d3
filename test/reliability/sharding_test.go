package reliability

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/controllers"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// shardKey is the label the sharding tests shard JobQueries by, as operating.md suggests.
const shardKey = "sharding.dlcsync.io/key"

// writeRecorder records the path of every write (any method but GET) a manager sends, so a test
// can tell which objects a manager wrote, not only how many.
type writeRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (w *writeRecorder) instrument(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method != http.MethodGet {
				w.mu.Lock()
				w.paths = append(w.paths, req.URL.Path)
				w.mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	})
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// objects counts the writes so far to objects of one resource in one namespace, by object name
// (a subresource counts for its object).
func (w *writeRecorder) objects(namespace, resource string) map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	prefix := "/namespaces/" + namespace + "/" + resource + "/"
	out := map[string]int{}
	for _, p := range w.paths {
		if _, tail, ok := strings.Cut(p, prefix); ok {
			name, _, _ := strings.Cut(tail, "/")
			out[name]++
		}
	}
	return out
}

// since is the difference of two counts by name.
func since(now, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range now {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// setQuery changes a query with a merge patch.
func setQuery(g Gomega, namespace, name string, change func(q *dlcv1alpha1.JobQuery)) {
	var q dlcv1alpha1.JobQuery
	g.Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: name}, &q)).To(Succeed())
	patch := client.MergeFrom(q.DeepCopy())
	change(&q)
	g.Expect(k8s.Patch(context.Background(), &q, patch)).To(Succeed())
}

// expectClaims fails unless the snapshot of each job is owned by, and matched by, exactly the
// given queries.
func expectClaims(g Gomega, namespace string, ids []string, queries ...string) {
	snaps := snapshotsOf(g, namespace)
	for _, id := range ids {
		s, ok := snaps[id]
		g.Expect(ok).To(BeTrue(), "no snapshot of %s", id)
		var owners []string
		for _, ref := range s.OwnerReferences {
			owners = append(owners, ref.Name)
		}
		slices.Sort(owners)
		g.Expect(owners).To(Equal(queries), "owners of %s", id)
		g.Expect(s.Status.MatchedBy).To(Equal(queries), "matchedBy of %s", id)
		g.Expect(s.Status.Matching).To(BeTrue())
	}
}

// Two managers shard the JobQueries of one namespace by label, Flux's way: one syncs the queries
// labelled sharding.dlcsync.io/key=one, the other those without the label. Neither ever writes
// the other's queries; where their queries share snapshots, each adds and removes only its own
// claim and neither rewrites what the other wrote; a query relabelled moves to the other shard.
func TestShardedManagersNeverTouchEachOthersQueries(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	aIDs, bIDs := addJobs("dlcsharda", 10), addJobs("dlcshardb", 10)
	one := startManagerWith(t, "one", managerOptions{watchLabelSelector: shardKey + "=one"})
	restShard := startManagerWith(t, "rest", managerOptions{watchLabelSelector: "!" + shardKey})

	// alpha and wide are shard one's; beta, unlabelled, the rest's. wide shares beta's jobs.
	for _, q := range []*dlcv1alpha1.JobQuery{newQuery(ns, "alpha", "dlcsharda"), newQuery(ns, "wide", "dlcshard"),
		newQuery(ns, "beta", "dlcshardb")} {
		if q.Name != "beta" {
			q.Labels = map[string]string{shardKey: "one"}
		}
		g.Expect(k8s.Create(context.Background(), q)).To(Succeed())
	}
	t.Cleanup(func() {
		_ = k8s.DeleteAllOf(context.Background(), &dlcv1alpha1.JobQuery{}, client.InNamespace(ns))
	})
	waitSynced(t, ns, "alpha", 10)
	waitSynced(t, ns, "wide", 20)
	waitSynced(t, ns, "beta", 10)
	expectRight(g, ns, append(aIDs, bIDs...))
	NewWithT(t).Eventually(func(g Gomega) { expectClaims(g, ns, bIDs, "beta", "wide") }).WithTimeout(30 * time.Second).Should(Succeed())
	expectClaims(g, ns, aIDs, "alpha", "wide")

	queriesOf := func(m *manager) []string {
		var names []string
		for name := range m.paths.objects(ns, "jobqueries") {
			names = append(names, name)
		}
		slices.Sort(names)
		return names
	}
	g.Expect(queriesOf(one)).To(Equal([]string{"alpha", "wide"}), "shard one wrote a query it does not own")
	g.Expect(queriesOf(restShard)).To(Equal([]string{"beta"}), "the rest wrote a query of shard one")
	aNames := map[string]bool{}
	for _, id := range aIDs {
		aNames[snapshot.Name(id)] = true
	}
	for name := range restShard.paths.objects(ns, "dlcjobsnapshots") {
		g.Expect(aNames).NotTo(HaveKey(name), "the rest wrote a snapshot only shard one's queries match")
	}

	// Quiet syncs on both sides, in turn: no snapshot write at all, so neither undoes the other.
	oneBefore, restBefore := one.paths.objects(ns, "dlcjobsnapshots"), restShard.paths.objects(ns, "dlcjobsnapshots")
	syncNow(t, ns, "beta", 10)
	syncNow(t, ns, "wide", 20)
	syncNow(t, ns, "beta", 10)
	g.Expect(since(one.paths.objects(ns, "dlcjobsnapshots"), oneBefore)).To(BeEmpty())
	g.Expect(since(restShard.paths.objects(ns, "dlcjobsnapshots"), restBefore)).To(BeEmpty())

	// wide stops matching beta's jobs: after two complete listings shard one releases its claim
	// on them and leaves beta's, which the rest then finds current (no write).
	setQuery(g, ns, "wide", func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.DisplayName = "dlcsharda" })
	waitSynced(t, ns, "wide", 10)
	expectClaims(g, ns, bIDs, "beta", "wide") // the first listing without them only marks them
	syncNow(t, ns, "wide", 10)
	expectClaims(g, ns, bIDs, "beta")
	restBefore = restShard.paths.objects(ns, "dlcjobsnapshots")
	syncNow(t, ns, "beta", 10)
	g.Expect(since(restShard.paths.objects(ns, "dlcjobsnapshots"), restBefore)).To(BeEmpty())
	expectRight(g, ns, append(aIDs, bIDs...))

	// alpha loses its label: it moves to the rest, and shard one no longer writes it.
	oneAlpha := one.paths.objects(ns, "jobqueries")["alpha"]
	restAlpha := restShard.paths.objects(ns, "jobqueries")["alpha"]
	setQuery(g, ns, "alpha", func(q *dlcv1alpha1.JobQuery) {
		q.Labels = nil
		q.Annotations = map[string]string{dlcv1alpha1.AnnotationRequestedAt: "moved"}
	})
	waitSynced(t, ns, "alpha", 10)
	syncNow(t, ns, "alpha", 10)
	syncNow(t, ns, "wide", 10)
	g.Expect(restShard.paths.objects(ns, "jobqueries")["alpha"]).To(BeNumerically(">", restAlpha), "the rest did not take alpha over")
	g.Expect(one.paths.objects(ns, "jobqueries")["alpha"]).To(Equal(oneAlpha), "shard one still wrote alpha")
	expectClaims(g, ns, aIDs, "alpha", "wide")
	expectRight(g, ns, append(aIDs, bIDs...))
}

// Each shard elects its own leader: the lease name carries a digest of the shard (its watched
// namespaces and the selector's canonical form), so equal shards share a lease and different
// ones do not; a manager that watches everything keeps the base name.
func TestEachShardHasItsOwnLease(t *testing.T) {
	g := NewWithT(t)
	id := func(namespaces []string, selector string) string {
		out, err := controllers.LeaderElectionID("dlcsync.dlcsync.io", namespaces, selector)
		g.Expect(err).NotTo(HaveOccurred())
		return out
	}
	g.Expect(id(nil, "")).To(Equal("dlcsync.dlcsync.io"))
	g.Expect(id(nil, shardKey+"=one")).To(HavePrefix("dlcsync.dlcsync.io-"))
	g.Expect(id(nil, shardKey+"=one")).To(Equal(id(nil, shardKey+" = one")))
	g.Expect(id(nil, shardKey+"=one")).NotTo(Equal(id(nil, shardKey+"=two")))
	g.Expect(id(nil, shardKey+"=one")).NotTo(Equal(id(nil, "!"+shardKey)))
	// Two releases sharded by namespace, their leases in one namespace (issue 23, finding 6).
	g.Expect(id([]string{"team-a"}, "")).To(HavePrefix("dlcsync.dlcsync.io-"))
	g.Expect(id([]string{"team-a"}, "")).NotTo(Equal(id([]string{"team-b"}, "")))
	g.Expect(id([]string{"team-a", "team-b"}, "")).To(Equal(id([]string{"team-b", "team-a", "team-b"}, "")))
	g.Expect(id([]string{"team-a"}, shardKey+"=one")).NotTo(Equal(id(nil, shardKey+"=one")))
	g.Expect(id([]string{"team-a"}, shardKey+"=one")).NotTo(Equal(id([]string{"team-a"}, "")))
	_, err := controllers.LeaderElectionID("dlcsync.dlcsync.io", nil, shardKey+" in (one")
	g.Expect(err).To(MatchError(ContainSubstring(`"` + shardKey + ` in (one"`)))
}

// An Orphan+Retain query in one shard and a Delete query in the other share snapshots. Each
// manager only sees its own shard's queries, yet neither may drop the other's claim: quiet syncs
// write nothing, the shared snapshots keep the Orphan form (no owner reference the garbage
// collector could act on), and when the Delete query stops matching, its prune releases its claim
// instead of deleting snapshots the Orphan query keeps.
func TestShardsKeepEachOthersOrphanClaims(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcorphanshard", 5)
	one := startManagerWith(t, "one", managerOptions{watchLabelSelector: shardKey + "=one"})
	restShard := startManagerWith(t, "rest", managerOptions{watchLabelSelector: "!" + shardKey})

	keep := newQuery(ns, "keep", "dlcorphanshard")
	keep.Labels = map[string]string{shardKey: "one"}
	keep.Spec.Snapshot.DeletionPolicy = dlcv1alpha1.DeletionPolicyOrphan
	keep.Spec.Snapshot.PrunePolicy = dlcv1alpha1.PrunePolicyRetain
	g.Expect(k8s.Create(context.Background(), keep)).To(Succeed())
	t.Cleanup(func() {
		_ = k8s.DeleteAllOf(context.Background(), &dlcv1alpha1.JobQuery{}, client.InNamespace(ns))
	})
	waitSynced(t, ns, "keep", 5)
	g.Expect(k8s.Create(context.Background(), newQuery(ns, "beta", "dlcorphanshard"))).To(Succeed())
	waitSynced(t, ns, "beta", 5)

	heldBy := func(g Gomega) map[string]types.UID {
		uids := map[string]types.UID{}
		for id, s := range snapshotsOf(g, ns) {
			g.Expect(queryOwnerNames(s)).To(BeEmpty(), "%s has a JobQuery owner reference, though keep is Orphan", id)
			g.Expect(holderNames(s)).To(ConsistOf("keep", "beta"), "holders of %s", id)
			uids[id] = s.UID
		}
		g.Expect(uids).To(HaveLen(len(ids)))
		return uids
	}
	var uids map[string]types.UID
	NewWithT(t).Eventually(func(g Gomega) { uids = heldBy(g) }).WithTimeout(30 * time.Second).Should(Succeed())

	// Quiet syncs of both, in turn: nobody rewrites a shared snapshot.
	oneBefore, restBefore := one.paths.objects(ns, "dlcjobsnapshots"), restShard.paths.objects(ns, "dlcjobsnapshots")
	for range 2 {
		syncNow(t, ns, "beta", 5)
		syncNow(t, ns, "keep", 5)
	}
	g.Expect(since(one.paths.objects(ns, "dlcjobsnapshots"), oneBefore)).To(BeEmpty(), "shard one rewrote shared snapshots")
	g.Expect(since(restShard.paths.objects(ns, "dlcjobsnapshots"), restBefore)).To(BeEmpty(), "the rest rewrote shared snapshots")
	g.Expect(heldBy(g)).To(Equal(uids))

	// beta stops matching: two complete listings later it has released its claim, and every
	// snapshot is still the one keep holds.
	setQuery(g, ns, "beta", func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.DisplayName = "dlcnothingmatches" })
	waitSynced(t, ns, "beta", 0)
	syncNow(t, ns, "beta", 0)
	snaps := snapshotsOf(g, ns)
	g.Expect(snaps).To(HaveLen(len(ids)), "beta's prune deleted snapshots keep holds")
	for id, s := range snaps {
		g.Expect(s.UID).To(Equal(uids[id]), "the snapshot of %s was deleted and recreated", id)
		g.Expect(holderNames(s)).To(ConsistOf("keep"), "holders of %s", id)
		g.Expect(s.Status.MatchedBy).To(Equal([]string{"keep"}), "matchedBy of %s", id)
	}
}

func queryOwnerNames(s dlcv1alpha1.DLCJobSnapshot) []string {
	var names []string
	for _, ref := range s.OwnerReferences {
		if ref.Kind == "JobQuery" {
			names = append(names, ref.Name)
		}
	}
	return names
}

// holderNames reads the holders annotation (name/uid pairs) as query names.
func holderNames(s dlcv1alpha1.DLCJobSnapshot) []string {
	var names []string
	for _, pair := range strings.Split(s.Annotations[dlcv1alpha1.AnnotationHolders], ",") {
		if name, _, ok := strings.Cut(pair, "/"); ok {
			names = append(names, name)
		}
	}
	return names
}
