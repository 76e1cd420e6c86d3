package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/event"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// The functions in this file bound the work and the status of one query, whatever its spec,
// annotations or endpoint say.

// syncTimeout is the deadline of one sync: the query's interval, but at least 2 minutes (a
// first sync of thousands of jobs needs them) and at most 15. A sync that runs out of time keeps
// what it wrote, reports SyncTimeout and the next one goes on from there; without a deadline a
// slow endpoint could hold a sync worker for hours.
func (r *JobQueryReconciler) syncTimeout(q *dlcv1alpha1.JobQuery) time.Duration {
	if r.SyncTimeout > 0 {
		return r.SyncTimeout
	}
	return min(max(q.Spec.Interval.Duration, 2*time.Minute), 15*time.Minute)
}

func (r *JobQueryReconciler) concurrency() int {
	if r.MaxConcurrentSyncs <= 0 {
		return 4
	}
	return r.MaxConcurrentSyncs
}

// fairnessWait is how long a query refused a sync slot waits at most: a release wakes it as
// soon as a slot it may take is free, and this is the fallback when that wake is lost.
const fairnessWait = 2 * time.Second

// namespaceSlots counts the running syncs per namespace, so that no namespace holds more than
// its share of the sync workers, and wakes the queries it refused when a slot frees.
type namespaceSlots struct {
	mu      sync.Mutex
	running map[string]int
	total   int
	// waiting are the queries refused a slot, in the order they were refused. Without the
	// wake, a freed slot stayed idle until the refused query's fairnessWait was over: with
	// syncs of a few seconds, a fleet's first syncs ran at about half the workers.
	waiting []types.NamespacedName
	// woken are the queries woken and not back yet, each counted as holding the slot it was
	// woken for until it asks again (or its fairnessWait passed), so that two releases in a
	// row do not wake more queries than there are free slots.
	woken map[types.NamespacedName]time.Time
	// wake receives the queries to reconcile again (nil: no wakes, the fairnessWait only).
	wake chan event.GenericEvent
}

// slotsWakeBuffer is the room of namespaceSlots.wake; a wake that does not fit is left to the
// query's fairnessWait.
const slotsWakeBuffer = 1024

// admits is the rule of acquire: at most half of the workers (at least one) per namespace, and,
// for a namespace that already runs a sync, never the last free one.
func admits(mine, total, workers int) bool {
	return mine < max(1, workers/2) && total < workers && (mine == 0 || total < workers-1)
}

// acquire takes a sync slot for the query in its namespace: at most half of the workers (at
// least one) per namespace, and, for a namespace that already runs a sync, never the last free
// one: that one is kept for a namespace that runs none, so two slow namespaces cannot hold every
// worker (with as many slow namespaces as workers, the syncs' deadline is the bound). It returns
// false when the namespace may not start a sync now; the query is then woken by the release that
// frees a slot it may take.
func (s *namespaceSlots) acquire(query types.NamespacedName, workers int) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running, s.woken = map[string]int{}, map[types.NamespacedName]time.Time{}
	}
	delete(s.woken, query)
	// The slots woken queries are on their way to take are not free: a query that was not
	// refused before must not take one and send the woken query back to the end.
	reserved, total := s.reservedLocked()
	if !admits(s.running[query.Namespace]+reserved[query.Namespace], total, workers) {
		if !slices.Contains(s.waiting, query) {
			s.waiting = append(s.waiting, query)
		}
		return nil, false
	}
	s.waiting = slices.DeleteFunc(s.waiting, func(k types.NamespacedName) bool { return k == query })
	s.running[query.Namespace]++
	s.total++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.total--
		if s.running[query.Namespace]--; s.running[query.Namespace] <= 0 {
			delete(s.running, query.Namespace)
		}
		s.wakeLocked(workers)
	}, true
}

// wakeLocked wakes, in the order they were refused, as many waiting queries as the free slots
// admit, counting each woken one (of this release or an earlier one) as if it had its slot.
func (s *namespaceSlots) wakeLocked(workers int) {
	now := time.Now()
	woken, total := s.reservedLocked()
	kept := s.waiting[:0]
	for _, query := range s.waiting {
		if admits(s.running[query.Namespace]+woken[query.Namespace], total, workers) && s.send(query) {
			woken[query.Namespace]++
			total++
			s.woken[query] = now
			continue
		}
		kept = append(kept, query)
	}
	clear(s.waiting[len(kept):])
	s.waiting = kept
}

// reservedLocked counts the slots of the queries woken and not back yet, by namespace, and the
// running syncs and those together; a wake older than fairnessWait no longer holds a slot (its
// query never came back: deleted, suspended, or it failed before asking).
func (s *namespaceSlots) reservedLocked() (byNamespace map[string]int, total int) {
	now := time.Now()
	byNamespace, total = map[string]int{}, s.total
	for query, at := range s.woken {
		if now.Sub(at) > fairnessWait {
			delete(s.woken, query)
			continue
		}
		byNamespace[query.Namespace]++
		total++
	}
	return byNamespace, total
}

// send asks for a reconcile of the query without blocking; false when it could not.
func (s *namespaceSlots) send(query types.NamespacedName) bool {
	select {
	case s.wake <- event.GenericEvent{Object: &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: query.Namespace,
		Name: query.Name}}}:
		return true
	default:
		return false
	}
}

// conflictDelay is the wait after the n-th consecutive sync that met a concurrent writer: 1s
// doubling, capped at one minute (each retry is a listing).
func conflictDelay(n int32) time.Duration { return doubling(time.Second, time.Minute, n) }

// doubling is first·2^(n-1), capped at limit; n counts from 1.
func doubling(first, limit time.Duration, n int32) time.Duration {
	return min(first<<min(max(n, 1)-1, 20), limit)
}

// timedOut tags the failure of a sync whose deadline passed: whatever step was cut short, the
// cause is the deadline. Decided by the sync's own context, not by the error, because an
// HTTP client timeout also reads as context.DeadlineExceeded.
func timedOut(ctx context.Context, err error) error {
	if err == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	return &reasonError{reason: dlcv1alpha1.ReasonSyncTimeout, retryable: true, err: err}
}

// maxHandledLength is the longest requestedAt value status.lastHandledReconcileAt holds as is.
const maxHandledLength = 256

// handledValue is the form of a requestedAt annotation value that the status records: the
// value itself, or a prefix and a hash of it when it is longer than the status field allows, so
// a long value is handled once instead of failing every status write.
func handledValue(requestedAt string) string {
	if len(requestedAt) <= maxHandledLength {
		return requestedAt
	}
	sum := sha256.Sum256([]byte(requestedAt))
	suffix := "...sha256:" + hex.EncodeToString(sum[:])
	prefix := requestedAt[:maxHandledLength-len(suffix)]
	// Cut at a character boundary: a split UTF-8 sequence would be widened when encoded.
	for !utf8.ValidString(prefix) {
		prefix = prefix[:len(prefix)-1]
	}
	return prefix + suffix
}

// knownStatuses are the job statuses of the API reference. Any other counts as
// dlcv1alpha1.JobStatusOther, so a server that invents statuses cannot grow the status (nor the
// metrics) without bound.
var knownStatuses = sets.New(dlcv1alpha1.JobStatuses...)

// countedStatus is the jobStatusCounts key of a job status.
func countedStatus(status string) string {
	if knownStatuses.Has(status) {
		return status
	}
	return dlcv1alpha1.JobStatusOther
}
