package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

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
// the job's held data could not be restored (dlc.ErrUnpack).
// Such a job is skipped and reported; the other jobs of the sync go on.
func jobProblem(err error) bool {
	var foreign *foreignSnapshotError
	return errors.As(err, &foreign) || errors.Is(err, dlc.ErrUnpack) || apierrors.IsInvalid(err) ||
		apierrors.IsRequestEntityTooLargeError(err) || apierrors.IsBadRequest(err) || strings.Contains(err.Error(), "request is too large")
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
	sc.claims = r.newClaimJudge()
	counts, kept, err := r.writeListed(ctx, sc)
	r.firstSeenEvents(sc.query, &counts)
	if err != nil {
		// The listing showed these jobs even though their writes failed: an absence noted
		// before is refuted all the same, or a later glitch would prune on two absences that
		// were not consecutive.
		for name := range kept {
			delete(sc.state.absent, name)
		}
		return counts, err
	}
	err = r.pruneAbsent(ctx, sc, kept, &counts)
	return counts, err
}

// writeListed writes the snapshot of every listed job and returns what it wrote and the names
// of the listed jobs' snapshots.
func (r *JobQueryReconciler) writeListed(ctx context.Context, sc *syncScope) (writeCounts, map[string]bool, error) {
	owned, jobs := sc.owned, sc.listed.jobs
	var counts writeCounts
	kept := make(map[string]bool, len(jobs))
	// Jobs map to distinct objects, so their writes run in parallel (bounded), which makes
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
			whole, err := job.Job()
			if err == nil {
				err = r.syncSnapshot(groupCtx, sc, &whole, name, existing, &local)
			}
			// After its write, a job is only counted (listing.kept): its data goes,
			// so that a large first sync holds less and less of its listing as it writes.
			job.Release(sc.memory)
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
	return counts, kept, err
}

// pruneAbsent notes the owned snapshots whose jobs this listing did not show (kept names those
// it did) and prunes those absent from two consecutive complete listings.
func (r *JobQueryReconciler) pruneAbsent(ctx context.Context, sc *syncScope, kept map[string]bool, counts *writeCounts) error {
	q, listed := sc.query, sc.listed
	if key := fullKey(q); sc.state.absentKey != key {
		sc.state.absent, sc.state.absentKey = nil, key
	}
	absent := map[string]bool{}
	retain := q.Spec.Snapshot.PrunePolicy == dlcv1alpha1.PrunePolicyRetain
	for name, s := range sc.owned {
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
		// A snapshot already retained (no longer matching, kept by prunePolicy Retain) is
		// not tracked: its absence would be noted on one listing and dropped on the next, and
		// status.incremental.pendingPrune would change (a status write) at every full listing.
		if !missing || (retain && !s.Status.Matching && len(s.Status.MatchedBy) == 0) {
			continue
		}
		if !sc.state.absent[name] {
			absent[name] = true
			continue
		}
		if err := r.pruneSnapshot(ctx, sc.claims, q, s, counts); err != nil {
			sc.state.absent = absent
			return err
		}
	}
	sc.state.absent = absent
	return nil
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
func (r *JobQueryReconciler) syncSnapshot(ctx context.Context, sc *syncScope, job *dlc.JobItem, name string,
	existing *dlcv1alpha1.DLCJobSnapshot, counts *writeCounts) error {
	q := sc.query
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
	err := r.writeSnapshot(ctx, sc, job, existing, counts)
	if !errors.Is(err, errCreatedMeanwhile) {
		return err
	}
	// Another writer (an overlapping query's first sync, as a rule) created it after the
	// cache was read: join it now, from the apiserver, instead of failing the whole sync with
	// SnapshotConflict and listing every job again.
	var stored dlcv1alpha1.DLCJobSnapshot
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: q.Namespace, Name: name}, &stored); err != nil {
		if apierrors.IsNotFound(err) {
			counts.conflicts++
			return nil
		}
		return fmt.Errorf("reading snapshot %s/%s created meanwhile: %w", q.Namespace, name, err)
	}
	return r.writeSnapshot(ctx, sc, job, &stored, counts)
}

// errCreatedMeanwhile: a create found the snapshot created by another writer since the cache
// was read.
var errCreatedMeanwhile = errors.New("the snapshot was created meanwhile")

// mayWrite checks that the query may write the job's snapshot, name, over existing (nil: none),
// and says whether the snapshot moves to the query's endpoint: it records another source, and
// the query is its one claimant.
func mayWrite(q *dlcv1alpha1.JobQuery, job *dlc.JobItem, name string, existing *dlcv1alpha1.DLCJobSnapshot) (moved bool, err error) {
	if existing == nil {
		return false, nil
	}
	if existing.Spec.JobID != job.JobID {
		// Two IDs cannot share a name (the sanitised form carries a hash of the ID); a foreign
		// object with our name is left alone.
		return false, &foreignSnapshotError{fmt.Sprintf("snapshot %s/%s belongs to job %q", q.Namespace, name, existing.Spec.JobID)}
	}
	// The first query to write a snapshot fixes its source; a query of another region
	// or endpoint that lists the same ID is not allowed to overwrite it.
	endpoint, recorded := existing.Annotations[dlcv1alpha1.AnnotationEndpoint]
	moved = recorded && !endpoints.SameSource(endpoint, q.Spec.Endpoint)
	if existing.Spec.RegionID != q.Spec.RegionID || (moved && !onlyClaimedBy(existing, q)) {
		return false, &foreignSnapshotError{fmt.Sprintf("snapshot %s/%s holds job %q of region %s from endpoint %q", q.Namespace, name,
			existing.Spec.JobID, existing.Spec.RegionID, endpoint)}
	}
	return moved, nil
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
// snapshot is current. A snapshot the query may not write (mayWrite) is refused.
func (r *JobQueryReconciler) writeSnapshot(ctx context.Context, sc *syncScope, job *dlc.JobItem,
	existing *dlcv1alpha1.DLCJobSnapshot, counts *writeCounts) error {
	q, judge := sc.query, sc.claims
	name := snapshot.Name(job.JobID)
	moveEndpoint, err := mayWrite(q, job, name, existing)
	if err != nil {
		return err
	}
	opts := r.sharedOptions(ctx, q, existing)
	converted, err := snapshot.ConvertJob(job, opts)
	if err != nil {
		return err
	}
	revealed := revealedGroups(opts)
	want := desiredSnapshot{
		name:         name,
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
	want.status.RequestID = sc.requestIDs.of(job.JobID)
	var had *dlcv1alpha1.DLCJobSnapshotStatus
	if existing != nil {
		had = &existing.Status
	}
	want.status.Transition, want.status.PreviousTransitions = snapshot.Transition(job.JobID, converted.Status, had, now.Time)

	var created *dlcv1alpha1.DLCJobSnapshot
	if existing == nil {
		created, err = r.createSnapshot(ctx, q.Namespace, &want)
		if apierrors.IsAlreadyExists(err) {
			return errCreatedMeanwhile
		}
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

func (r *JobQueryReconciler) countConflict(err error, counts *writeCounts) error {
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) || apierrors.IsAlreadyExists(err) {
		counts.conflicts++
		return nil
	}
	return err
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
// groups every matching query reveals, no more. The most redacting query wins, and every
// writer computes the same set from the same matchedBy, so overlapping queries that disagree
// converge instead of rewriting the snapshot on each other's syncs.
func (r *JobQueryReconciler) sharedOptions(ctx context.Context, q *dlcv1alpha1.JobQuery,
	existing *dlcv1alpha1.DLCJobSnapshot) snapshot.Options {
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
