package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// kindJobQuery is the kind of the JobQuery owner references and holders.
const kindJobQuery = "JobQuery"

// holdersAnnotation lists, as comma-separated name/uid pairs, the JobQueries that claim a
// snapshot without an owner reference. A snapshot that a query with deletionPolicy Orphan
// claims carries no JobQuery owner reference at all, every claim is listed here instead; one that
// only Delete queries claim has an owner reference per query, so that garbage collection removes
// it with the last of them. No garbage collection can then delete what an Orphan query keeps: a
// foreground deletion (kubectl delete --cascade=foreground) deletes every dependent whose only
// live owner is the query, racing the finalizer that would release it, and the deletion of a
// Delete query would take a snapshot that an Orphan query still matches.
const holdersAnnotation = dlcv1alpha1.AnnotationHolders

// holdersOf reads holdersAnnotation as JobQuery references; an entry that is not name/uid is
// ignored (a hand edit; it then holds nothing).
func holdersOf(obj client.Object) []metav1.OwnerReference {
	value := obj.GetAnnotations()[holdersAnnotation]
	if value == "" {
		return nil
	}
	var out []metav1.OwnerReference
	for _, pair := range strings.Split(value, ",") {
		name, uid, ok := strings.Cut(strings.TrimSpace(pair), "/")
		if ok && name != "" && uid != "" {
			out = append(out, metav1.OwnerReference{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: kindJobQuery,
				Name: name, UID: types.UID(uid)})
		}
	}
	return out
}

// formatHolders is the holdersAnnotation value of a list of JobQuery references ("" for none).
func formatHolders(refs []metav1.OwnerReference) string {
	pairs := make([]string, len(refs))
	for i, r := range refs {
		pairs[i] = r.Name + "/" + string(r.UID)
	}
	return strings.Join(pairs, ",")
}

// claimJudge decides, for the snapshots of one operation (a sync, a claim conversion, a release
// of every snapshot), which holders still claim a snapshot and under which deletionPolicy. A
// holder's query is read from the cache and, when the cache does not hold it, from the
// apiserver, once per holder per operation. A manager sharded by --watch-label-selector
// caches only its own shard's queries, so a cache miss does not mean the query is gone: judged
// through the cache alone, another shard's Orphan claim was dropped, the shared snapshot took the
// owner-reference form, and a prune or the garbage collector deleted what the Orphan query keeps.
// One uncached read per holder and operation costs a request per other shard's query that shares
// snapshots, not per snapshot.
type claimJudge struct {
	r    *JobQueryReconciler
	mu   sync.Mutex
	seen map[types.UID]holderState
}

// holderState is what a claimJudge found of a holder's query.
type holderState struct{ gone, orphan bool }

func (r *JobQueryReconciler) newClaimJudge() *claimJudge {
	return &claimJudge{r: r, seen: map[types.UID]holderState{}}
}

// claimsOf returns the JobQuery owner references and holders a snapshot should carry: its
// claims, without q's unless withQ, less holders whose query is gone, all as owner references
// when no claimant has deletionPolicy Orphan and all as holders otherwise. Claims keep their
// order, so an unchanged snapshot compares equal and is not rewritten.
func (j *claimJudge) claimsOf(ctx context.Context, s *dlcv1alpha1.DLCJobSnapshot, q *dlcv1alpha1.JobQuery,
	withQ bool) (owners, holders []metav1.OwnerReference) {
	orphan := withQ && q.Spec.Snapshot.DeletionPolicy == dlcv1alpha1.DeletionPolicyOrphan
	var claims []metav1.OwnerReference
	var refs, held []metav1.OwnerReference
	if s != nil {
		refs, held = queryOwners(s.OwnerReferences), holdersOf(s)
	}
	// An owner reference is a Delete claim; a holder may be of either policy, so its
	// query's policy is read. Either claim of a query that is gone is dropped: the garbage
	// collector removes a deleted owner's reference too, but maybe only after this sync, whose
	// matchedBy would then name the deleted query until the next one.
	for i, c := range append(refs, held...) {
		switch {
		case c.UID == q.UID:
			if !withQ || slices.ContainsFunc(claims, func(o metav1.OwnerReference) bool { return o.UID == q.UID }) {
				continue
			}
		case i < len(refs):
			if j.holder(ctx, s.Namespace, c).gone {
				continue
			}
		default:
			holder := j.holder(ctx, s.Namespace, c)
			if holder.gone {
				continue
			}
			orphan = orphan || holder.orphan
		}
		claims = append(claims, c)
	}
	if withQ && !slices.ContainsFunc(claims, func(o metav1.OwnerReference) bool { return o.UID == q.UID }) {
		claims = append(claims, queryRef(q))
	}
	if orphan {
		return nil, claims
	}
	return claims, nil
}

// holder reads the query of a holder: gone when it no longer exists, and whether its
// deletionPolicy is Orphan. A query that cannot be read counts as Orphan, the choice that
// never lets garbage collection take a snapshot it may keep; such an answer is not remembered.
func (j *claimJudge) holder(ctx context.Context, namespace string, ref metav1.OwnerReference) holderState {
	j.mu.Lock()
	known, ok := j.seen[ref.UID]
	j.mu.Unlock()
	if ok {
		return known
	}
	key := types.NamespacedName{Namespace: namespace, Name: ref.Name}
	var hq dlcv1alpha1.JobQuery
	err := j.r.Get(ctx, key, &hq)
	if apierrors.IsNotFound(err) {
		err = j.r.APIReader.Get(ctx, key, &hq)
	}
	var state holderState
	switch {
	case apierrors.IsNotFound(err), err == nil && hq.UID != ref.UID:
		state.gone = true
	case err != nil:
		return holderState{orphan: true}
	default:
		state.orphan = hq.Spec.Snapshot.DeletionPolicy == dlcv1alpha1.DeletionPolicyOrphan
	}
	j.mu.Lock()
	j.seen[ref.UID] = state
	j.mu.Unlock()
	return state
}

// claimsCurrent reports whether a snapshot's JobQuery owners and holders are the given ones.
func claimsCurrent(s *dlcv1alpha1.DLCJobSnapshot, owners, holders []metav1.OwnerReference) bool {
	return ownersEqual(s.OwnerReferences, owners) && ownersEqual(holdersOf(s), holders)
}

func isQueryRef(ref metav1.OwnerReference) bool {
	return ref.Kind == kindJobQuery && ref.APIVersion == dlcv1alpha1.GroupVersion.String()
}

func queryRef(q *dlcv1alpha1.JobQuery) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: kindJobQuery, Name: q.Name, UID: q.UID}
}

// onlyClaimedBy reports whether q is the snapshot's one claimant: then a change of q's endpoint
// moves the snapshot with it instead of leaving it behind as foreign.
func onlyClaimedBy(s *dlcv1alpha1.DLCJobSnapshot, q *dlcv1alpha1.JobQuery) bool {
	claims := append(queryOwners(s.OwnerReferences), holdersOf(s)...)
	if len(claims) == 0 {
		return false
	}
	for _, c := range claims {
		if c.UID != q.UID {
			return false
		}
	}
	// The live matches, not status.matchedBy: a deleted query's name stays there until a
	// write of the remaining claimant, which would never come if this refused it.
	return !slices.ContainsFunc(aliveMatches(s), func(name string) bool { return name != q.Name })
}

// release removes the query from a snapshot's owners, holders and matchedBy, in one patch.
func (r *JobQueryReconciler) release(ctx context.Context, judge *claimJudge, q *dlcv1alpha1.JobQuery,
	s *dlcv1alpha1.DLCJobSnapshot) error {
	owners, holders := judge.claimsOf(ctx, s, q, false)
	p := newSnapshotPatch(s)
	if err := r.patchClaims(ctx, p, owners, holders); err != nil {
		return err
	}
	p.matches(claimedMatches(s.Status.MatchedBy, owners, holders))
	if p.empty() {
		return nil
	}
	return r.sendPatch(ctx, p)
}

// forgetClaims drops what this process knows of a query's claims.
func (r *JobQueryReconciler) forgetClaims(q *dlcv1alpha1.JobQuery) {
	r.claimsChecked.Delete(client.ObjectKeyFromObject(q))
}

// reconcileClaims converts the query's claim on every snapshot it holds to the form of its
// deletionPolicy, the snapshots of jobs it no longer lists (retained, or waiting for a second
// listing) included, which no sync writes.
func (r *JobQueryReconciler) reconcileClaims(ctx context.Context, q *dlcv1alpha1.JobQuery) error {
	owned, err := r.ownedSnapshots(ctx, q)
	if err != nil {
		return err
	}
	judge := r.newClaimJudge()
	for _, s := range owned {
		owners, holders := judge.claimsOf(ctx, s, q, true)
		if claimsCurrent(s, owners, holders) {
			continue
		}
		p := newSnapshotPatch(s)
		err := r.patchClaims(ctx, p, owners, holders)
		if err == nil {
			err = r.sendPatch(ctx, p)
		}
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return fmt.Errorf("converting the claim of %s on snapshot %s to deletionPolicy %s: %w", klog.KObj(q), klog.KObj(s),
				q.Spec.Snapshot.DeletionPolicy, err)
		}
	}
	return nil
}

// releaseAll releases every snapshot of a query being deleted with deletionPolicy Orphan.
func (r *JobQueryReconciler) releaseAll(ctx context.Context, q *dlcv1alpha1.JobQuery) error {
	owned, err := r.ownedSnapshots(ctx, q)
	if err != nil {
		return err
	}
	judge := r.newClaimJudge()
	for _, s := range owned {
		if err := r.release(ctx, judge, q, s); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("releasing snapshot %s: %w", klog.KObj(s), err)
		}
	}
	return nil
}

// queryOwners are the JobQuery owner references, reduced to the fields we apply.
func queryOwners(refs []metav1.OwnerReference) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, 0, len(refs))
	for _, r := range refs {
		if isQueryRef(r) {
			out = append(out, metav1.OwnerReference{APIVersion: r.APIVersion, Kind: r.Kind, Name: r.Name, UID: r.UID})
		}
	}
	return out
}

func ownersEqual(have, want []metav1.OwnerReference) bool {
	h := queryOwners(have)
	if len(h) != len(want) {
		return false
	}
	for i := range h {
		if h[i].UID != want[i].UID || h[i].Name != want[i].Name {
			return false
		}
	}
	return true
}

// aliveMatches is matchedBy restricted to queries that still claim the snapshot (the garbage
// collector removes the owner references of deleted queries; an Orphan query releases itself).
func aliveMatches(s *dlcv1alpha1.DLCJobSnapshot) []string {
	return claimedMatches(s.Status.MatchedBy, queryOwners(s.OwnerReferences), holdersOf(s))
}

// claimedMatches is matchedBy restricted to the names of the given claims.
func claimedMatches(matchedBy []string, owners, holders []metav1.OwnerReference) []string {
	claimed := map[string]bool{}
	for _, r := range append(slices.Clone(owners), holders...) {
		claimed[r.Name] = true
	}
	out := make([]string, 0, len(matchedBy))
	for _, n := range matchedBy {
		if claimed[n] {
			out = append(out, n)
		}
	}
	return out
}

func withName(names []string, name string) []string {
	if slices.Contains(names, name) {
		return names
	}
	out := append(slices.Clone(names), name)
	slices.Sort(out)
	return out
}
