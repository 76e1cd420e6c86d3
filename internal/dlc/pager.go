package dlc

import (
	"context"
	"errors"
	"fmt"
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
	// Pack holds each job as its compressed JSON until the caller calls Held.Job, for a caller
	// that keeps a large listing while it writes it. Jobs of a Lister that does not keep the
	// JSON it read are held decoded.
	Pack bool
	// Memory, if set, is charged for every job the listing holds; a job it cannot hold stops
	// the listing with an *OverBudgetError. The caller releases it when it drops the jobs.
	Memory *Reservation

	// packer, when set, packs instead of a packer of this listing's own (ListChanges shares
	// one across its listings).
	packer *packer
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
	// Complete is true when the walk reached the end of the listing: a page shorter than
	// PageSize (a full last page is followed by one more request, which comes back empty), or
	// as many jobs as the filter can match (JobId/JobIds), or MaxJobs jobs in creation-time
	// order. False when the API's page limit of MaxPageNumber × PageSize cut the walk short.
	Complete bool
	// Consistent is true only when the pages agree with each other and with their count: every
	// page carried the same, non-negative TotalCount; no page held more jobs than PageSize; the
	// distinct jobs read are exactly TotalCount when the walk reached the end (never more, also
	// when MaxJobs stopped it). Jobs read twice are tolerated when the count still adds up (the
	// API orders jobs of the same creation second differently from one request to the next);
	// when it does not, every creation second that straddles a page boundary is read again on
	// its own before the walk is called inconsistent. Never prune on a walk that is not both
	// Complete and Consistent.
	Consistent bool
	// Inconsistency says what was wrong with the last inconsistent walk.
	Inconsistency string
	// StartTime and EndTime are the pinned window the walk used.
	StartTime, EndTime string
}

// ListAll walks every page of the filter in req and returns each matching job once, held
// (Jobs gives the whole jobs of a listing).
//
// The window is pinned before the first page (a relative window becomes absolute), so jobs
// created during the walk cannot shift pages. Pages are read in creation-time order, a key that
// status changes do not move; when the request sorts by another field, every job is read and
// only the first MaxJobs in that order are kept while walking (a bounded heap). Jobs are
// de-duplicated by ID (the data of the last page wins); a walk that is not consistent (see
// WalkStats) is repeated up to MaxWalks times and reported with Consistent false if it never
// settles. Paging continues while pages are full, so a listing whose last page is full costs
// one more request, which must come back empty.
func ListAll(ctx context.Context, lister Lister, req *ListJobsRequest, opts PageOptions) ([]Held, WalkStats, error) {
	start := time.Now()
	opts = opts.withDefaults()
	walkReq := pinWindow(req, opts)
	userSort := SortByCreateTime
	if req.SortBy != nil && *req.SortBy != "" {
		userSort = *req.SortBy
	}
	userOrder := "desc"
	if req.Order != nil && *req.Order != "" {
		userOrder = strings.ToLower(*req.Order)
	}
	walkOrder := userOrder
	limit, topK := opts.MaxJobs, 0
	if userSort != SortByCreateTime {
		// Another sort key (Status, DisplayName, ...) can move a job between pages while
		// we walk; read everything by creation time and keep the first MaxJobs here instead.
		walkOrder, limit, topK = "desc", 0, opts.MaxJobs
	}
	walkReq.SortBy, walkReq.Order = Ptr(SortByCreateTime), Ptr(walkOrder)
	walkReq.PageSize = Ptr(opts.PageSize)

	stats := WalkStats{StartTime: deref(walkReq.StartTime), EndTime: deref(walkReq.EndTime)}
	// One packer for every walk: a walk started again packs with the dictionary of the first.
	pack := opts.packer
	if opts.Pack && pack == nil {
		pack = &packer{mem: opts.Memory}
	}
	var w *walk
	for stats.Walks < opts.MaxWalks {
		stats.Walks++
		if w != nil {
			// The jobs of an inconsistent walk are dropped; a new walk starts from none.
			w.keep.drop()
		}
		w = &walk{lister: lister, base: walkReq, stats: &stats, limit: limit, bound: filterBound(walkReq),
			keep: newCollector(topK, userSort, userOrder, opts.Memory), pack: pack}
		if err := w.run(ctx); err != nil {
			w.keep.drop()
			stats.Duration = time.Since(start)
			return nil, stats, err
		}
		stats.TotalCount, stats.Complete, stats.WithoutID = w.total, w.complete, w.withoutID
		stats.Consistent, stats.Inconsistency = w.inconsistency == "", w.inconsistency
		if stats.Consistent {
			break
		}
	}
	jobs := w.keep.result()
	sortHeld(jobs, userSort, userOrder)
	if opts.MaxJobs > 0 && len(jobs) > opts.MaxJobs {
		for i := range jobs[opts.MaxJobs:] {
			jobs[opts.MaxJobs+i].discard(opts.Memory)
		}
		// Cleared, so that their data goes with them, not with the whole array.
		clear(jobs[opts.MaxJobs:])
		jobs = jobs[:opts.MaxJobs]
	}
	stats.Truncated = opts.MaxJobs > 0 && (stats.TotalCount > int64(opts.MaxJobs) || w.keep.unique() > opts.MaxJobs)
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
	// Times have a resolution of one second and EndTime is inclusive, so a window ending
	// at the current second would still admit jobs created while we walk; end a second earlier.
	// They are listed by the next sync.
	now := opts.Now().Add(-time.Second)
	if out.StartTime == nil && out.EndTime == nil {
		out.StartTime = Ptr(FormatTime(now.Add(time.Second - opts.Within)))
	}
	if out.EndTime == nil {
		out.EndTime = Ptr(FormatTime(now))
	}
	if out.StartTime == nil {
		// An end without a start would leave the start to the API's default (now − 7 days),
		// an empty or inverted window once the end is older than that, which lists nothing and
		// looks complete. Admission refuses such a window now; one stored before means
		// [end − Within, end].
		if end, err := time.Parse(TimeLayout, *out.EndTime); err == nil {
			out.StartTime = Ptr(FormatTime(end.Add(-opts.Within)))
		}
	}
	return out
}

// filterBound is the most jobs a filter can match whatever the API holds: one for a JobId (the
// API lets JobId win over JobIds), the distinct IDs of JobIds; 0 when the filter sets no bound.
func filterBound(req *ListJobsRequest) int {
	switch {
	case req.JobID != nil && *req.JobID != "":
		return 1
	case len(req.JobIDs) > 0:
		ids := slices.Clone(req.JobIDs)
		slices.Sort(ids)
		return len(slices.Compact(ids))
	}
	return 0
}

// walk is one pass over the pages.
type walk struct {
	lister Lister
	base   *ListJobsRequest
	stats  *WalkStats
	// limit stops the walk once that many distinct jobs were read (creation-time order only).
	limit int
	// bound is the most jobs the filter can match (filterBound); reaching it ends the walk.
	bound int
	keep  collector
	// pack, when set, compresses each job before keep holds it (PageOptions.Pack).
	pack *packer

	total         int64
	complete      bool
	inconsistency string
	withoutID     int
}

// run reads the pages, then judges what they add up to.
func (w *walk) run(ctx context.Context) error {
	res, err := w.pages(ctx, w.base, true, w.keep.add)
	if err != nil {
		return err
	}
	w.total, w.complete = res.total, res.reachedEnd || res.stoppedByLimit
	// Jobs sent without an ID are counted by the API too; they cannot be told apart, so
	// each one counts as a job of its own.
	unique := int64(w.keep.unique()) + int64(w.withoutID)
	if w.inconsistency == "" && unique < w.total && (res.reachedEnd || res.duplicates > 0) {
		// Fewer distinct jobs than counted after reading every page, or jobs read twice
		// before MaxJobs stopped the walk: two requests may have ordered the jobs of one
		// creation second differently. Read each straddling second on its own, then count again.
		if err := w.repairTies(ctx, res.straddling); err != nil {
			return err
		}
		unique = int64(w.keep.unique()) + int64(w.withoutID)
	}
	switch {
	case unique > w.total:
		w.note(fmt.Sprintf("the walk read %d distinct jobs, more than TotalCount %d", unique, w.total))
	case res.reachedEnd && unique < w.total:
		w.note(fmt.Sprintf("the walk read %d distinct jobs, expected TotalCount %d", unique, w.total))
	case w.bound > 0 && unique > int64(w.bound):
		w.note(fmt.Sprintf("the walk read %d distinct jobs, more than the %d IDs of the filter", unique, w.bound))
	}
	return nil
}

// pagesResult is what one pass over the pages of a request saw.
type pagesResult struct {
	// reachedEnd: a page shorter than PageSize, or as many jobs as the filter can match.
	reachedEnd bool
	// stoppedByLimit: MaxJobs distinct jobs were read (creation-time order).
	stoppedByLimit bool
	// total is the TotalCount of the first page.
	total                int64
	distinct, duplicates int
	// straddling are the creation seconds that the last job of a page and the first job of the
	// next share: the API orders the jobs of one second arbitrarily, so such a second may have
	// lost a job between the two requests.
	straddling []string
}

// pages walks the pages of req, handing each job with an ID to add (which reports a job it
// already had), and checks each page on its own. main is false for a tie repair, which neither
// stops at MaxJobs nor counts jobs without ID twice.
func (w *walk) pages(ctx context.Context, req *ListJobsRequest, main bool, add func(Held) (bool, error)) (pagesResult, error) {
	var res pagesResult
	pageSize := int(*req.PageSize)
	prevLast := ""
	for page := int32(1); ; page++ {
		if page > MaxPageNumber {
			// The API serves at most MaxPageNumber pages: the rest is out of reach of one filter.
			return res, nil
		}
		resp, err := w.fetchPage(ctx, req, page)
		if err != nil {
			return res, err
		}
		w.checkPage(&res, resp, page, pageSize, main)
		if len(resp.Jobs) > 0 && prevLast != "" && resp.Jobs[0].GmtCreateTime == prevLast {
			res.straddling = append(res.straddling, prevLast)
		}
		if err := w.holdJobs(&res, resp, main, add); err != nil {
			return res, fmt.Errorf("holding the jobs of page %d: %w", page, err)
		}
		if n := len(resp.Jobs); n > 0 {
			prevLast = resp.Jobs[n-1].GmtCreateTime
		}
		if w.lastPage(&res, len(resp.Jobs), pageSize, main) {
			return res, nil
		}
	}
}

// fetchPage reads one page of req and counts the calls, retries included, in the walk's stats.
func (w *walk) fetchPage(ctx context.Context, req *ListJobsRequest, page int32) (*ListJobsResponse, error) {
	r := req.Clone()
	r.PageNumber = Ptr(page)
	resp, err := w.lister.ListJobs(ctx, r)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			w.stats.APICalls += e.Attempts
		}
		return nil, fmt.Errorf("listing page %d: %w", page, err)
	}
	w.stats.Pages++
	w.stats.APICalls += resp.Call.Attempts
	w.stats.Throttled += resp.Call.Throttled
	w.stats.Bytes += resp.Call.Bytes
	return resp, nil
}

// checkPage notes what is wrong with one page on its own (its TotalCount, its size) and takes
// the count from the first page, reserving room for the jobs a main walk will keep.
func (w *walk) checkPage(res *pagesResult, resp *ListJobsResponse, page int32, pageSize int, main bool) {
	switch {
	case !resp.HasTotalCount:
		w.note(fmt.Sprintf("page %d carried no TotalCount", page))
	case resp.TotalCount < 0:
		w.note(fmt.Sprintf("page %d carried a negative TotalCount %d", page, resp.TotalCount))
	}
	if page == 1 {
		res.total = resp.TotalCount
		if r, ok := w.keep.(interface{ reserve(int) }); ok && main && w.limit > 0 && resp.TotalCount > 0 {
			// Room for every job the walk will keep, at once: growing a slice of 10,000
			// jobs by doubling leaves as much garbage as it keeps. Bounded by MaxJobs and by
			// what one filter can page through, so a TotalCount that lies costs no more than
			// a listing that does not.
			r.reserve(int(min(resp.TotalCount, int64(w.limit), int64(MaxPageNumber)*int64(pageSize))))
		}
	} else if resp.TotalCount != res.total {
		w.note(fmt.Sprintf("TotalCount changed from %d to %d during the walk", res.total, resp.TotalCount))
	}
	if len(resp.Jobs) > pageSize {
		w.note(fmt.Sprintf("page %d held %d jobs, more than the %d asked for", page, len(resp.Jobs), pageSize))
	}
}

// holdJobs hands each job of a page that has an ID to add (packed first when the walk packs),
// counting distinct and duplicate jobs; a main walk counts the jobs without ID.
func (w *walk) holdJobs(res *pagesResult, resp *ListJobsResponse, main bool, add func(Held) (bool, error)) error {
	// Only a Lister that kept each job's JSON (the Client) can have its jobs packed.
	packing := w.pack != nil && len(resp.raw) == len(resp.Jobs)
	if packing {
		if err := w.pack.learn(resp.raw); err != nil {
			return err
		}
	}
	for i := range resp.Jobs {
		if resp.Jobs[i].JobID == "" {
			if main {
				w.withoutID++
			}
			continue
		}
		var held Held
		if packing {
			held = w.pack.pack(&resp.Jobs[i], resp.raw[i])
		} else {
			// A copy: a pointer into the page would keep the whole page.
			job := resp.Jobs[i]
			held = holdWhole(&job)
		}
		dup, err := add(held)
		switch {
		case err != nil:
			return err
		case dup:
			res.duplicates++
		default:
			res.distinct++
		}
	}
	return nil
}

// lastPage reports whether the walk ends after a page of n jobs, recording why in res.
func (w *walk) lastPage(res *pagesResult, n, pageSize int, main bool) bool {
	switch {
	case n < pageSize:
		res.reachedEnd = true
		return true
	case main && w.bound > 0 && res.distinct >= w.bound:
		// Every job the filter can match was read: a further page cannot add one.
		res.reachedEnd = true
		return true
	case main && w.limit > 0 && res.distinct >= w.limit:
		res.stoppedByLimit = true
		return true
	}
	return false
}

// repairTies reads every straddling creation second again with a window of that second alone
// (the API's EndTime is inclusive, as the simulator's is), so that every job of the second is
// read whichever way the API orders them. It applies only when the window filters on creation
// time, the key of the order.
func (w *walk) repairTies(ctx context.Context, straddling []string) error {
	if f := deref(w.base.TimeRangeField); f != "" && f != SortByCreateTime {
		return nil
	}
	from, to := deref(w.base.StartTime), deref(w.base.EndTime)
	for _, second := range slices.Compact(straddling) {
		if _, err := time.Parse(TimeLayout, second); err != nil || second < from || (to != "" && second > to) {
			continue
		}
		req := w.base.Clone()
		req.StartTime, req.EndTime = Ptr(second), Ptr(second)
		var got []Held
		seen := map[string]bool{}
		before := w.inconsistency
		res, err := w.pages(ctx, req, false, func(j Held) (bool, error) {
			dup := seen[j.JobID]
			seen[j.JobID] = true
			got = append(got, j)
			return dup, nil
		})
		if err != nil {
			return fmt.Errorf("re-reading the jobs created at %s: %w", second, err)
		}
		if w.inconsistency != before || !res.reachedEnd || int64(res.distinct) != res.total {
			w.inconsistency = before
			w.note(fmt.Sprintf("re-reading the jobs created at %s did not add up (%d distinct, TotalCount %d)",
				second, res.distinct, res.total))
			return nil
		}
		for _, j := range got {
			if _, err := w.keep.add(j); err != nil {
				return fmt.Errorf("holding the jobs created at %s: %w", second, err)
			}
		}
	}
	return nil
}

func (w *walk) note(problem string) {
	if w.inconsistency == "" {
		w.inconsistency = problem
	}
}

// SortJobs sorts jobs as ListAll orders a listing: by a ListJobs SortBy field and order, with the
// job ID as tie-break so the order is total and stable. Times compare as strings (the API's
// layout sorts chronologically); a job without the field sorts as the empty string.
func SortJobs(jobs []JobItem, sortBy, order string) {
	desc := strings.EqualFold(order, "desc")
	slices.SortStableFunc(jobs, func(a, b JobItem) int {
		ha, hb := headerOf(&a), headerOf(&b)
		return compareSorted(ha.sortValue(sortBy), a.JobID, hb.sortValue(sortBy), b.JobID, desc)
	})
}

// sortHeld is SortJobs for a listing.
func sortHeld(jobs []Held, sortBy, order string) {
	desc := strings.EqualFold(order, "desc")
	slices.SortStableFunc(jobs, func(a, b Held) int {
		return compareSorted(a.sortValue(sortBy), a.JobID, b.sortValue(sortBy), b.JobID, desc)
	})
}

// compareSorted orders two jobs by their sort values, then by ID so that the order is total,
// reversed for a descending order. The sorts and the pager's bounded top-k share it.
func compareSorted(aValue, aID, bValue, bID string, desc bool) int {
	c := strings.Compare(aValue, bValue)
	if c == 0 {
		c = strings.Compare(aID, bID)
	}
	if desc {
		return -c
	}
	return c
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
