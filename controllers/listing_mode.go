package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/queryspec"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// DefaultFullResyncInterval applies when spec.fullResyncInterval is unset (queryspec's, which the
// plugin reads too).
const DefaultFullResyncInterval = queryspec.DefaultFullResyncInterval

// queryState is what this process remembers of a JobQuery between syncs. What incremental listing
// needs of it is also kept in status.incremental (recordIncremental), from which a new process
// rebuilds it (restoreState): a restart then costs what a quiet sync costs.
type queryState struct {
	// nextSync is when the next periodic sync is due (zero: unknown, use the status).
	nextSync time.Time
	// lastFull is when the last successful full listing ran, and fullKey what it listed for.
	lastFull time.Time
	fullKey  string
	// absent are the snapshots a complete listing did not return. One listing's word is
	// not enough to delete: a snapshot is pruned only when the next complete listing does not
	// return its job either, so a single wrong answer can never remove anything.
	absent map[string]bool
	// absentKey is the fullKey the absences were seen under: a new spec or new credentials
	// start over.
	absentKey string
	// restored is the status.incremental this process rebuilt the state from, until its first
	// successful sync: that sync lists incrementally only if the snapshots in the cache still
	// agree with it (restoredAgrees).
	restored *dlcv1alpha1.IncrementalState
	// wroteSync is the status.lastSyncTime this process last wrote, and wroteAt when: until the
	// cache shows it, a reconcile reads a query older than this process's own write (see
	// cacheBehind).
	wroteSync, wroteAt time.Time
}

// ambientVersion is the credentials version of the operator's own credential chain.
const ambientVersion = "ambient"

// roleVersionPrefix starts the credentials version of a role assumed with the operator's chain.
const roleVersionPrefix = "role:"

// operatorIdentity reports whether a credentials version is the operator's own chain or a role
// assumed with it: who calls may change with the process (another pod identity, a role's
// changed policy) while the version stays the same.
func operatorIdentity(version string) bool {
	return version == ambientVersion || strings.HasPrefix(version, roleVersionPrefix)
}

// maxClockSkew is how far ahead of this process's clock a restored last full listing may be.
const maxClockSkew = time.Minute

// minIncrementalRecord is the least time between two writes of a new last full listing time:
// with a short fullResyncInterval, half of it would be a status write at almost every sync.
const minIncrementalRecord = 5 * time.Minute

// maxPendingPrune bounds status.incremental.pendingPrune (the CRD's maxItems).
const maxPendingPrune = 100

// state returns the memory of a query and whether it existed before this call.
func (r *JobQueryReconciler) state(key types.NamespacedName) (*queryState, bool) {
	v, loaded := r.queries.LoadOrStore(key, &queryState{})
	return v.(*queryState), loaded
}

// fullKey names what a full listing listed for: the whole spec and the credentials (other
// credentials may see other jobs). A change of either calls for a full listing; a requested
// reconcile (requestedAt) does not: it asks for a sync now, not for a more expensive one.
// A hash, kept in status.incremental.fingerprint, of the generation and of the spec's
// content, so that the key means the same whatever process computes it. Every spec field counts,
// those that do not change the listing (interval, suspend) included: a field added later can
// then never be forgotten here.
func fullKey(q *dlcv1alpha1.JobQuery) string {
	spec, err := json.Marshal(&q.Spec)
	if err != nil {
		// Cannot happen for this type; a key no state holds means a full listing.
		return "unencodable:" + err.Error()
	}
	h := sha256.New()
	h.Write([]byte(strconv.FormatInt(q.Generation, 10)))
	h.Write([]byte{0})
	h.Write(spec)
	h.Write([]byte{0})
	h.Write([]byte(q.Status.ObservedCredentialsVersion))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// fullResyncEvery is how long incremental listings may follow a full one.
func fullResyncEvery(q *dlcv1alpha1.JobQuery) time.Duration {
	if q.Spec.FullResyncInterval != nil {
		return q.Spec.FullResyncInterval.Duration
	}
	return DefaultFullResyncInterval
}

// restoreState rebuilds the memory of a query that this process sees for the first time from
// its status, as the last process that synced it left it: the next sync (restoredNextSync) and
// status.incremental. Whether the latter still applies is decided at the sync: a fingerprint of
// another spec or other credentials never matches fullKey, and the snapshots must agree with it
// (restoredAgrees).
// Incremental state built under the operator's own identity, or a role assumed with it, is not
// restored: a new process may run with another identity (or the role another policy), which may
// see other jobs, and nothing records which.
func restoreState(state *queryState, q *dlcv1alpha1.JobQuery, now time.Time) {
	state.nextSync = restoredNextSync(&q.Status, q.Spec.Interval.Duration, now)
	inc := q.Status.Incremental
	if inc == nil || inc.Fingerprint == "" || operatorIdentity(q.Status.ObservedCredentialsVersion) {
		return
	}
	if inc.LastFullListingTime.After(now.Add(maxClockSkew)) {
		// Written by a process whose clock ran ahead: trusted, it would put off every full
		// listing (the only way to see deleted jobs) until this clock caught up.
		return
	}
	state.lastFull, state.fullKey = inc.LastFullListingTime.Time, inc.Fingerprint
	state.absent, state.absentKey = make(map[string]bool, len(inc.PendingPrune)), inc.Fingerprint
	for _, name := range inc.PendingPrune {
		state.absent[name] = true
	}
	state.restored = inc.DeepCopy()
}

// restoredNextSync is the schedule the last process wrote (status.nextSyncTime), as long as a
// sync could have scheduled it from now: at most the interval and its jitter, or the backoff of
// a failing query. Zero when none was written.
// A later time was written by a process whose clock ran ahead; trusted, it would keep the
// query silent until this clock caught up (hours, after a failover from a skewed leader). The
// cap is taken once, here: taken at every look, it would move forward with the clock.
func restoredNextSync(st *dlcv1alpha1.JobQueryStatus, interval time.Duration, now time.Time) time.Time {
	if st.NextSyncTime == nil {
		return time.Time{}
	}
	longest := maxJitter(interval)
	if st.ConsecutiveFailures > 0 {
		longest = max(longest, retryDelay(st.ConsecutiveFailures))
	}
	if limit := now.Add(longest); st.NextSyncTime.After(limit) {
		return limit
	}
	return st.NextSyncTime.Time
}

// restoredAgrees reports whether the jobs the snapshots hold now are those a restored state
// was written with: same newest creation time, same running jobs. Any difference (a snapshot
// edited or deleted while no process watched, a status write that failed after the snapshots'
// writes) means the snapshots cannot stand in for a full listing. With nothing restored there is
// nothing to disagree with.
func restoredAgrees(state *queryState, known []dlc.KnownJob) bool {
	if state.restored == nil {
		return true
	}
	watermark, running, digest := summarize(known)
	r := state.restored
	return watermark == r.Watermark && running == r.RunningJobs && digest == r.RunningDigest
}

// forgetRestored drops a restored state the snapshots disagree with, whole: its last full
// listing (the next listing is a full one) and its pending prunes, which may be absences a
// listing refuted after the status was written.
func (s *queryState) forgetRestored() {
	s.restored, s.absent, s.lastFull = nil, nil, time.Time{}
}

// summarize is what status.incremental records of the kept jobs: the newest creation time, and
// the number and a hash of the IDs of the jobs not terminal.
func summarize(known []dlc.KnownJob) (watermark string, running int32, digest string) {
	var ids []string
	for _, k := range known {
		watermark = max(watermark, k.GmtCreateTime)
		if !dlc.IsTerminal(k.Status) {
			ids = append(ids, k.JobID)
		}
	}
	slices.Sort(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return watermark, int32(len(ids)), hex.EncodeToString(sum[:16])
}

// recordIncremental keeps in status.incremental what a new process needs to go on listing
// incrementally after this successful sync; known are the jobs kept after it (listing.kept).
// It clears the field when a new process could not list incrementally anyway (the filter does
// not allow it, a full listing costs no more, the operator's own identity or a role it assumes), so that it is never written
// for nothing.
// A sync that changes nothing must write nothing. Watermark, running jobs and pending
// prunes change only with the snapshots; the time of the last full listing changes at every
// full listing, so it is rewritten only once the recorded one is half a fullResyncInterval
// old: a restarted process then lists in full at most that much earlier than this one would.
func recordIncremental(q *dlcv1alpha1.JobQuery, state *queryState, known []dlc.KnownJob) {
	state.restored = nil
	st, key, every := &q.Status, fullKey(q), fullResyncEvery(q)
	if every <= 0 || state.lastFull.IsZero() || state.fullKey != key || operatorIdentity(st.ObservedCredentialsVersion) ||
		st.Truncated || len(known) == 0 || !incrementalFilter(&q.Spec) || !cheaperThanFull(known) {
		st.Incremental = nil
		return
	}
	watermark, running, digest := summarize(known)
	last := state.lastFull.Truncate(time.Second)
	if prev := st.Incremental; prev != nil && prev.Fingerprint == key && !prev.LastFullListingTime.After(last) &&
		last.Sub(prev.LastFullListingTime.Time) < max(every/2, minIncrementalRecord) {
		last = prev.LastFullListingTime.Time
	}
	st.Incremental = &dlcv1alpha1.IncrementalState{Fingerprint: key, LastFullListingTime: metav1.NewTime(last),
		Watermark: watermark, RunningJobs: running, RunningDigest: digest, PendingPrune: pendingPrune(state, key)}
}

// pendingPrune lists the absences waiting for confirmation, sorted, at most maxPendingPrune:
// one left out only waits for two listings after a restart.
func pendingPrune(state *queryState, key string) []string {
	if state.absentKey != key || len(state.absent) == 0 {
		return nil
	}
	names := make([]string, 0, len(state.absent))
	for name := range state.absent {
		names = append(names, name)
	}
	slices.Sort(names)
	return names[:min(len(names), maxPendingPrune)]
}

// forgetUnconfirmedPrunes keeps in status.incremental.pendingPrune only the absences this
// process still holds after a failed sync: the listing may have returned a job again before
// the sync failed, and a restarted process must not count an absence that was refuted.
// Dropping one only delays a prune.
func forgetUnconfirmedPrunes(q *dlcv1alpha1.JobQuery, state *queryState) {
	inc := q.Status.Incremental
	if inc == nil || len(inc.PendingPrune) == 0 {
		return
	}
	keep := state.absentKey == inc.Fingerprint
	inc.PendingPrune = slices.DeleteFunc(slices.Clone(inc.PendingPrune), func(name string) bool { return !keep || !state.absent[name] })
	if len(inc.PendingPrune) == 0 {
		inc.PendingPrune = nil
	}
}

// incrementalFilter reports whether every criterion of the query is fixed when a job is created,
// so that a job matches for its whole life or never: only then can a sync skip terminal jobs.
// The rules, with the API reference's reasons, are in one place: dlc.FilterRules.
func incrementalFilter(spec *dlcv1alpha1.JobQuerySpec) bool {
	req, _ := queryspec.Request(spec)
	return dlc.FixedAtCreation(req)
}

// incrementalDue reports whether this sync may list changes only: the filter allows it, a full
// listing of the same spec and credentials ran within fullResyncInterval, the query was not
// truncated, it keeps at least one job to start from, and every snapshot it counted last time is
// still there (one deleted by hand is restored by a full listing, at the next sync). A state
// restored from the status must also agree with the snapshots (restoredAgrees), which the
// caller checks last, because only a state that would otherwise list incrementally may be
// judged (and forgotten when it disagrees): forgotten in a sync that lists in full anyway, it
// would lose the pending prunes that full listing confirms.
func incrementalDue(q *dlcv1alpha1.JobQuery, state *queryState, known []dlc.KnownJob, now time.Time) bool {
	every := fullResyncEvery(q)
	return every > 0 && len(known) > 0 && len(known) == int(q.Status.Snapshots) && !q.Status.Truncated && incrementalFilter(&q.Spec) &&
		!state.lastFull.IsZero() && state.fullKey == fullKey(q) && now.Sub(state.lastFull) < every &&
		cheaperThanFull(known)
}

// cheaperThanFull reports whether listing changes takes fewer calls than listing every known
// job: one call for new jobs and one per page of moving jobs, against one per page of jobs. When
// most jobs are moving, the full listing costs no more and also finds deletions.
func cheaperThanFull(known []dlc.KnownJob) bool {
	moving := 0
	for _, k := range known {
		if !dlc.IsTerminal(k.Status) {
			moving++
		}
	}
	pages := func(n int) int { return (n + dlc.MaxPageSize - 1) / dlc.MaxPageSize }
	return 1+pages(moving) < pages(len(known))
}

// knownJobs are the jobs of the snapshots that still match, as ListChanges needs them.
func knownJobs(owned map[string]*dlcv1alpha1.DLCJobSnapshot) []dlc.KnownJob {
	out := make([]dlc.KnownJob, 0, len(owned))
	for _, s := range owned {
		// status.job is not cached (TrimForCache); createdAt holds the creation time.
		if !s.Status.Matching || s.Status.CreatedAt == nil {
			continue
		}
		out = append(out, dlc.KnownJob{JobID: s.Spec.JobID, GmtCreateTime: dlc.FormatTime(s.Status.CreatedAt.Time), Status: s.Status.Phase})
	}
	return out
}

// listing is what a sync learnt from the API.
type listing struct {
	mode string
	// jobs are the listed jobs: every kept job (Full) or the new and moving ones (Incremental).
	jobs []dlc.Held
	// gone are the snapshot names of jobs no longer listed (Incremental).
	gone map[string]bool
	walk dlc.WalkStats
}

// keptJobs are the jobs the query keeps as snapshots after a sync with a listing.
type keptJobs struct {
	// n counts them, counts by status.
	n      int
	counts map[string]int32
	// known are those with a creation time, as knownJobs will read them from the snapshots at
	// the next sync (the creation time in the layout the snapshots store).
	known []dlc.KnownJob
}

// kept returns the jobs the query keeps after the listing: the listed jobs but those whose
// snapshot could not be written and does not exist (unmirrored) and, in an incremental listing,
// the matching snapshots it did not need to read. withKnown also lists them as known jobs
// (a job whose creation time does not parse is counted, not known).
func (l *listing) kept(owned map[string]*dlcv1alpha1.DLCJobSnapshot, unmirrored []string, withKnown bool) keptJobs {
	out := keptJobs{counts: map[string]int32{}}
	if withKnown {
		out.known = make([]dlc.KnownJob, 0, len(l.jobs))
	}
	listed := make(map[string]bool, len(l.jobs))
	missing := sets.New(unmirrored...)
	for i := range l.jobs {
		j := &l.jobs[i]
		name := snapshot.Name(j.JobID)
		listed[name] = true
		if missing.Has(name) {
			continue
		}
		out.counts[countedStatus(j.Status)]++
		out.n++
		if created, err := time.Parse(dlc.TimeLayout, j.GmtCreateTime); withKnown && err == nil {
			out.known = append(out.known, dlc.KnownJob{JobID: j.JobID, GmtCreateTime: dlc.FormatTime(created), Status: j.Status})
		}
	}
	if l.mode == dlcv1alpha1.SyncModeIncremental {
		for name, s := range owned {
			if !s.Status.Matching || listed[name] || l.gone[name] {
				continue
			}
			out.counts[countedStatus(s.Status.Phase)]++
			out.n++
			if withKnown && s.Status.CreatedAt != nil {
				out.known = append(out.known, dlc.KnownJob{JobID: s.Spec.JobID, GmtCreateTime: dlc.FormatTime(s.Status.CreatedAt.Time),
					Status: s.Status.Phase})
			}
		}
	}
	return out
}
