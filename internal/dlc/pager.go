package dlc

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// PageOptions tunes a walk over every page of a ListJobs filter.
type PageOptions struct {
	// MaxJobs keeps at most this many jobs, the first ones in the request's sort order (0: all).
	MaxJobs int
	// PageSize is the page size (default and maximum MaxPageSize).
	PageSize int32
	// MaxWalks is how often an inconsistent walk is started again before giving up (default 3).
	MaxWalks int
	// Within is the window used when the request sets neither StartTime nor EndTime
	// (default DefaultWindow).
	Within time.Duration
	// Now returns the current time (tests pin it).
	Now func() time.Time
}

// WalkStats describes a walk.
type WalkStats struct {
	// Pages is the number of pages read; APICalls the HTTP requests sent, retries included.
	Pages, APICalls, Retries, Throttled int
	// Walks is the number of walks started (more than one after an inconsistent walk).
	Walks int
	// WithoutID counts the jobs the last walk skipped because the API sent them without a JobId:
	// they cannot be told apart, so they cannot be mirrored.
	WithoutID int
	// Bytes is the number of response body bytes read.
	Bytes int64
	// Duration is the wall time of the whole listing.
	Duration time.Duration
	// TotalCount is the API's count of matching jobs (of the last walk).
	TotalCount int64
	// Truncated is true when more jobs matched than MaxJobs allowed to keep.
	Truncated bool
	// Complete is true when every matching job was considered (false when the API's page limit
	// of MaxPageNumber × PageSize cut the walk short).
	Complete bool
	// Consistent is false when the last walk saw the result set move under it: TotalCount changed,
	// a page came back short before the end, or a job appeared twice. Never prune on such a walk.
	Consistent bool
	// Inconsistency says what was wrong with the last inconsistent walk.
	Inconsistency string
	// StartTime and EndTime are the pinned window the walk used.
	StartTime, EndTime string
}

// ListAll walks every page of the filter in req and returns each matching job once.
//
// The window is pinned before the first page (a relative window becomes absolute), so jobs
// created during the walk cannot shift pages. Pages are read in creation-time order, a key that
// status changes do not move; when the request sorts by another field, every job is read and
// sorted here, then cut to MaxJobs. Jobs are de-duplicated by ID; a walk that saw the result set
// move is repeated up to MaxWalks times and reported with Consistent false if it never settles.
func ListAll(ctx context.Context, lister Lister, req *ListJobsRequest, opts PageOptions) ([]JobItem, WalkStats, error) {
	start := time.Now()
	opts = opts.withDefaults()
	walkReq := pinWindow(req, opts)
	userSort := "GmtCreateTime"
	if req.SortBy != nil && *req.SortBy != "" {
		userSort = *req.SortBy
	}
	userOrder := "desc"
	if req.Order != nil && *req.Order != "" {
		userOrder = strings.ToLower(*req.Order)
	}
	walkOrder := userOrder
	limit := opts.MaxJobs
	if userSort != "GmtCreateTime" {
		// Note: another sort key (Status, DisplayName, ...) can move a job between pages while
		// we walk; read everything by creation time and sort here instead.
		walkOrder, limit = "desc", 0
	}
	walkReq.SortBy, walkReq.Order = Ptr("GmtCreateTime"), Ptr(walkOrder)
	walkReq.PageSize = Ptr(opts.PageSize)

	stats := WalkStats{StartTime: deref(walkReq.StartTime), EndTime: deref(walkReq.EndTime)}
	var jobs []JobItem
	for stats.Walks < opts.MaxWalks {
		stats.Walks++
		var w walk
		err := w.run(ctx, lister, walkReq, limit, &stats)
		if err != nil {
			stats.Duration = time.Since(start)
			return nil, stats, err
		}
		jobs = w.jobs
		stats.TotalCount, stats.Complete, stats.WithoutID = w.total, w.complete, w.withoutID
		stats.Consistent, stats.Inconsistency = w.inconsistency == "", w.inconsistency
		if stats.Consistent {
			break
		}
	}
	SortJobs(jobs, userSort, userOrder)
	if opts.MaxJobs > 0 && len(jobs) > opts.MaxJobs {
		jobs = jobs[:opts.MaxJobs]
	}
	stats.Truncated = opts.MaxJobs > 0 && stats.TotalCount > int64(opts.MaxJobs)
	stats.Retries = stats.APICalls - stats.Pages
	stats.Duration = time.Since(start)
	return jobs, stats, nil
}

func (o PageOptions) withDefaults() PageOptions {
	if o.PageSize <= 0 || o.PageSize > MaxPageSize {
		o.PageSize = MaxPageSize
	}
	if o.MaxWalks <= 0 {
		o.MaxWalks = 3
	}
	if o.Within <= 0 {
		o.Within = DefaultWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// pinWindow copies req with an absolute window that ends before now.
func pinWindow(req *ListJobsRequest, opts PageOptions) *ListJobsRequest {
	out := req.Clone()
	// Note: times have a resolution of one second and EndTime is inclusive, so a window ending
	// at the current second would still admit jobs created while we walk; end a second earlier.
	// They are listed by the next sync.
	now := opts.Now().Add(-time.Second)
	if out.StartTime == nil && out.EndTime == nil {
		out.StartTime = Ptr(FormatTime(now.Add(time.Second - opts.Within)))
	}
	if out.EndTime == nil {
		out.EndTime = Ptr(FormatTime(now))
	}
	return out
}

// walk is one pass over the pages.
type walk struct {
	jobs          []JobItem
	seen          map[string]int
	total         int64
	complete      bool
	inconsistency string
	withoutID     int
}

func (w *walk) run(ctx context.Context, lister Lister, base *ListJobsRequest, limit int, stats *WalkStats) error {
	w.seen = map[string]int{}
	pageSize := int(*base.PageSize)
	for page := int32(1); ; page++ {
		if page > MaxPageNumber {
			// The API serves at most MaxPageNumber pages: the rest is out of reach of one filter.
			return nil
		}
		req := base.Clone()
		req.PageNumber = Ptr(page)
		resp, err := lister.ListJobs(ctx, req)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				stats.APICalls += e.Attempts
			}
			return fmt.Errorf("listing page %d: %w", page, err)
		}
		stats.Pages++
		stats.APICalls += resp.Call.Attempts
		stats.Throttled += resp.Call.Throttled
		stats.Bytes += resp.Call.Bytes

		if page == 1 {
			w.total = resp.TotalCount
		} else if resp.TotalCount != w.total {
			w.note(fmt.Sprintf("TotalCount changed from %d to %d during the walk", w.total, resp.TotalCount))
		}
		offset := int64(page-1) * int64(pageSize)
		expected := min(int64(pageSize), max(w.total-offset, 0))
		if int64(len(resp.Jobs)) < expected {
			w.note(fmt.Sprintf("page %d had %d jobs, expected %d", page, len(resp.Jobs), expected))
		}
		for _, job := range resp.Jobs {
			if job.JobID == "" {
				w.withoutID++
				continue
			}
			if i, dup := w.seen[job.JobID]; dup {
				// Note: even an identical duplicate means the offsets moved, so a job may have
				// been skipped elsewhere.
				if reflect.DeepEqual(w.jobs[i], job) {
					w.note(fmt.Sprintf("job %s appeared twice", job.JobID))
				} else {
					w.note(fmt.Sprintf("job %s appeared twice with different data", job.JobID))
					w.jobs[i] = job
				}
				continue
			}
			w.seen[job.JobID] = len(w.jobs)
			w.jobs = append(w.jobs, job)
		}
		if limit > 0 && len(w.jobs) >= limit {
			w.complete = true
			return nil
		}
		if len(resp.Jobs) < pageSize || offset+int64(len(resp.Jobs)) >= w.total {
			w.complete = true
			return nil
		}
	}
}

func (w *walk) note(problem string) {
	if w.inconsistency == "" {
		w.inconsistency = problem
	}
}

// SortJobs sorts jobs by a ListJobs SortBy field and order, with the job ID as tie-break so the
// order is total and stable. Times compare as strings (the API's layout sorts chronologically);
// a job without the field sorts as the empty string.
func SortJobs(jobs []JobItem, sortBy, order string) {
	desc := strings.EqualFold(order, "desc")
	slices.SortStableFunc(jobs, func(a, b JobItem) int {
		c := strings.Compare(SortValue(&a, sortBy), SortValue(&b, sortBy))
		if c == 0 {
			c = strings.Compare(a.JobID, b.JobID)
		}
		if desc {
			return -c
		}
		return c
	})
}

// SortValue is the value a job sorts by for a ListJobs SortBy field (GmtCreateTime when the
// field is unknown). The simulator orders by the same values, so both agree on an order.
func SortValue(j *JobItem, sortBy string) string {
	switch sortBy {
	case "DisplayName":
		return j.DisplayName
	case "JobType":
		return j.JobType
	case "Status":
		return j.Status
	case "GmtFinishTime":
		return j.GmtFinishTime
	default:
		return j.GmtCreateTime
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
