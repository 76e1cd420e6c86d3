package dlc

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// KnownJob is what a caller holds of a job from an earlier listing.
type KnownJob struct {
	JobID string
	// GmtCreateTime is the job's creation time in the API's layout.
	GmtCreateTime string
	// Status is the job's last known status.
	Status string
}

// Changes is the difference between the jobs a caller knows and what the API lists now.
type Changes struct {
	// Jobs are the new jobs and the fresh data of every known job that was not terminal, held.
	Jobs []Held
	// Gone are the IDs of known jobs the API no longer lists: deleted, or out of the time window.
	// Empty unless Stats is both Complete and Consistent.
	Gone []string
	// Stats sums the walks; TotalCount is not meaningful and Complete/Consistent cover them all.
	Stats WalkStats
}

// ChangeOptions tunes ListChanges.
type ChangeOptions struct {
	PageOptions
	// Overlap is how far before the newest known creation time the listing of new jobs starts,
	// for jobs that became visible late (default DefaultOverlap).
	Overlap time.Duration
}

// DefaultOverlap is the default ChangeOptions.Overlap.
const DefaultOverlap = time.Minute

// IsTerminal reports whether a job status is final: the job's data no longer changes.
func IsTerminal(status string) bool {
	return status == StatusSucceeded || status == StatusFailed || status == StatusStopped
}

// ListChanges lists what changed since the caller's last listing of req, for a filter whose
// every criterion is fixed when a job is created (workspace, type, name, user, tags, resources,
// creation-time window): such a filter matches a job for its whole life, so only new jobs and the
// jobs that are still moving need reading. It reads the jobs created since the newest known
// creation time (minus an overlap) and the known jobs that are not terminal, by JobIds in batches
// of a page. Known jobs outside the window and known non-terminal jobs the API no longer returns
// are Gone; known terminal jobs are not read at all, so their deletion is seen only by a full
// listing (ListAll).
//
// The caller must know at least one job; with none there is nothing to start from and ListAll is
// the right call.
func ListChanges(ctx context.Context, lister Lister, req *ListJobsRequest, known []KnownJob, opts ChangeOptions) (Changes, error) {
	start := time.Now()
	page := opts.withDefaults()
	if opts.Overlap <= 0 {
		opts.Overlap = DefaultOverlap
	}
	window := pinWindow(req, page)
	if window.StartTime == nil {
		return Changes{}, fmt.Errorf("listing changes needs a window start; list in full instead")
	}
	from, to := *window.StartTime, *window.EndTime

	var out Changes
	out.Stats = WalkStats{StartTime: from, EndTime: to, Complete: true, Consistent: true}
	walkOpts := PageOptions{PageSize: page.PageSize, MaxWalks: page.MaxWalks, Now: page.Now, Pack: page.Pack, Memory: page.Memory}
	if page.Pack {
		// One dictionary for the listing of new jobs and every batch of moving ones: a
		// dictionary per batch of 100 cost more than the jobs it packed.
		walkOpts.packer = &packer{mem: page.Memory}
	}
	collect := func(r *ListJobsRequest, maxJobs int) ([]Held, error) {
		// The creation-time order of ListAll is kept by clearing the user's sort; the
		// caller sorts and cuts.
		r.SortBy, r.Order, r.PageNumber, r.PageSize = nil, nil, nil, nil
		o := walkOpts
		o.MaxJobs = maxJobs
		jobs, stats, err := ListAll(ctx, lister, r, o)
		out.Stats.add(stats)
		return jobs, err
	}

	since, err := newJobsSince(known, from, opts.Overlap)
	if err != nil {
		return Changes{}, err
	}
	newReq := window.Clone()
	newReq.StartTime = Ptr(since)
	// A burst of more new jobs than MaxJobs is read only up to one more than that: the
	// caller keeps at most MaxJobs and lists in full when more match.
	newLimit := 0
	if opts.MaxJobs > 0 {
		newLimit = opts.MaxJobs + 1
	}
	fresh, err := collect(newReq, newLimit)
	if err != nil {
		return out, fmt.Errorf("listing jobs created since %s: %w", since, err)
	}
	seen := make(map[string]bool, len(fresh))
	for _, j := range fresh {
		seen[j.JobID] = true
	}
	out.Jobs = fresh

	gone, moving := sortKnown(known, from, to, since, seen)
	out.Gone = gone
	if err := rereadByID(moving, int(page.PageSize), window, collect, seen, page.Memory, &out); err != nil {
		return out, err
	}
	if !out.Stats.Consistent || !out.Stats.Complete {
		// A job missing from a listing that moved may only be late, and one missing from
		// a listing cut by the page limit may be on a page never read; never call it gone.
		out.Gone = nil
	}
	out.Stats.Duration = time.Since(start)
	return out, nil
}

// newJobsSince is where the listing of new jobs starts: the creation time of the newest known
// job, less the overlap, within the window that starts at from.
func newJobsSince(known []KnownJob, from string, overlap time.Duration) (string, error) {
	newest := ""
	for _, k := range known {
		newest = max(newest, k.GmtCreateTime)
	}
	if newest == "" {
		return "", fmt.Errorf("listing changes needs at least one known job with a creation time")
	}
	since := from
	if t, err := time.Parse(TimeLayout, newest); err == nil {
		since = max(from, FormatTime(t.Add(-overlap)))
	}
	return since, nil
}

// sortKnown sorts the known jobs after the listing of new jobs (seen): out of the window
// [from, to] is gone, and so is one of the range that listing covered (since on) that it did not
// return; terminal stays as it is; moving is to be re-read, in ID order.
func sortKnown(known []KnownJob, from, to, since string, seen map[string]bool) (gone, moving []string) {
	for _, k := range known {
		switch {
		case k.GmtCreateTime < from || k.GmtCreateTime > to,
			k.GmtCreateTime >= since && !seen[k.JobID]:
			gone = append(gone, k.JobID)
		case seen[k.JobID], IsTerminal(k.Status):
		default:
			moving = append(moving, k.JobID)
		}
	}
	slices.Sort(moving)
	return gone, moving
}

// rereadByID lists the moving jobs by ID, pageSize IDs per listing: a job not seen yet joins
// out.Jobs, one the listing does not return joins out.Gone.
func rereadByID(moving []string, pageSize int, window *ListJobsRequest, collect func(*ListJobsRequest, int) ([]Held, error),
	seen map[string]bool, memory *Reservation, out *Changes) error {
	for batch := range slices.Chunk(moving, pageSize) {
		r := window.Clone()
		// The API lets JobId win over JobIds; a filter naming one job lists at most that
		// job, and every known job is that job, so the batch still answers for each of them.
		r.JobIDs = batch
		jobs, err := collect(r, 0)
		if err != nil {
			return fmt.Errorf("re-reading %d jobs by ID: %w", len(batch), err)
		}
		got := make(map[string]bool, len(jobs))
		for i, j := range jobs {
			got[j.JobID] = true
			if seen[j.JobID] {
				// Read already as a new job: this copy is dropped.
				jobs[i].discard(memory)
				continue
			}
			seen[j.JobID] = true
			out.Jobs = append(out.Jobs, j)
		}
		for _, id := range batch {
			if !got[id] {
				out.Gone = append(out.Gone, id)
			}
		}
	}
	return nil
}

// add sums the counters of a walk and keeps the worst verdicts.
func (s *WalkStats) add(o WalkStats) {
	s.Pages += o.Pages
	s.APICalls += o.APICalls
	s.Retries += o.Retries
	s.Throttled += o.Throttled
	s.Walks += o.Walks
	s.WithoutID += o.WithoutID
	s.Bytes += o.Bytes
	s.TotalCount += o.TotalCount
	s.Complete = s.Complete && o.Complete
	if !o.Consistent && s.Consistent {
		s.Consistent, s.Inconsistency = false, o.Inconsistency
	}
}
