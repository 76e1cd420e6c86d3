package dlc

import (
	"container/heap"
	"slices"
	"strings"
)

// collector keeps the distinct jobs of a walk. add reports whether the job was read before; its
// data then replaces the earlier copy (a later page is fresher). What it keeps is charged to its
// memory reservation, and add refuses (an *OverBudgetError) a job the reservation cannot hold.
type collector interface {
	add(job Held) (dup bool, err error)
	// drop returns to the reservation what the collector holds (a walk started again).
	drop()
	// unique is the number of distinct job IDs added, kept or not.
	unique() int
	// result returns the kept jobs, in no particular order.
	result() []Held
}

// newCollector keeps every job, or with k > 0 only the first k by sortBy and order, charging mem.
func newCollector(k int, sortBy, order string, mem *Reservation) collector {
	if k <= 0 {
		return &allJobs{seen: map[string]int{}, charge: charge{mem: mem}}
	}
	t := &topJobs{k: k, sortBy: sortBy, desc: strings.EqualFold(order, "desc"), seen: map[string]*ranked{}, charge: charge{mem: mem}}
	t.heap.before = t.before
	return t
}

// charge is what a collector holds of its memory reservation.
type charge struct {
	mem  *Reservation
	held int64
}

// swap charges the collector for holding in instead of out (either may be nil).
func (c *charge) swap(in, out *Held) error {
	var delta int64
	if in != nil {
		delta += in.bytes()
	}
	if out != nil {
		delta -= out.bytes()
	}
	switch {
	case delta > 0:
		if err := c.mem.take(delta); err != nil {
			return err
		}
	case delta < 0:
		c.mem.give(-delta)
	}
	c.held += delta
	return nil
}

func (c *charge) drop() {
	c.mem.give(c.held)
	c.held = 0
}

type allJobs struct {
	jobs []Held
	seen map[string]int
	charge
}

func (a *allJobs) add(job Held) (bool, error) {
	if i, ok := a.seen[job.JobID]; ok {
		if err := a.swap(&job, &a.jobs[i]); err != nil {
			return true, err
		}
		a.jobs[i] = job
		return true, nil
	}
	if err := a.swap(&job, nil); err != nil {
		return false, err
	}
	a.seen[job.JobID] = len(a.jobs)
	a.jobs = append(a.jobs, job)
	return false, nil
}

// reserve makes room for n jobs in all.
func (a *allJobs) reserve(n int) {
	if n > cap(a.jobs) {
		a.jobs = slices.Grow(a.jobs, n-len(a.jobs))
	}
}

func (a *allJobs) unique() int    { return len(a.seen) }
func (a *allJobs) result() []Held { return a.jobs }

// topJobs keeps the first k jobs in a sort order while jobs stream in: a heap whose root is the
// last of the kept jobs, so memory stays at k jobs however many are read.
type topJobs struct {
	k      int
	sortBy string
	desc   bool
	heap   rankHeap
	// seen holds every ID read; nil for a job that is not (or no longer) kept.
	seen map[string]*ranked
	charge
}

type ranked struct {
	job   Held
	key   string
	index int
}

// before reports whether a sorts before b in the final order (SortJobs' order, ID tie-break).
func (t *topJobs) before(a, b *ranked) bool {
	return compareSorted(a.key, a.job.JobID, b.key, b.job.JobID, t.desc) < 0
}

func (t *topJobs) add(job Held) (bool, error) {
	r, dup := t.seen[job.JobID]
	if r != nil {
		// Kept already: new data may move it.
		if err := t.swap(&job, &r.job); err != nil {
			return true, err
		}
		r.job, r.key = job, job.sortValue(t.sortBy)
		heap.Fix(&t.heap, r.index)
		return true, nil
	}
	r = &ranked{job: job, key: job.sortValue(t.sortBy)}
	t.seen[job.JobID] = nil
	switch {
	case len(t.heap.items) < t.k:
		if err := t.swap(&job, nil); err != nil {
			return dup, err
		}
		heap.Push(&t.heap, r)
	case t.before(r, t.heap.items[0]):
		out := t.heap.items[0]
		if err := t.swap(&job, &out.job); err != nil {
			return dup, err
		}
		t.seen[out.job.JobID] = nil
		r.index = 0
		t.heap.items[0] = r
		heap.Fix(&t.heap, 0)
	default:
		return dup, nil
	}
	t.seen[job.JobID] = r
	return dup, nil
}

func (t *topJobs) unique() int { return len(t.seen) }

func (t *topJobs) result() []Held {
	out := make([]Held, len(t.heap.items))
	for i, r := range t.heap.items {
		out[i] = r.job
	}
	return out
}

// rankHeap is a max-heap by final order: the root is the job that would be cut first.
type rankHeap struct {
	items  []*ranked
	before func(a, b *ranked) bool
}

func (h *rankHeap) Len() int           { return len(h.items) }
func (h *rankHeap) Less(i, j int) bool { return h.before(h.items[j], h.items[i]) }
func (h *rankHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index, h.items[j].index = i, j
}
func (h *rankHeap) Push(x any) {
	r := x.(*ranked)
	r.index = len(h.items)
	h.items = append(h.items, r)
}
func (h *rankHeap) Pop() any {
	n := len(h.items) - 1
	r := h.items[n]
	h.items = h.items[:n]
	return r
}
