package dlc

import (
	"errors"
	"fmt"
)

// Held is one job of a listing as the listing holds it until its caller writes it: the fields a
// walk and its caller decide with (ID, status, and the fields a listing sorts by), and the whole
// job, which only Job gives out. A walk that packs (PageOptions.Pack) holds the whole job as its
// compressed JSON, so the whole job is a separate type: a caller cannot mirror a held job's
// header as if it were the job.
type Held struct {
	JobID         string
	DisplayName   string
	JobType       string
	Status        string
	GmtCreateTime string
	GmtFinishTime string

	// Exactly one of whole and packed is set until Release.
	whole  *JobItem
	packed *packedJob
}

// ErrReleased is the error of Held.Job after Release: the job's data is gone.
var ErrReleased = errors.New("the job's data was released")

// headerOf is a Held of job that holds no data yet.
func headerOf(job *JobItem) Held {
	return Held{JobID: job.JobID, DisplayName: job.DisplayName, JobType: job.JobType, Status: job.Status,
		GmtCreateTime: job.GmtCreateTime, GmtFinishTime: job.GmtFinishTime}
}

// holdWhole holds job decoded: a walk that does not pack, or a Lister that kept no JSON.
func holdWhole(job *JobItem) Held {
	held := headerOf(job)
	held.whole = job
	return held
}

// Job returns the whole job: as it was decoded, or decoded again from its packed JSON
// (ErrUnpack if that fails; ErrReleased after Release).
func (h *Held) Job() (JobItem, error) {
	switch {
	case h.whole != nil:
		return *h.whole, nil
	case h.packed != nil:
		return h.packed.unpack(h.JobID)
	}
	return JobItem{}, ErrReleased
}

// IsPacked reports whether the job is held as its compressed JSON.
func (h *Held) IsPacked() bool { return h.packed != nil }

// Release drops the job's data, keeping the header, and returns what the data held to mem (nil:
// no budget): a caller that wrote the job keeps only what it counts with. The header's strings
// stay charged until the reservation is released.
func (h *Held) Release(mem *Reservation) {
	if h.whole == nil && h.packed == nil {
		return
	}
	mem.give(h.bytes() - h.headerBytes())
	h.whole, h.packed = nil, nil
}

// discard drops the job whole, header included, and returns all it held to mem: a listing's
// job that its caller never sees (cut by MaxJobs, or read twice).
func (h *Held) discard(mem *Reservation) {
	mem.give(h.bytes())
	*h = Held{}
}

// Jobs returns the whole jobs of a listing, in its order.
func Jobs(held []Held) ([]JobItem, error) {
	out := make([]JobItem, len(held))
	for i := range held {
		job, err := held[i].Job()
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", held[i].JobID, err)
		}
		out[i] = job
	}
	return out, nil
}

// sortValue is the value the job sorts by for a ListJobs SortBy field (GmtCreateTime when the
// field is unknown). The simulator has its own ordering (internal/dlcsim/order.go), written from
// the API reference, so a mistake here shows in the tests instead of being shared.
func (h *Held) sortValue(sortBy string) string {
	switch sortBy {
	case SortByDisplayName:
		return h.DisplayName
	case SortByJobType:
		return h.JobType
	case SortByStatus:
		return h.Status
	case SortByFinishTime:
		return h.GmtFinishTime
	default:
		return h.GmtCreateTime
	}
}
