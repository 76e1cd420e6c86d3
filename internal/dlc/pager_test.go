package dlc_test

// Pager tests against the in-process fake: what a walk concludes from pages that lie.

import (
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlc/dlcfake"
)

var fakeNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeJobs returns n jobs, perSecond of them created in each second, newest first by index.
func fakeJobs(n, perSecond int) []dlc.JobItem {
	jobs := make([]dlc.JobItem, n)
	for i := range jobs {
		created := fakeNow.Add(-time.Hour - time.Duration(i/perSecond)*time.Second)
		jobs[i] = dlc.JobItem{JobID: fmt.Sprintf("dlc%05d", i), GmtCreateTime: dlc.FormatTime(created),
			DisplayName: fmt.Sprintf("name-%d", i%37), Status: dlc.StatusRunning}
	}
	return jobs
}

func fakeOpts() dlc.PageOptions { return dlc.PageOptions{Now: func() time.Time { return fakeNow }} }

func TestAWalkNeverCallsAListingCompleteAndConsistentWhenTheCountsDisagree(t *testing.T) {
	cases := []struct {
		name    string
		total   func(page int32, actual int64) (int64, bool)
		extra   int
		problem string
	}{
		{"TotalCount zero", func(int32, int64) (int64, bool) { return 0, true }, 0, "more than TotalCount 0"},
		{"TotalCount missing", func(int32, int64) (int64, bool) { return 0, false }, 0, "page 1 carried no TotalCount"},
		{"TotalCount negative", func(int32, int64) (int64, bool) { return -5, true }, 0, "negative TotalCount -5"},
		{"TotalCount too small", func(_ int32, n int64) (int64, bool) { return n - 1, true }, 0, "1000 distinct jobs, more than TotalCount 999"},
		{"TotalCount too large", func(_ int32, n int64) (int64, bool) { return n + 1, true }, 0, "1000 distinct jobs, expected TotalCount 1001"},
		{"TotalCount changes", func(p int32, n int64) (int64, bool) { return n + int64(p/4), true }, 0, "TotalCount changed from 1000 to 1001"},
		{"a page longer than asked", nil, 1, "page 1 held 101 jobs, more than the 100 asked for"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &dlcfake.Lister{Jobs: fakeJobs(1000, 1), TotalCount: tc.total, Extra: tc.extra}
			jobs, stats, err := dlc.ListAll(context.Background(), fake, &dlc.ListJobsRequest{}, fakeOpts())
			if err != nil {
				t.Fatal(err)
			}
			if stats.Consistent || !strings.Contains(stats.Inconsistency, tc.problem) || stats.Walks != 3 {
				t.Fatalf("consistent %v after %d walks (%q); want inconsistent after 3 walks because %q",
					stats.Consistent, stats.Walks, stats.Inconsistency, tc.problem)
			}
			// Whatever the count says, full pages are followed: every job is read.
			if len(jobs) < 1000 {
				t.Fatalf("the walk stopped after %d of 1000 jobs", len(jobs))
			}
		})
	}
}

func TestAnHonestWalkWithAFullLastPageAsksForOneMorePage(t *testing.T) {
	fake := &dlcfake.Lister{Jobs: fakeJobs(1000, 1)}
	jobs, stats, err := dlc.ListAll(context.Background(), fake, &dlc.ListJobsRequest{}, fakeOpts())
	if err != nil {
		t.Fatal(err)
	}
	if !stats.Consistent || !stats.Complete || len(jobs) != 1000 || stats.Pages != 11 || stats.TotalCount != 1000 {
		t.Fatalf("%d jobs, %+v; want 1000 jobs in 10 full pages and an empty 11th, complete and consistent", len(jobs), stats)
	}
	if last := fake.Requests()[10]; *last.PageNumber != 11 {
		t.Fatalf("the last request asked page %d", *last.PageNumber)
	}
}

func TestAWalkCutByThePageLimitIsIncomplete(t *testing.T) {
	fake := &dlcfake.Lister{Jobs: fakeJobs(dlc.MaxPageNumber+1, 1)}
	opts := fakeOpts()
	opts.PageSize = 1
	jobs, stats, err := dlc.ListAll(context.Background(), fake, &dlc.ListJobsRequest{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Complete || stats.Pages != dlc.MaxPageNumber || len(jobs) != dlc.MaxPageNumber {
		t.Fatalf("%d jobs, complete %v, %d pages; want an incomplete walk of %d pages", len(jobs), stats.Complete, stats.Pages, dlc.MaxPageNumber)
	}
}

func TestMaxJobsStopsEarlyButStillChecksTheCountOfThePagesRead(t *testing.T) {
	opts := fakeOpts()
	opts.MaxJobs = 250
	fake := &dlcfake.Lister{Jobs: fakeJobs(1000, 1)}
	jobs, stats, err := dlc.ListAll(context.Background(), fake, &dlc.ListJobsRequest{}, opts)
	if err != nil || len(jobs) != 250 || stats.Pages != 3 || !stats.Truncated || !stats.Consistent || !stats.Complete {
		t.Fatalf("honest: err %v, %d jobs, %+v", err, len(jobs), stats)
	}
	if jobs[0].JobID != "dlc00000" || jobs[249].JobID != "dlc00249" {
		t.Fatalf("kept %s..%s, want the 250 newest", jobs[0].JobID, jobs[249].JobID)
	}
	lying := &dlcfake.Lister{Jobs: fakeJobs(1000, 1), TotalCount: func(int32, int64) (int64, bool) { return 120, true }}
	_, stats, err = dlc.ListAll(context.Background(), lying, &dlc.ListJobsRequest{}, opts)
	if err != nil || stats.Consistent || !strings.Contains(stats.Inconsistency, "more than TotalCount 120") {
		t.Fatalf("TotalCount 120 with 300 jobs read: err %v, %+v", err, stats)
	}
}

// The API orders only by creation second: jobs of one second come back in another order on
// every request, so a job can be read twice and another skipped at a page boundary. The walk
// reads the straddling seconds again and settles on the first walk.
func TestTiesOrderedDifferentlyOnEveryRequestAreAllRead(t *testing.T) {
	for seed := range uint64(5) {
		fake := &dlcfake.Lister{Jobs: fakeJobs(1000, 7), ShuffleTies: true, Seed: seed}
		jobs, stats, err := dlc.ListAll(context.Background(), fake, &dlc.ListJobsRequest{}, fakeOpts())
		if err != nil {
			t.Fatal(err)
		}
		if !stats.Consistent || !stats.Complete || stats.Walks != 1 || len(jobs) != 1000 {
			t.Fatalf("seed %d: %d jobs, %+v; want all 1000 in one consistent walk", seed, len(jobs), stats)
		}
		pinned := 0
		for _, r := range fake.Requests() {
			if *r.StartTime == *r.EndTime {
				pinned++
			}
		}
		if pinned == 0 || pinned > 10 {
			t.Fatalf("seed %d: %d requests pinned to one second; want one per straddling second (at most 9)", seed, pinned)
		}
	}
}

// Ties are repaired only through a creation-time window; with another TimeRangeField the walk
// that misses a job says so.
func TestTiesUnderAnotherTimeRangeFieldAreReportedNotGuessed(t *testing.T) {
	for seed := range uint64(20) {
		fake := &dlcfake.Lister{Jobs: fakeJobs(1000, 7), ShuffleTies: true, Seed: seed}
		req := &dlc.ListJobsRequest{TimeRangeField: dlc.Ptr("GmtFinishTime")}
		jobs, stats, err := dlc.ListAll(context.Background(), fake, req, fakeOpts())
		if err != nil {
			t.Fatal(err)
		}
		if stats.Consistent != (len(jobs) == 1000) {
			t.Fatalf("seed %d: consistent %v with %d of 1000 jobs", seed, stats.Consistent, len(jobs))
		}
	}
}

func TestTheKeptTopJobsEqualSortingEverythingThenCutting(t *testing.T) {
	rng := mathrand.New(mathrand.NewPCG(4, 2))
	all := fakeJobs(3000, 3)
	for i := range all {
		all[i].DisplayName = fmt.Sprintf("n%03d", rng.IntN(500))
		all[i].Status = []string{dlc.StatusRunning, dlc.StatusFailed, dlc.StatusQueuing}[rng.IntN(3)]
	}
	for _, sortBy := range []string{"DisplayName", "Status", "JobType"} {
		for _, order := range []string{"asc", "desc"} {
			for _, k := range []int{1, 37, 100, 2999, 5000} {
				opts := fakeOpts()
				opts.MaxJobs = k
				req := &dlc.ListJobsRequest{SortBy: dlc.Ptr(sortBy), Order: dlc.Ptr(order)}
				got, stats, err := dlc.ListAll(context.Background(), &dlcfake.Lister{Jobs: all}, req, opts)
				if err != nil || !stats.Consistent {
					t.Fatal(err, stats)
				}
				want := slices.Clone(all)
				dlc.SortJobs(want, sortBy, order)
				want = want[:min(k, len(want))]
				if !slices.EqualFunc(got, want, func(a dlc.Held, b dlc.JobItem) bool { return a.JobID == b.JobID }) {
					t.Fatalf("%s %s top %d: kept jobs differ from sort-then-cut", sortBy, order, k)
				}
				if stats.Truncated != (k < 3000) {
					t.Fatalf("%s %s top %d: truncated %v", sortBy, order, k, stats.Truncated)
				}
			}
		}
	}
}

// ListChanges never calls a known job gone on a listing that is not complete and consistent.
func TestListChangesCallsNothingGoneOnAnIncompleteOrLyingListing(t *testing.T) {
	jobs := fakeJobs(1200, 1)
	// The caller knows the oldest job; the listing of new jobs starts a minute before it.
	known := []dlc.KnownJob{{JobID: jobs[1199].JobID, GmtCreateTime: jobs[1199].GmtCreateTime, Status: dlc.StatusSucceeded}}
	req := &dlc.ListJobsRequest{StartTime: dlc.Ptr(dlc.FormatTime(fakeNow.Add(-48 * time.Hour)))}

	lying := &dlcfake.Lister{Jobs: jobs, TotalCount: func(int32, int64) (int64, bool) { return 100, true }}
	changes, err := dlc.ListChanges(context.Background(), lying, req, known, dlc.ChangeOptions{PageOptions: fakeOpts(), Overlap: time.Hour})
	if err != nil || changes.Stats.Consistent || len(changes.Gone) != 0 {
		t.Fatalf("TotalCount 100 of 1200: err %v, consistent %v, gone %v", err, changes.Stats.Consistent, changes.Gone)
	}

	opts := fakeOpts()
	opts.PageSize = 1
	changes, err = dlc.ListChanges(context.Background(), &dlcfake.Lister{Jobs: jobs}, req, known, dlc.ChangeOptions{PageOptions: opts, Overlap: time.Hour})
	if err != nil || changes.Stats.Complete || len(changes.Gone) != 0 {
		t.Fatalf("cut by the page limit: err %v, complete %v, gone %v", err, changes.Stats.Complete, changes.Gone)
	}
}

// A walk makes room for the jobs it will keep once, from the first page's count bounded by
// MaxJobs: no doubling garbage for an honest count, and no more than MaxJobs for a lying one.
func TestAWalkReservesRoomForTheJobsItKeepsOnce(t *testing.T) {
	honest := &dlcfake.Lister{Jobs: fakeJobs(300, 1)}
	opts := fakeOpts()
	opts.MaxJobs = 1000
	jobs, _, err := dlc.ListAll(context.Background(), honest, &dlc.ListJobsRequest{}, opts)
	// Go rounds an allocation up to its size class: room for 300 jobs made at once is what one
	// allocation of 300 gives; doubling would give room for 512 or more.
	if once := cap(slices.Grow([]dlc.Held(nil), 300)); err != nil || len(jobs) != 300 || cap(jobs) != once {
		t.Fatalf("%d jobs in room for %d (err %v); want 300 in room for %d, one allocation", len(jobs), cap(jobs), err, once)
	}
	lying := &dlcfake.Lister{Jobs: fakeJobs(300, 1), TotalCount: func(int32, int64) (int64, bool) { return 1 << 40, true }}
	jobs, _, err = dlc.ListAll(context.Background(), lying, &dlc.ListJobsRequest{}, opts)
	if most := cap(slices.Grow([]dlc.Held(nil), 1000)); err != nil || cap(jobs) > most {
		t.Fatalf("room for %d jobs after a TotalCount of 2^40 (err %v); want room for MaxJobs, 1000 (%d), at most", cap(jobs), err, most)
	}
}
