package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// TestGarbageCollection runs the real garbage collector (kube-controller-manager) beside envtest
// and watches snapshots disappear or stay when JobQueries are deleted the ways kubectl deletes:
// background (the default) and foreground (--cascade=foreground). One collector serves every
// subtest; they run in parallel, each in its own namespace with its own jobs.
func TestGarbageCollection(t *testing.T) {
	started := time.Now()
	testenv.StartGarbageCollector(t, testManager.GetConfig())
	t.Logf("garbage collector collecting after %s", time.Since(started).Round(100*time.Millisecond))

	for _, tc := range []struct {
		policy      string
		propagation metav1.DeletionPropagation
	}{
		{dlcv1alpha1.DeletionPolicyDelete, metav1.DeletePropagationBackground},
		{dlcv1alpha1.DeletionPolicyDelete, metav1.DeletePropagationForeground},
		{dlcv1alpha1.DeletionPolicyOrphan, metav1.DeletePropagationBackground},
		{dlcv1alpha1.DeletionPolicyOrphan, metav1.DeletePropagationForeground},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.policy, tc.propagation), func(t *testing.T) {
			t.Parallel()
			deletionPolicyUnderPropagation(t, tc.policy, tc.propagation)
		})
	}
	t.Run("a shared snapshot survives the deletion of one query", func(t *testing.T) {
		t.Parallel()
		sharedSnapshotSurvives(t)
	})
	t.Run("a policy switch converts every claim", func(t *testing.T) {
		t.Parallel()
		policySwitchConvertsClaims(t)
	})
	for _, to := range []string{dlcv1alpha1.DeletionPolicyOrphan, dlcv1alpha1.DeletionPolicyDelete} {
		t.Run("a deletion right after a switch to "+to+" follows "+to, func(t *testing.T) {
			t.Parallel()
			deletionRightAfterASwitch(t, to)
		})
	}
}

// deletionRightAfterASwitch: a query whose deletionPolicy is switched and which is deleted at
// once, before the manager has converted its claims, gets the policy it was deleted with.
func deletionRightAfterASwitch(t *testing.T, to string) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "gcdelafter" + strings.ToLower(to)
	addJobs(prefix, 2, "TFJob")
	q := query(ns, "switched")
	q.Spec.Filter.DisplayName = prefix
	q.Spec.Snapshot.DeletionPolicy = dlcv1alpha1.DeletionPolicyDelete
	if to == dlcv1alpha1.DeletionPolicyDelete {
		q.Spec.Snapshot.DeletionPolicy = dlcv1alpha1.DeletionPolicyOrphan
	}
	q = createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(HaveLen(2)) }).WithTimeout(10 * time.Second).Should(Succeed())
	witness := ownedWitness(t, ns, "switched")

	// The switch and the deletion back to back, in the foreground: the manager sees the
	// switch at the earliest with the deletion.
	patch := client.MergeFrom(q.DeepCopy())
	q.Spec.Snapshot.DeletionPolicy = to
	g.Expect(k8s.Patch(testCtx, q, patch)).To(Succeed())
	g.Expect(k8s.Delete(testCtx, q, client.PropagationPolicy(metav1.DeletePropagationForeground))).To(Succeed())
	waitGone(t, &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "switched"}})
	waitGone(t, witness)
	if to == dlcv1alpha1.DeletionPolicyDelete {
		g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(BeEmpty()) }).WithTimeout(20 * time.Second).Should(Succeed())
		return
	}
	g.Consistently(func(g Gomega) {
		snaps := snapshots(g, ns)
		g.Expect(snaps).To(HaveLen(2))
		for _, s := range snaps {
			g.Expect(s.OwnerReferences).To(BeEmpty(), s.Name)
			g.Expect(s.Annotations).NotTo(HaveKey(holdersAnnotation), s.Name)
		}
	}).WithTimeout(2 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
}

// deletionPolicyUnderPropagation: Delete removes the query's snapshots, Orphan keeps them whole
// and released, whatever the propagation of the query's deletion.
func deletionPolicyUnderPropagation(t *testing.T, policy string, propagation metav1.DeletionPropagation) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := strings.ToLower(fmt.Sprintf("gc%s%s", policy, propagation))
	ids := addJobs(prefix, 3, "TFJob")
	q := query(ns, "q")
	q.Spec.Filter.DisplayName = prefix
	q.Spec.Snapshot.DeletionPolicy = policy
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveLen(len(ids)))
	witness := ownedWitness(t, ns, "q")

	deleteQuery(t, ns, "q", propagation)
	// The witness is collected once the collector has handled the query's dependents.
	waitGone(t, witness)
	if policy == dlcv1alpha1.DeletionPolicyDelete {
		g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(BeEmpty()) }).
			WithTimeout(20 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		return
	}
	g.Consistently(func(g Gomega) {
		snaps := snapshots(g, ns)
		g.Expect(snaps).To(HaveLen(len(ids)))
		for _, id := range ids {
			s := snaps[id]
			g.Expect(s.OwnerReferences).To(BeEmpty(), id)
			g.Expect(s.Annotations).NotTo(HaveKey(holdersAnnotation), id)
			g.Expect(s.Status.MatchedBy).To(BeEmpty(), id)
			g.Expect(s.Status.Matching).To(BeFalse(), id)
			g.Expect(s.Status.Job).NotTo(BeNil(), id)
			g.Expect(s.Status.Job.JobID).To(Equal(id))
		}
	}).WithTimeout(3 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
}

// sharedSnapshotSurvives: snapshots matched by several queries stay when one goes, whatever the
// policies and the propagation, and go with the last query under Delete: every release is
// complete.
func sharedSnapshotSurvives(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("gcshared", 3, "TFJob")
	create := func(name, policy string) *dlcv1alpha1.JobQuery {
		q := query(ns, name)
		q.Spec.Filter.DisplayName = "gcshared"
		q.Spec.Snapshot.DeletionPolicy = policy
		g.Expect(k8s.Create(testCtx, q)).To(Succeed())
		return waitReady(t, ns, name, dlcv1alpha1.ReasonSynced)
	}
	expect := func(owners []types.UID, holders string, matchedBy ...string) {
		t.Helper()
		g.Eventually(func(g Gomega) {
			snaps := snapshots(g, ns)
			g.Expect(snaps).To(HaveLen(len(ids)))
			for _, s := range snaps {
				uids := []types.UID{}
				for _, o := range s.OwnerReferences {
					uids = append(uids, o.UID)
				}
				g.Expect(uids).To(Equal(owners), s.Name)
				g.Expect(s.Annotations[holdersAnnotation]).To(Equal(holders), s.Name)
				g.Expect(s.Status.MatchedBy).To(Equal(matchedBy), s.Name)
				g.Expect(s.Status.Matching).To(BeTrue(), s.Name)
			}
		}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	}
	// A Delete and an Orphan query: no owner reference at all, both are holders.
	del := create("delete", dlcv1alpha1.DeletionPolicyDelete)
	orphan := create("orphan", dlcv1alpha1.DeletionPolicyOrphan)
	expect([]types.UID{}, fmt.Sprintf("delete/%s,orphan/%s", del.UID, orphan.UID), "delete", "orphan")

	// The Delete query goes in the foreground: the Orphan query still matches, the snapshots stay;
	// its next sync drops the gone holder.
	witness := ownedWitness(t, ns, "delete")
	deleteQuery(t, ns, "delete", metav1.DeletePropagationForeground)
	waitGone(t, witness)
	resync(t, ns, "orphan", dlcv1alpha1.ReasonSynced)
	expect([]types.UID{}, "orphan/"+string(orphan.UID), "orphan")

	// Two Delete queries join; the Orphan query goes in the foreground and releases the
	// snapshots: the Delete queries become their owners again.
	second, third := create("second", dlcv1alpha1.DeletionPolicyDelete), create("third", dlcv1alpha1.DeletionPolicyDelete)
	deleteQuery(t, ns, "orphan", metav1.DeletePropagationForeground)
	expect([]types.UID{second.UID, third.UID}, "", "second", "third")

	// Of two Delete queries, the first one's deletion leaves the snapshots to the second: the
	// collector drops the dangling owner reference, the second query's next sync its name.
	witness = ownedWitness(t, ns, "second")
	deleteQuery(t, ns, "second", metav1.DeletePropagationBackground)
	waitGone(t, witness)
	resync(t, ns, "third", dlcv1alpha1.ReasonSynced)
	expect([]types.UID{third.UID}, "", "third")

	// The last query goes in the foreground: nothing holds the snapshots any more.
	deleteQuery(t, ns, "third", metav1.DeletePropagationForeground)
	g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(BeEmpty()) }).WithTimeout(20 * time.Second).Should(Succeed())
}

// policySwitchConvertsClaims: switching deletionPolicy converts the query's claim on every
// snapshot, a retained one of a job it no longer lists included, before its next sync.
func policySwitchConvertsClaims(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("gcswitch", 3, "TFJob")
	q := queryFor(ns, "switch", "gcswitch")
	q.Spec.Snapshot.PrunePolicy = dlcv1alpha1.PrunePolicyRetain
	q = createReady(t, q, dlcv1alpha1.ReasonSynced)
	// Job 0 leaves the API; two listings later its snapshot is retained, no longer matching.
	sim.Delete(ids[0])
	resync(t, ns, "switch", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "switch", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)[ids[0]].Status.Matching).To(BeFalse())

	setPolicy := func(policy string) *dlcv1alpha1.JobQuery {
		current := getQuery(g, ns, "switch")
		patch := client.MergeFrom(current.DeepCopy())
		current.Spec.Snapshot.DeletionPolicy = policy
		g.Expect(k8s.Patch(testCtx, current, patch)).To(Succeed())
		return waitReady(t, ns, "switch", dlcv1alpha1.ReasonSynced)
	}
	expectClaims := func(orphan bool) {
		snaps := snapshots(g, ns)
		g.Expect(snaps).To(HaveLen(len(ids)))
		for _, s := range snaps {
			if orphan {
				g.Expect(s.OwnerReferences).To(BeEmpty(), s.Name)
				g.Expect(s.Annotations).To(HaveKeyWithValue(holdersAnnotation, "switch/"+string(q.UID)), s.Name)
			} else {
				g.Expect(s.OwnerReferences).To(ConsistOf(HaveField("UID", q.UID)), s.Name)
				g.Expect(s.Annotations).NotTo(HaveKey(holdersAnnotation), s.Name)
			}
		}
	}
	g.Expect(setPolicy(dlcv1alpha1.DeletionPolicyOrphan).Finalizers).To(ContainElement(snapshotsFinalizer))
	expectClaims(true)
	g.Expect(setPolicy(dlcv1alpha1.DeletionPolicyDelete).Finalizers).To(ContainElement(snapshotsFinalizer))
	expectClaims(false)
	setPolicy(dlcv1alpha1.DeletionPolicyOrphan)
	expectClaims(true)

	witness := ownedWitness(t, ns, "switch")
	deleteQuery(t, ns, "switch", metav1.DeletePropagationForeground)
	waitGone(t, witness)
	g.Consistently(func(g Gomega) {
		snaps := snapshots(g, ns)
		g.Expect(snaps).To(HaveLen(len(ids)))
		for _, s := range snaps {
			g.Expect(s.OwnerReferences).To(BeEmpty(), s.Name)
			g.Expect(s.Annotations).NotTo(HaveKey(holdersAnnotation), s.Name)
		}
	}).WithTimeout(2 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
}

// ownedWitness creates a ConfigMap owned by the query: the collector deletes it when it handles
// the query's deletion, which tells a test that the collector has acted.
func ownedWitness(t *testing.T, namespace, queryName string) *corev1.ConfigMap {
	t.Helper()
	g := NewWithT(t)
	q := getQuery(g, namespace, queryName)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "witness-" + queryName,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: q.Name, UID: q.UID}}}}
	g.Expect(k8s.Create(testCtx, cm)).To(Succeed())
	return cm
}

// deleteQuery deletes a JobQuery with the given propagation, as kubectl delete --cascade does,
// and waits until it is gone.
func deleteQuery(t *testing.T, namespace, name string, propagation metav1.DeletionPropagation) {
	t.Helper()
	g := NewWithT(t)
	g.Expect(k8s.Delete(testCtx, getQuery(g, namespace, name), client.PropagationPolicy(propagation))).To(Succeed())
	waitGone(t, &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}})
}

func waitGone(t *testing.T, obj client.Object) {
	t.Helper()
	NewWithT(t).Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(testCtx, client.ObjectKeyFromObject(obj), obj))
	}).WithTimeout(20*time.Second).WithPolling(100*time.Millisecond).Should(BeTrue(), "%T %s is not gone", obj, client.ObjectKeyFromObject(obj))
}

// TestClaimsTakeTheFormOfTheDeletionPolicy: a snapshot that an Orphan query claims has no
// JobQuery owner reference, every claim is a holder; one that only Delete queries claim has an
// owner reference each. Claims keep their place (a current snapshot compares equal), holders of
// gone queries are dropped, and the owner index covers both forms.
func TestClaimsTakeTheFormOfTheDeletionPolicy(t *testing.T) {
	ref := func(name string) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: name, UID: types.UID("uid-" + name)}
	}
	jq := func(name, policy string) *dlcv1alpha1.JobQuery {
		q := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)}}
		q.Spec.Snapshot.DeletionPolicy = policy
		return q
	}
	queries := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(
		jq("a", dlcv1alpha1.DeletionPolicyDelete), jq("b", dlcv1alpha1.DeletionPolicyOrphan), jq("d", dlcv1alpha1.DeletionPolicyDelete)).Build()
	r := &JobQueryReconciler{Client: queries, APIReader: queries}
	snap := func(owners []metav1.OwnerReference, holders string) *dlcv1alpha1.DLCJobSnapshot {
		s := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", OwnerReferences: owners}}
		if holders != "" {
			s.Annotations = map[string]string{holdersAnnotation: holders}
		}
		return s
	}
	refs := func(names ...string) []metav1.OwnerReference {
		out := []metav1.OwnerReference{}
		for _, n := range names {
			out = append(out, ref(n))
		}
		return out
	}
	user := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "mine", UID: "uid-cm"}
	const leaves = false
	for _, tc := range []struct {
		name                    string
		query                   *dlcv1alpha1.JobQuery
		withQ                   bool
		existing                *dlcv1alpha1.DLCJobSnapshot
		wantOwners, wantHolders []metav1.OwnerReference
		current                 bool
	}{
		{"new under Delete", jq("q", dlcv1alpha1.DeletionPolicyDelete), true, nil, refs("q"), refs(), false},
		{"new under Orphan", jq("q", dlcv1alpha1.DeletionPolicyOrphan), true, nil, refs(), refs("q"), false},
		{"an Orphan query turns every claim into a holder", jq("q", dlcv1alpha1.DeletionPolicyOrphan), true,
			snap([]metav1.OwnerReference{ref("a"), user}, ""), refs(), refs("a", "q"), false},
		{"a Delete query beside an Orphan one is a holder", jq("q", dlcv1alpha1.DeletionPolicyDelete), true,
			snap(nil, "q/uid-q,b/uid-b"), refs(), refs("q", "b"), true},
		{"Delete queries alone are owners", jq("q", dlcv1alpha1.DeletionPolicyDelete), true,
			snap(nil, "d/uid-d,q/uid-q"), refs("d", "q"), refs(), false},
		{"the Orphan query leaving gives the Delete ones their owner references back", jq("b", dlcv1alpha1.DeletionPolicyOrphan), leaves,
			snap(nil, "b/uid-b,d/uid-d"), refs("d"), refs(), false},
		{"a holder whose query is gone is dropped", jq("q", dlcv1alpha1.DeletionPolicyOrphan), true,
			snap(nil, "g/uid-g,q/uid-q,a/uid-old"), refs(), refs("q"), false},
		{"a current owner keeps its place", jq("q", dlcv1alpha1.DeletionPolicyDelete), true,
			snap(refs("q", "a"), ""), refs("q", "a"), refs(), true},
		{"a current holder keeps its place", jq("q", dlcv1alpha1.DeletionPolicyOrphan), true,
			snap(nil, "q/uid-q,b/uid-b"), refs(), refs("q", "b"), true},
		{"a malformed holder is ignored", jq("q", dlcv1alpha1.DeletionPolicyOrphan), true,
			snap(nil, "q/uid-q, nonsense,/x,y/"), refs(), refs("q"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			owners, holders := r.newClaimJudge().claimsOf(context.Background(), tc.existing, tc.query, tc.withQ)
			g.Expect(append([]metav1.OwnerReference{}, owners...)).To(Equal(tc.wantOwners))
			g.Expect(append([]metav1.OwnerReference{}, holders...)).To(Equal(tc.wantHolders))
			if tc.existing != nil {
				g.Expect(claimsCurrent(tc.existing, owners, holders)).To(Equal(tc.current))
			}
			// What a write stores reads back the same, and the index finds every claimant.
			written := snap(owners, formatHolders(holders))
			g.Expect(claimsCurrent(written, owners, holders)).To(BeTrue())
			g.Expect(ownerUIDsOf(written)).To(HaveLen(len(owners) + len(holders)))
			if tc.withQ {
				g.Expect(ownerUIDsOf(written)).To(ContainElement(string(tc.query.UID)))
			}
		})
	}
}

// countingReader counts the reads it serves.
type countingReader struct {
	client.Reader
	gets int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets++
	return c.Reader.Get(ctx, key, obj, opts...)
}

// A holder the cache does not hold (another shard's query under --watch-label-selector) is read
// from the apiserver before it is judged: an Orphan one keeps every claim in the holder form, and
// it is read once per operation, however many snapshots it holds.
func TestAHolderTheCacheCannotSeeIsReadOnce(t *testing.T) {
	g := NewWithT(t)
	other := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "other", UID: "uid-other"}}
	other.Spec.Snapshot.DeletionPolicy = dlcv1alpha1.DeletionPolicyOrphan
	apiserver := &countingReader{Reader: fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(other).Build()}
	shardCache := fake.NewClientBuilder().WithScheme(testenv.Scheme()).Build()
	r := &JobQueryReconciler{Client: shardCache, APIReader: apiserver}
	q := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "q", UID: "uid-q"}}
	q.Spec.Snapshot.DeletionPolicy = dlcv1alpha1.DeletionPolicyDelete

	judge := r.newClaimJudge()
	for i := range 3 {
		s := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprint("s", i),
			Annotations: map[string]string{holdersAnnotation: "other/uid-other,q/uid-q"}}}
		owners, holders := judge.claimsOf(context.Background(), s, q, true)
		g.Expect(owners).To(BeEmpty(), "an Orphan claim of another shard turned into owner references")
		g.Expect(formatHolders(holders)).To(Equal("other/uid-other,q/uid-q"))
		g.Expect(claimsCurrent(s, owners, holders)).To(BeTrue())
		// Released by q, the snapshot stays held by the other shard's query.
		owners, holders = judge.claimsOf(context.Background(), s, q, false)
		g.Expect(owners).To(BeEmpty())
		g.Expect(formatHolders(holders)).To(Equal("other/uid-other"))
	}
	g.Expect(apiserver.gets).To(Equal(1))
}

// A claim of a deleted query is dropped by the next sync of another query that shares the
// snapshot, with its name in matchedBy, whether or not the garbage collector has removed its owner
// reference yet (here it never does: no collector runs). The sync once kept an owner reference as
// it was, and matchedBy named the deleted query until a sync after the collector's pass.
func TestAClaimOfADeletedQueryIsDroppedWithoutTheGarbageCollector(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcghost", 2, "TFJob")
	q := queryFor(ns, "survivor", "dlcghost")
	q = createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(HaveLen(2)) }).WithTimeout(10 * time.Second).Should(Succeed())

	// As a deleted Delete query leaves them until the collector comes by.
	ghost := metav1.OwnerReference{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: "deleted",
		UID: types.UID("4b1b4e3e-0000-4000-8000-000000000001")}
	for _, id := range ids {
		s := snapshotOf(g, ns, id)
		s.OwnerReferences = append(s.OwnerReferences, ghost)
		s.Status.MatchedBy = []string{"deleted", q.Name}
		g.Expect(k8s.Update(testCtx, s)).To(Succeed())
	}
	resync(t, ns, q.Name, dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) {
		for _, id := range ids {
			s := snapshotOf(g, ns, id)
			g.Expect(s.Status.MatchedBy).To(Equal([]string{q.Name}), id)
			g.Expect(s.OwnerReferences).To(HaveLen(1), id)
			g.Expect(s.OwnerReferences[0].UID).To(Equal(q.UID), id)
		}
	}).WithTimeout(10 * time.Second).Should(Succeed())
}
