package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/sets"

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

// fairnessWait is how long a query waits when its namespace already uses its share of workers.
const fairnessWait = 2 * time.Second

// namespaceSlots counts the running syncs per namespace, so that no namespace holds more than
// its share of the sync workers.
type namespaceSlots struct {
	mu      sync.Mutex
	running map[string]int
	total   int
}

// acquire takes a sync slot of a namespace: at most half of the workers (at least one) per
// namespace, and, for a namespace that already runs a sync, never the last free one: that one is
// kept for a namespace that runs none, so two slow namespaces cannot hold every worker (with as
// many slow namespaces as workers, the syncs' deadline is the bound). It returns false when the
// namespace may not start a sync now.
func (s *namespaceSlots) acquire(namespace string, workers int) (release func(), ok bool) {
	limit := max(1, workers/2)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = map[string]int{}
	}
	mine := s.running[namespace]
	if mine >= limit || s.total >= workers || (mine > 0 && s.total >= workers-1) {
		return nil, false
	}
	s.running[namespace]++
	s.total++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.total--
		if s.running[namespace]--; s.running[namespace] <= 0 {
			delete(s.running, namespace)
		}
	}, true
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
