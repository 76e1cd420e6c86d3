package dlc

import (
	"fmt"
	"sync"

	"golang.org/x/sync/semaphore"
)

// MemoryBudget bounds, in bytes, what the listings of every sync hold at once. A listing is
// written only once it is known complete and consistent, so it holds each job it keeps until then
// (packed: its compressed JSON); without a bound in bytes, a query of 10,000 jobs with large
// fields, or an endpoint sending pages of 8 MiB, holds hundreds of MiB, and four syncs at once
// four times that. A walk that would pass the budget stops with an *OverBudgetError instead.
// The page being read (at most MaxBodyBytes and its decoding, per sync) is not counted.
type MemoryBudget struct {
	size int64
	sem  *semaphore.Weighted
}

// NewMemoryBudget returns a budget of size bytes.
func NewMemoryBudget(size int64) *MemoryBudget {
	return &MemoryBudget{size: size, sem: semaphore.NewWeighted(size)}
}

// Size is the budget in bytes.
func (b *MemoryBudget) Size() int64 { return b.size }

// Reserve starts the reservation of one sync's listing; Release it when the listing is dropped.
// A nil budget gives a reservation that never refuses.
func (b *MemoryBudget) Reserve() *Reservation { return &Reservation{budget: b} }

// Reservation is what one sync's listings hold of a MemoryBudget. It is safe for concurrent use.
type Reservation struct {
	budget *MemoryBudget
	mu     sync.Mutex
	held   int64
}

// OverBudgetError says a listing was stopped before it held more than its budget allows.
type OverBudgetError struct {
	// Held is what the listing held, Need what the next job needed, Budget the whole budget.
	Held, Need, Budget int64
	// Alone is true when the listing alone needs more than the whole budget: waiting for other
	// syncs to end will not help.
	Alone bool
}

func (e *OverBudgetError) Error() string {
	if e.Alone {
		return fmt.Sprintf("the listing holds more than the %s that all listings may hold at once (--listing-memory); "+
			"it held %s when it was stopped", mib(e.Budget), mib(e.Held))
	}
	return fmt.Sprintf("the listings of other syncs hold most of the %s that all listings may hold at once (--listing-memory); "+
		"this one held %s when it was stopped", mib(e.Budget), mib(e.Held))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// take reserves n more bytes, or refuses with an *OverBudgetError.
func (r *Reservation) take(n int64) error {
	if r == nil || r.budget == nil || n <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.budget.sem.TryAcquire(n) {
		return &OverBudgetError{Held: r.held, Need: n, Budget: r.budget.size, Alone: r.held+n > r.budget.size}
	}
	r.held += n
	return nil
}

// give returns n bytes (a job the listing no longer holds).
func (r *Reservation) give(n int64) {
	if r == nil || r.budget == nil || n <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n = min(n, r.held)
	r.held -= n
	r.budget.sem.Release(n)
}

// Held is what the reservation holds now.
func (r *Reservation) Held() int64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

// Release returns everything the reservation holds. It may be called more than once.
func (r *Reservation) Release() {
	if r == nil {
		return
	}
	r.give(r.Held())
}

// unpackedJobBytes is what a job held decoded costs, about (see packed.go): a walk that does not
// pack, or a Lister that keeps no JSON, holds decoded jobs.
const unpackedJobBytes = 5 << 10

// packedOverhead is what a packed job costs besides its compressed data and its header's
// strings: its Held, and the collector's entries.
const packedOverhead = 384

// bytes is what a walk's collector holds for the job. The header's strings count as they are:
// they are kept uncompressed, and an endpoint may send a DisplayName of megabytes that
// compresses to nothing.
func (h *Held) bytes() int64 {
	header := h.headerBytes()
	switch {
	case h.packed != nil:
		return int64(len(h.packed.data)) + packedOverhead + header
	case h.whole != nil:
		return max(unpackedJobBytes, header)
	}
	return 0
}

// headerBytes is what the header's strings hold.
func (h *Held) headerBytes() int64 {
	return int64(len(h.JobID) + len(h.DisplayName) + len(h.JobType) + len(h.Status) + len(h.GmtCreateTime) + len(h.GmtFinishTime))
}
