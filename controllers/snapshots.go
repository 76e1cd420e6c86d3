package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/endpoints"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// ownerIndexKey indexes snapshots by the UIDs of the JobQueries that claim them, by owner
// reference or as holders.
const ownerIndexKey = ".metadata.ownerReferences.jobQueryUID"

// holdersAnnotation lists, as comma-separated name/uid pairs, the JobQueries that claim a
// snapshot without an owner reference. Note: a snapshot that a query with deletionPolicy Orphan
// claims carries no JobQuery owner reference at all, every claim is listed here instead; one that
// only Delete queries claim has an owner reference per query, so that garbage collection removes
// it with the last of them. No garbage collection can then delete what an Orphan query keeps: a
// foreground deletion (kubectl delete --cascade=foreground) deletes every dependent whose only
// live owner is the query, racing the finalizer that would release it, and the deletion of a
// Delete query would take a snapshot that an Orphan query still matches.
const holdersAnnotation = dlcv1alpha1.AnnotationHolders

func ownerUIDsOf(obj client.Object) []string {
	var uids []string
	for _, ref := range append(queryOwners(obj.GetOwnerReferences()), holdersOf(obj)...) {
		uids = append(uids, string(ref.UID))
	}
	return uids
}

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
			out = append(out, metav1.OwnerReference{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery",
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
// apiserver, once per holder per operation. Note: a manager sharded by --watch-label-selector
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
	// Note: an owner reference is a Delete claim; a holder may be of either policy, so its
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
// deletionPolicy is Orphan. Note: a query that cannot be read counts as Orphan, the choice that
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
	return ref.Kind == "JobQuery" && ref.APIVersion == dlcv1alpha1.GroupVersion.String()
}

func queryRef(q *dlcv1alpha1.JobQuery) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: q.Name, UID: q.UID}
}

// writeCounts counts what a sync did to snapshots.
type writeCounts struct {
	created, updated, deleted, unchanged, conflicts int32
	// firstSeenEnded counts the snapshots created for jobs that had already ended;
	// firstSeenJobs are the first maxFirstSeenEvents of them, for their events.
	firstSeenEnded int32
	firstSeenJobs  []firstSeenJob
	// skipped are the jobs whose snapshot could not be written, as "jobID: why"; unmirrored
	// the snapshot names of those among them that have no snapshot of this query at all.
	skipped    []string
	unmirrored []string
}

// foreignSnapshotError: an object with a job's snapshot name holds another job.
type foreignSnapshotError struct{ msg string }

func (e *foreignSnapshotError) Error() string { return e.msg }

// jobProblem says whether a snapshot write failed because of the job's own data or name, which
// no retry fixes: the apiserver rejected the object (invalid, too large), the name is taken, or
// the job's packed data could not be restored (dlc.ErrUnpack).
// Such a job is skipped and reported; the other jobs of the sync go on.
func jobProblem(err error) bool {
	var foreign *foreignSnapshotError
	return errors.As(err, &foreign) || errors.Is(err, dlc.ErrUnpack) || apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err) ||
		apierrors.IsBadRequest(err) || strings.Contains(err.Error(), "request is too large")
}

// desiredSnapshot is what one snapshot should be.
type desiredSnapshot struct {
	name      string
	labels    map[string]string
	spec      dlcv1alpha1.DLCJobSnapshotSpec
	owners    []metav1.OwnerReference
	holders   []metav1.OwnerReference
	status    dlcv1alpha1.DLCJobSnapshotStatus
	hash      string
	matchedBy []string
	// endpoint is the query's spec.endpoint, recorded on creation as the snapshot's source;
	// moveEndpoint says the snapshot is moving to it (its one claimant's endpoint changed).
	endpoint     string
	moveEndpoint bool
}

// reconcileSnapshots writes the snapshot of every listed job that is missing or changed, and
// prunes the snapshots of jobs the query no longer lists: after a complete full listing, every
// owned snapshot not listed; after an incremental one, those of the jobs it found gone.
func (r *JobQueryReconciler) reconcileSnapshots(ctx context.Context, sc *syncScope) (writeCounts, error) {
	q, owned, listed := sc.query, sc.owned, sc.listed
	var counts writeCounts
	judge := r.newClaimJudge()
	jobs := listed.jobs
	kept := make(map[string]bool, len(jobs))
	// Note: jobs map to distinct objects, so their writes run in parallel (bounded), which makes
	// the first sync of a large query several times faster; counts are merged under a lock.
	group, groupCtx := errgroup.WithContext(ctx)
	group.SetLimit(snapshotWriters)
	var mu sync.Mutex
	for i := range jobs {
		job := &jobs[i]
		name := snapshot.Name(job.JobID)
		kept[name] = true
		existing := owned[name]
		group.Go(func() error {
			var local writeCounts
			whole, err := dlc.Unpack(job)
			if err == nil {
				err = r.syncSnapshot(groupCtx, judge, q, &whole, name, existing, &local)
			}
			// Note: after its write, a job is only counted (kept, knownAfter): its data goes,
			// so that a large first sync holds less and less of its listing as it writes.
			sc.memory.Forget(job)
			*job = dlc.JobItem{JobID: job.JobID, GmtCreateTime: job.GmtCreateTime, Status: job.Status}
			if err != nil && jobProblem(err) {
				local.skipped = append(local.skipped, job.JobID+": "+err.Error())
				if existing == nil {
					local.unmirrored = append(local.unmirrored, name)
				}
				err = nil
			}
			mu.Lock()
			counts.add(local)
			mu.Unlock()
			return err
		})
	}
	err := group.Wait()
	r.firstSeenEvents(q, &counts)
	if err != nil {
		// Note: the listing showed these jobs even though their writes failed: an absence noted
		// before is refuted all the same, or a later glitch would prune on two absences that
		// were not consecutive.
		for name := range kept {
			delete(sc.state.absent, name)
		}
		return counts, err
	}
	if key := fullKey(q); sc.state.absentKey != key {
		sc.state.absent, sc.state.absentKey = nil, key
	}
	absent := map[string]bool{}
	retain := q.Spec.Snapshot.PrunePolicy == dlcv1alpha1.PrunePolicyRetain
	for name, s := range owned {
		var missing bool
		switch {
		case kept[name]:
		case listed.mode == dlcv1alpha1.SyncModeIncremental:
			missing = listed.gone[name]
			if !missing && sc.state.absent[name] {
				// Not read by this listing: the earlier absence is neither confirmed nor refuted.
				absent[name] = true
			}
			if !missing && s.Status.Matching {
				counts.unchanged++
			}
		default:
			missing = listed.walk.Complete
		}
		// Note: a snapshot already retained (no longer matching, kept by prunePolicy Retain) is
		// not tracked: its absence would be noted on one listing and dropped on the next, and
		// status.incremental.pendingPrune would change (a status write) at every full listing.
		if !missing || (retain && !s.Status.Matching && len(s.Status.MatchedBy) == 0) {
			continue
		}
		if !sc.state.absent[name] {
			absent[name] = true
			continue
		}
		if err := r.pruneSnapshot(ctx, judge, q, s, &counts); err != nil {
			sc.state.absent = absent
			return counts, err
		}
	}
	sc.state.absent = absent
	return counts, nil
}

// snapshotWriters bounds the parallel snapshot writes of one sync.
const snapshotWriters = 8

func (c *writeCounts) add(o writeCounts) {
	c.created += o.created
	c.updated += o.updated
	c.deleted += o.deleted
	c.unchanged += o.unchanged
	c.conflicts += o.conflicts
	c.firstSeenEnded += o.firstSeenEnded
	c.firstSeenJobs = append(c.firstSeenJobs, o.firstSeenJobs[:min(len(o.firstSeenJobs), maxFirstSeenEvents-len(c.firstSeenJobs))]...)
	c.skipped = append(c.skipped, o.skipped...)
	c.unmirrored = append(c.unmirrored, o.unmirrored...)
}

// syncSnapshot finds the current snapshot of one listed job and brings it in step.
func (r *JobQueryReconciler) syncSnapshot(ctx context.Context, judge *claimJudge, q *dlcv1alpha1.JobQuery, job *dlc.JobItem, name string,
	existing *dlcv1alpha1.DLCJobSnapshot, counts *writeCounts) error {
	if existing == nil {
		// Another query may own it already, or it may be orphaned: read it from the cache.
		var other dlcv1alpha1.DLCJobSnapshot
		err := r.Get(ctx, types.NamespacedName{Namespace: q.Namespace, Name: name}, &other)
		switch {
		case err == nil:
			existing = &other
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("reading snapshot %s/%s: %w", q.Namespace, name, err)
		}
	}
	if existing != nil && existing.Spec.JobID != job.JobID {
		// Two IDs cannot share a name (the sanitised form carries a hash of the ID); a foreign
		// object with our name is left alone.
		return &foreignSnapshotError{fmt.Sprintf("snapshot %s/%s belongs to job %q", q.Namespace, name, existing.Spec.JobID)}
	}
	var moved bool
	if existing != nil {
		// Note: the first query to write a snapshot fixes its source; a query of another region
		// or endpoint that lists the same ID is not allowed to overwrite it.
		endpoint, recorded := existing.Annotations[dlcv1alpha1.AnnotationEndpoint]
		moved = recorded && !endpoints.SameSource(endpoint, q.Spec.Endpoint)
		if existing.Spec.RegionID != q.Spec.RegionID || (moved && !onlyClaimedBy(existing, q)) {
			return &foreignSnapshotError{fmt.Sprintf("snapshot %s/%s holds job %q of region %s from endpoint %q", q.Namespace, name,
				existing.Spec.JobID, existing.Spec.RegionID, endpoint)}
		}
	}
	return r.writeSnapshot(ctx, judge, q, job, existing, moved, counts)
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
	// Note: the live matches, not status.matchedBy: a deleted query's name stays there until a
	// write of the remaining claimant, which would never come if this refused it.
	return !slices.ContainsFunc(aliveMatches(s), func(name string) bool { return name != q.Name })
}

// ownedSnapshots lists the snapshots of the query's namespace that the query owns, by name.
func (r *JobQueryReconciler) ownedSnapshots(ctx context.Context, q *dlcv1alpha1.JobQuery) (map[string]*dlcv1alpha1.DLCJobSnapshot, error) {
	var list dlcv1alpha1.DLCJobSnapshotList
	if err := r.List(ctx, &list, client.InNamespace(q.Namespace), client.MatchingFields{ownerIndexKey: string(q.UID)}); err != nil {
		return nil, fmt.Errorf("listing snapshots of %s: %w", klog.KObj(q), err)
	}
	out := make(map[string]*dlcv1alpha1.DLCJobSnapshot, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	return out, nil
}

// writeSnapshot makes one snapshot match its job in at most one request: a create carrying
// labels, annotations, owners and status, or one patch of what changed; nothing at all when the
// snapshot is current. moveEndpoint says the snapshot records another source than q's endpoint
// and moves to it with q, its one claimant (syncSnapshot let it through).
func (r *JobQueryReconciler) writeSnapshot(ctx context.Context, judge *claimJudge, q *dlcv1alpha1.JobQuery, job *dlc.JobItem,
	existing *dlcv1alpha1.DLCJobSnapshot, moveEndpoint bool, counts *writeCounts) error {
	opts := r.sharedOptions(ctx, q, existing)
	converted, err := snapshot.ConvertJob(job, opts)
	if err != nil {
		return err
	}
	revealed := revealedGroups(opts)
	want := desiredSnapshot{
		name:         snapshot.Name(job.JobID),
		labels:       snapshot.Labels(job, q.Spec.RegionID),
		spec:         dlcv1alpha1.DLCJobSnapshotSpec{JobID: job.JobID, RegionID: q.Spec.RegionID},
		hash:         snapshot.Hash(converted),
		endpoint:     q.Spec.Endpoint,
		moveEndpoint: moveEndpoint,
	}
	var existingConds []metav1.Condition
	var observedAt *metav1.Time
	want.owners, want.holders = judge.claimsOf(ctx, existing, q, true)
	if existing != nil {
		want.matchedBy = withName(claimedMatches(existing.Status.MatchedBy, want.owners, want.holders), q.Name)
		existingConds = existing.Status.Conditions
		observedAt = existing.Status.ObservedAt
	} else {
		want.matchedBy = []string{q.Name}
	}

	objectCurrent := existing != nil && ownLabelsEqual(existing.Labels, want.labels) &&
		claimsCurrent(existing, want.owners, want.holders) && !want.moveEndpoint
	statusCurrent := existing != nil && existing.Status.ContentHash == want.hash &&
		slices.Equal(existing.Status.MatchedBy, want.matchedBy) && existing.Status.Matching &&
		slices.Equal(existing.Status.Revealed, revealed)
	if objectCurrent && statusCurrent {
		counts.unchanged++
		return nil
	}

	now := metav1.NewTime(r.now())
	if existing == nil || existing.Status.ContentHash != want.hash {
		observedAt = &now
	}
	want.status = snapshot.Status(converted, want.hash, existingConds, now)
	want.status.MatchedBy, want.status.Matching, want.status.ObservedAt = want.matchedBy, true, observedAt
	want.status.Revealed = revealed
	want.status.RequestID = r.requestIDOf(q, job.JobID)
	var had *dlcv1alpha1.DLCJobSnapshotStatus
	if existing != nil {
		had = &existing.Status
	}
	want.status.Transition, want.status.PreviousTransitions = snapshot.Transition(job.JobID, converted.Status, had, now.Time)

	var created *dlcv1alpha1.DLCJobSnapshot
	if existing == nil {
		created, err = r.createSnapshot(ctx, q.Namespace, &want)
	} else {
		err = r.patchSnapshot(ctx, existing, &want, objectCurrent, statusCurrent)
	}
	if err != nil {
		return r.countConflict(err, counts)
	}
	if tr := want.status.Transition; tr != nil && (existing == nil || existing.Status.Transition == nil ||
		existing.Status.Transition.Key != tr.Key) {
		r.events.written(q, want.name, job.JobID, &want.status)
	}
	if existing == nil {
		counts.created++
		if snapshot.Outcome(converted.Status) != "" {
			counts.firstSeen(created, converted)
		}
	} else {
		counts.updated++
		if existing.Status.Phase != "" && existing.Status.Phase != job.Status {
			r.phaseEvent(q.Namespace, want.name, existing, converted)
		}
	}
	return nil
}

// phaseEvent emits one event per job phase transition on the snapshot, with a stable message so
// that repeated transitions aggregate. Note: from the converted job, whose strings are the ones
// the snapshot shows (URL userinfo scrubbed), never from the API's answer: events are readable by
// whoever may read the namespace's events.
func (r *JobQueryReconciler) phaseEvent(namespace, name string, existing *dlcv1alpha1.DLCJobSnapshot, job *dlcv1alpha1.JobItem) {
	reason, warning := snapshot.TransitionEvent(existing.Status.Phase, job.Status)
	eventType := corev1.EventTypeNormal
	if warning {
		eventType = corev1.EventTypeWarning
	}
	regarding := existing.DeepCopy()
	regarding.Namespace, regarding.Name = namespace, name
	note := fmt.Sprintf("Job %s (%s) changed from %s to %s", cut(job.DisplayName, 200), job.JobID, existing.Status.Phase, job.Status)
	if job.ReasonCode != "" && snapshot.Outcome(job.Status) != "" {
		note += ": " + cut(job.ReasonCode, 200)
	}
	r.Recorder.Eventf(regarding, nil, eventType, reason, actionPhaseChanged, "%s", note)
}

// The actions of job events: a change seen between two syncs, or a job whose snapshot was
// created in a phase where it had already ended (the change happened before dlcsync saw it).
const (
	actionPhaseChanged = "JobPhaseChanged"
	actionFirstSeen    = "JobFirstSeen"
)

// maxFirstSeenEvents bounds the JobFirstSeen events of one sync. Note: the first sync of a query
// over a workspace's history finds thousands of ended jobs; an event each would double the
// requests of that sync. The rest are counted in one event on the query, and every one of them
// carries status.transition (with no from) for automation that needs them all.
const maxFirstSeenEvents = 50

// firstSeenJob is what the JobFirstSeen event of a new snapshot says.
type firstSeenJob struct {
	snapshot                              *dlcv1alpha1.DLCJobSnapshot
	displayName, jobID, phase, reasonCode string
}

// firstSeen counts a snapshot created for a job that had already ended, keeping what its event
// needs for the first maxFirstSeenEvents.
func (c *writeCounts) firstSeen(created *dlcv1alpha1.DLCJobSnapshot, job *dlcv1alpha1.JobItem) {
	c.firstSeenEnded++
	if len(c.firstSeenJobs) >= maxFirstSeenEvents {
		return
	}
	regarding := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: created.Namespace, Name: created.Name,
		UID: created.UID, ResourceVersion: created.ResourceVersion}}
	c.firstSeenJobs = append(c.firstSeenJobs, firstSeenJob{snapshot: regarding, displayName: cut(job.DisplayName, 200),
		jobID: job.JobID, phase: job.Status, reasonCode: cut(job.ReasonCode, 200)})
}

// firstSeenEvents emits the JobFirstSeen events of a sync, with the reason a change to the same
// phase would have had (JobFailed as a Warning, ...), so that an event consumer filtering on the
// reason sees both and one filtering on the action can tell them apart; the jobs beyond
// maxFirstSeenEvents are counted in one event on the query.
func (r *JobQueryReconciler) firstSeenEvents(q *dlcv1alpha1.JobQuery, counts *writeCounts) {
	for _, j := range counts.firstSeenJobs {
		reason, warning := snapshot.TransitionEvent("", j.phase)
		eventType := corev1.EventTypeNormal
		if warning {
			eventType = corev1.EventTypeWarning
		}
		note := fmt.Sprintf("Job %s (%s) first seen %s", j.displayName, j.jobID, j.phase)
		if j.reasonCode != "" {
			note += ": " + j.reasonCode
		}
		r.Recorder.Eventf(j.snapshot, nil, eventType, reason, actionFirstSeen, "%s", note)
	}
	if more := counts.firstSeenEnded - int32(len(counts.firstSeenJobs)); more > 0 {
		r.Recorder.Eventf(q, nil, corev1.EventTypeNormal, "JobsFirstSeenEnded", actionFirstSeen,
			"%d more jobs were first seen after they had ended (events for the first %d only); their snapshots' status.transition has no from",
			more, maxFirstSeenEvents)
	}
}

// pruneSnapshot handles a snapshot of a job the query no longer lists.
func (r *JobQueryReconciler) pruneSnapshot(ctx context.Context, judge *claimJudge, q *dlcv1alpha1.JobQuery, s *dlcv1alpha1.DLCJobSnapshot,
	counts *writeCounts) error {
	owners, holders := judge.claimsOf(ctx, s, q, false)
	others := append(owners, holders...)
	retain := q.Spec.Snapshot.PrunePolicy == dlcv1alpha1.PrunePolicyRetain
	// Note: an owner that is not a JobQuery (a user's own object) holds the snapshot too; only
	// this query's claim is dropped then, never the object.
	foreign := len(s.OwnerReferences) > len(queryOwners(s.OwnerReferences))
	switch {
	case len(others) == 0 && !retain && !foreign:
		// Note: the precondition makes sure we delete the object we compared, not one that another
		// query adopted a moment ago.
		err := r.Delete(ctx, s, client.Preconditions{UID: &s.UID, ResourceVersion: &s.ResourceVersion})
		if err != nil && !apierrors.IsNotFound(err) {
			return r.countConflict(err, counts)
		}
		snapshotWritesTotal.WithLabelValues("delete").Inc()
		counts.deleted++
		return nil
	case len(others) == 0 && retain:
		// Kept, claimed by this query (so it goes with the query unless Orphan), marked as no
		// longer matching.
		if !s.Status.Matching && len(s.Status.MatchedBy) == 0 {
			counts.unchanged++
			return nil
		}
		p := newSnapshotPatch(s)
		p.matches(nil)
		if err := r.sendPatch(ctx, p); err != nil {
			return r.countConflict(err, counts)
		}
		counts.deleted++
		return nil
	default:
		// Other queries still match: release this query's ownership only.
		if err := r.release(ctx, judge, q, s); err != nil {
			return r.countConflict(err, counts)
		}
		counts.deleted++
		return nil
	}
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

// reconcileDeletionPolicy puts the finalizer on the query, then, once per generation in this
// process, its claims on its snapshots in the form its deletionPolicy asks for. Note: once per
// process too, not only on a spec change: snapshots written by an earlier release (which always
// set owner references) must take the Orphan form before a foreground deletion could collect
// them. The conversion runs before the sync, whose listing may fail.
func (r *JobQueryReconciler) reconcileDeletionPolicy(ctx context.Context, q *dlcv1alpha1.JobQuery) error {
	if err := r.reconcileFinalizer(ctx, q); err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(q)
	if checked, ok := r.claimsChecked.Load(key); ok && checked.(int64) == q.Generation {
		return nil
	}
	// Note: a failed conversion is not recorded, so it is tried again at the next reconcile.
	if err := r.reconcileClaims(ctx, q); err != nil {
		return err
	}
	r.claimsChecked.Store(key, q.Generation)
	return nil
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

func (r *JobQueryReconciler) countConflict(err error, counts *writeCounts) error {
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) || apierrors.IsAlreadyExists(err) {
		counts.conflicts++
		return nil
	}
	return err
}

// createSnapshot creates a new snapshot whole: labels, annotations, owners, spec and status in
// one request. Note: it fails with AlreadyExists when the cache has not yet seen another
// query's snapshot; the sync retries a second later and then updates that one.
func (r *JobQueryReconciler) createSnapshot(ctx context.Context, namespace string, want *desiredSnapshot) (*dlcv1alpha1.DLCJobSnapshot, error) {
	annotations := map[string]string{dlcv1alpha1.AnnotationEndpoint: want.endpoint}
	if len(want.holders) > 0 {
		annotations[holdersAnnotation] = formatHolders(want.holders)
	}
	obj := &dlcv1alpha1.DLCJobSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: want.name, Labels: want.labels, OwnerReferences: want.owners,
			Annotations: annotations},
		Spec:   want.spec,
		Status: want.status,
	}
	if err := r.Create(ctx, obj, client.FieldOwner(FieldOwner)); err != nil {
		return nil, fmt.Errorf("creating snapshot %s/%s: %w", namespace, want.name, err)
	}
	snapshotWritesTotal.WithLabelValues("create").Inc()
	if obj.Status.ContentHash != want.status.ContentHash || len(obj.Status.Revealed) != len(want.status.Revealed) {
		return nil, statusDropped(obj, want.status.ContentHash)
	}
	return obj, nil
}

// patchSnapshot brings an existing snapshot to want in one patch: labels and claims when the
// object is not current, the whole status when the status is not.
func (r *JobQueryReconciler) patchSnapshot(ctx context.Context, existing *dlcv1alpha1.DLCJobSnapshot, want *desiredSnapshot,
	objectCurrent, statusCurrent bool) error {
	p := newSnapshotPatch(existing)
	if !objectCurrent {
		p.labels(want.labels)
		if err := r.patchClaims(ctx, p, want.owners, want.holders); err != nil {
			return err
		}
		if want.moveEndpoint {
			p.ops = append(p.ops, patchOp{Op: "add", Path: "/metadata/annotations/" + jsonPointer(dlcv1alpha1.AnnotationEndpoint),
				Value: want.endpoint})
		}
	}
	if !statusCurrent {
		p.status(&want.status)
	}
	return r.sendPatch(ctx, p)
}

// ownLabels keeps the labels dlcsync manages.
func ownLabels(labels map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range snapshot.LabelKeys {
		if v, ok := labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

func ownLabelsEqual(have, want map[string]string) bool { return maps.Equal(ownLabels(have), want) }

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

// revealedGroups is status.revealed for a snapshot converted with opts: its groups in the order
// of dlcv1alpha1.RevealGroups, nil for none.
func revealedGroups(opts snapshot.Options) []dlcv1alpha1.RevealGroup {
	var out []dlcv1alpha1.RevealGroup
	for _, g := range dlcv1alpha1.RevealGroups {
		if opts.Reveals(g) {
			out = append(out, g)
		}
	}
	return out
}

// sharedOptions are the conversion options of a snapshot that several queries may write: the
// groups every matching query reveals, no more. Note: the most redacting query wins, and every
// writer computes the same set from the same matchedBy, so overlapping queries that disagree
// converge instead of rewriting the snapshot on each other's syncs.
func (r *JobQueryReconciler) sharedOptions(ctx context.Context, q *dlcv1alpha1.JobQuery, existing *dlcv1alpha1.DLCJobSnapshot) snapshot.Options {
	opts := snapshot.OptionsFor(q.Spec.Snapshot)
	if existing == nil || len(opts.Reveal) == 0 {
		return opts
	}
	for _, name := range aliveMatches(existing) {
		if name == q.Name {
			continue
		}
		var other dlcv1alpha1.JobQuery
		if err := r.Get(ctx, types.NamespacedName{Namespace: q.Namespace, Name: name}, &other); err != nil {
			// Unknown (deleted a moment ago, or not cached yet): reveal nothing it might not.
			return snapshot.Options{}
		}
		theirs := snapshot.OptionsFor(other.Spec.Snapshot)
		opts.Reveal = slices.DeleteFunc(opts.Reveal, func(g dlcv1alpha1.RevealGroup) bool { return !theirs.Reveals(g) })
	}
	return opts
}
