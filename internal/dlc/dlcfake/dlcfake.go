// Package dlcfake is an in-process dlc.Lister for tests: an in-memory job list paged like the
// API (creation-time order, inclusive time window, JobId/JobIds), with knobs for the answers a
// hostile or inconsistent endpoint gives: a lying TotalCount, oversize pages, ties ordered
// differently on every request.
package dlcfake

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// Lister serves Jobs. The zero value with Jobs set is an honest API. It is safe for concurrent
// use; set the knobs before the first call.
type Lister struct {
	// Jobs is the whole data set; only the creation-time window, JobId and JobIds filter it.
	Jobs []dlc.JobItem
	// TotalCount, if set, replaces the TotalCount of each page: it gets the page number and the
	// true count and returns the count to send and whether to send one at all.
	TotalCount func(page int32, actual int64) (count int64, present bool)
	// Extra adds this many made-up jobs to every page after the real ones (a page longer than
	// PageSize).
	Extra int
	// ShuffleTies orders the jobs of one creation second at random on every request, as an API
	// that sorts only by a one-second key may.
	ShuffleTies bool
	// Seed seeds ShuffleTies.
	Seed uint64
	// Func, if set, answers every call instead (after the request is recorded).
	Func func(ctx context.Context, req *dlc.ListJobsRequest) (*dlc.ListJobsResponse, error)
	// JSON, if set, is the JSON sent for each job instead of the job's own (a job whose held
	// data does not restore); not used with Func. As the Client does, the fake keeps each
	// job's JSON, so that a walk that packs holds its jobs packed. The job's own JSON is
	// encoding/json's: invalid UTF-8 becomes U+FFFD, and empty slices and maps come back nil,
	// so a test of such data goes through the Client and an HTTP answer instead.
	JSON func(job *dlc.JobItem) []byte

	mu       sync.Mutex
	requests []dlc.ListJobsRequest
	rng      *rand.Rand
}

var _ dlc.Lister = (*Lister)(nil)

// Requests returns a copy of the requests received so far.
func (l *Lister) Requests() []dlc.ListJobsRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.requests)
}

// ListJobs answers one page.
func (l *Lister) ListJobs(ctx context.Context, req *dlc.ListJobsRequest) (*dlc.ListJobsResponse, error) {
	l.mu.Lock()
	l.requests = append(l.requests, *req.Clone())
	if l.rng == nil {
		l.rng = rand.New(rand.NewPCG(l.Seed, 1))
	}
	l.mu.Unlock()
	if l.Func != nil {
		return l.Func(ctx, req)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	matched := l.match(req)
	page, size := int32(1), int32(10)
	if req.PageNumber != nil {
		page = *req.PageNumber
	}
	if req.PageSize != nil {
		size = *req.PageSize
	}
	from := min(int(page-1)*int(size), len(matched))
	to := min(from+int(size), len(matched))
	resp := &dlc.ListJobsResponse{Jobs: slices.Clone(matched[from:to]), TotalCount: int64(len(matched)),
		HasTotalCount: true, RequestID: "fake", Call: dlc.CallStats{Attempts: 1}}
	for i := range l.Extra {
		resp.Jobs = append(resp.Jobs, dlc.JobItem{JobID: "extra-" + strconv.Itoa(i), GmtCreateTime: "2000-01-01T00:00:00Z"})
	}
	if err := l.keepJSON(resp); err != nil {
		return nil, err
	}
	if l.TotalCount != nil {
		resp.TotalCount, resp.HasTotalCount = l.TotalCount(page, resp.TotalCount)
		if !resp.HasTotalCount {
			resp.TotalCount = 0
		}
	}
	return resp, nil
}

// keepJSON records the JSON of each job of resp, as the Client's decoder does.
func (l *Lister) keepJSON(resp *dlc.ListJobsResponse) error {
	raw := make([][]byte, len(resp.Jobs))
	for i := range resp.Jobs {
		if l.JSON != nil {
			raw[i] = l.JSON(&resp.Jobs[i])
			continue
		}
		data, err := json.Marshal(&resp.Jobs[i])
		if err != nil {
			return fmt.Errorf("encoding job %s: %w", resp.Jobs[i].JobID, err)
		}
		raw[i] = data
	}
	resp.SetJobsJSON(raw)
	return nil
}

// match filters and orders the jobs for req.
func (l *Lister) match(req *dlc.ListJobsRequest) []dlc.JobItem {
	var ids map[string]bool
	switch {
	case req.JobID != nil && *req.JobID != "":
		ids = map[string]bool{*req.JobID: true}
	case len(req.JobIDs) > 0:
		ids = map[string]bool{}
		for _, id := range req.JobIDs {
			ids[id] = true
		}
	}
	var out []dlc.JobItem
	for _, j := range l.Jobs {
		if ids != nil && !ids[j.JobID] {
			continue
		}
		// Both bounds are inclusive, as the pager assumes and the simulator implements.
		if req.StartTime != nil && j.GmtCreateTime < *req.StartTime || req.EndTime != nil && j.GmtCreateTime > *req.EndTime {
			continue
		}
		out = append(out, j)
	}
	desc := req.Order == nil || !strings.EqualFold(*req.Order, "asc")
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ShuffleTies {
		l.rng.Shuffle(len(out), func(i, k int) { out[i], out[k] = out[k], out[i] })
	}
	slices.SortStableFunc(out, func(a, b dlc.JobItem) int {
		c := strings.Compare(a.GmtCreateTime, b.GmtCreateTime)
		if c == 0 && !l.ShuffleTies {
			c = strings.Compare(a.JobID, b.JobID)
		}
		if desc {
			return -c
		}
		return c
	})
	return out
}
