package dlc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlc/dlcfake"
)

// A listing that would hold more than its budget stops with an *OverBudgetError that says whether
// it is alone to blame, and holds nothing afterwards; another sync's listing competes for the same
// bytes until it releases them.
func TestAListingStopsAtTheMemoryBudgetOfAllListings(t *testing.T) {
	ctx := context.Background()
	lister := &dlcfake.Lister{Jobs: fakeJobs(1000, 1)}
	// Decoded jobs (a Lister that keeps no JSON) count 5 KiB each: room for 300 of them.
	budget := dlc.NewMemoryBudget(300 * 5 << 10)

	alone := budget.Reserve()
	opts := fakeOpts()
	opts.Memory = alone
	_, _, err := dlc.ListAll(ctx, lister, &dlc.ListJobsRequest{}, opts)
	var over *dlc.OverBudgetError
	if !errors.As(err, &over) || !over.Alone {
		t.Fatalf("1,000 jobs within room for 300: %v; want an OverBudgetError of the listing alone", err)
	}
	if alone.Held() != 0 {
		t.Fatalf("a stopped listing still holds %d bytes", alone.Held())
	}

	first, second := budget.Reserve(), budget.Reserve()
	opts.Memory, opts.MaxJobs = first, 200
	jobs, _, err := dlc.ListAll(ctx, lister, &dlc.ListJobsRequest{}, opts)
	if err != nil || len(jobs) != 200 || first.Held() != 200*5<<10 {
		t.Fatalf("200 jobs: %d jobs, %v, %d bytes held; want 200 jobs held", len(jobs), err, first.Held())
	}
	opts.Memory = second
	if _, _, err := dlc.ListAll(ctx, lister, &dlc.ListJobsRequest{}, opts); !errors.As(err, &over) || over.Alone {
		t.Fatalf("200 more while 200 are held: %v; want an OverBudgetError of other listings", err)
	}
	jobs[0].Release(first)
	first.Release()
	if _, _, err := dlc.ListAll(ctx, lister, &dlc.ListJobsRequest{}, opts); err != nil {
		t.Fatalf("200 jobs once the other listing released its own: %v", err)
	}
}

// A listing sorted by another field than creation time reads every job but keeps only the first
// MaxJobs: the budget counts what it keeps, not what it read.
func TestATopListingHoldsOnlyWhatItKeeps(t *testing.T) {
	lister := &dlcfake.Lister{Jobs: fakeJobs(3000, 1)}
	mem := dlc.NewMemoryBudget(110 * 5 << 10).Reserve()
	opts := fakeOpts()
	opts.Memory, opts.MaxJobs = mem, 100
	jobs, walk, err := dlc.ListAll(context.Background(), lister, &dlc.ListJobsRequest{SortBy: dlc.Ptr("DisplayName")}, opts)
	if err != nil || len(jobs) != 100 || walk.Pages < 30 || mem.Held() != 100*5<<10 {
		t.Fatalf("top 100 of 3,000: %d jobs, %d pages, %v, %d bytes held; want 100 jobs held after reading every page",
			len(jobs), walk.Pages, err, mem.Held())
	}
}

// A burst of new jobs between two syncs is read only up to one more than MaxJobs (the caller then
// lists in full), within the budget, not whole.
func TestListChangesReadsABurstOfNewJobsOnlyUpToMaxJobs(t *testing.T) {
	jobs := fakeJobs(2000, 1)
	lister := &dlcfake.Lister{Jobs: jobs}
	// The caller knew the 100 oldest jobs; 1,900 are new.
	var known []dlc.KnownJob
	for _, j := range jobs[1900:] {
		known = append(known, dlc.KnownJob{JobID: j.JobID, GmtCreateTime: j.GmtCreateTime, Status: dlc.StatusSucceeded})
	}
	mem := dlc.NewMemoryBudget(1 << 30).Reserve()
	opts := fakeOpts()
	opts.MaxJobs, opts.Memory, opts.Within = 300, mem, 30*24*time.Hour
	changes, err := dlc.ListChanges(context.Background(), lister, &dlc.ListJobsRequest{}, known, dlc.ChangeOptions{PageOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes.Jobs) != 301 || mem.Held() != 301*5<<10 {
		t.Fatalf("a burst of 1,900 new jobs with maxJobs 300: %d jobs read, %d bytes held; want 301", len(changes.Jobs), mem.Held())
	}
}

// A job's header is kept as read, uncompressed, until the listing is dropped: it is charged at
// its size, so an endpoint sending names of kilobytes that compress to nothing cannot hold more
// than the budget says. Releasing a written job gives back its data, not its header.
func TestAHeldJobsHeaderIsChargedAtItsSize(t *testing.T) {
	jobs := fakeJobs(200, 1)
	for i := range jobs {
		jobs[i].DisplayName = strings.Repeat("n", 8<<10)
	}
	mem := dlc.NewMemoryBudget(1 << 30).Reserve()
	opts := fakeOpts()
	opts.Pack, opts.Memory = true, mem
	held, _, err := dlc.ListAll(context.Background(), &dlcfake.Lister{Jobs: jobs}, &dlc.ListJobsRequest{}, opts)
	if err != nil || len(held) != 200 || !held[0].IsPacked() {
		t.Fatalf("%d jobs, %v", len(held), err)
	}
	if names := int64(200 * 8 << 10); mem.Held() < names {
		t.Fatalf("%d bytes charged for 200 held names of 8 KiB (%d bytes)", mem.Held(), names)
	}
	for i := range held {
		held[i].Release(mem)
	}
	if names := int64(200 * 8 << 10); mem.Held() < names {
		t.Errorf("%d bytes charged after the jobs' release, while their names of 8 KiB (%d bytes) are kept", mem.Held(), names)
	}
}

// The jobs of ListChanges, read in one listing of new jobs and batches of 100 moving ones, are
// packed with one dictionary, which is charged: a dictionary (up to 16 KiB of sample and its
// 32 KiB table) per batch held more than the batch's jobs, and none of it was charged.
func TestListChangesPacksWithOneChargedDictionary(t *testing.T) {
	jobs := fakeJobs(1000, 1)
	var known []dlc.KnownJob
	for _, j := range jobs {
		known = append(known, dlc.KnownJob{JobID: j.JobID, GmtCreateTime: j.GmtCreateTime, Status: dlc.StatusRunning})
	}
	mem := dlc.NewMemoryBudget(1 << 30).Reserve()
	opts := fakeOpts()
	opts.Pack, opts.Memory, opts.PageSize, opts.Within = true, mem, 100, 30*24*time.Hour
	changes, err := dlc.ListChanges(context.Background(), &dlcfake.Lister{Jobs: jobs}, &dlc.ListJobsRequest{}, known,
		dlc.ChangeOptions{PageOptions: opts})
	if err != nil || len(changes.Jobs) != 1000 || changes.Stats.Pages < 10 {
		t.Fatalf("%d jobs in %d pages, %v", len(changes.Jobs), changes.Stats.Pages, err)
	}
	var headers int64
	for i := range changes.Jobs {
		h := &changes.Jobs[i]
		headers += int64(len(h.JobID) + len(h.DisplayName) + len(h.JobType) + len(h.Status) + len(h.GmtCreateTime) + len(h.GmtFinishTime))
		h.Release(mem)
	}
	// What is left once every job's data is released: the headers and the dictionaries.
	dictionaries := mem.Held() - headers
	if dictionaries <= 32<<10 || dictionaries > 48<<10 {
		t.Errorf("%d bytes charged for the dictionaries; want one dictionary, more than its 32 KiB table and at most 48 KiB",
			dictionaries)
	}
}
