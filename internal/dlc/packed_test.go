package dlc_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlc/dlcfake"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

// listBoth lists req twice through the real client, whole and packed, with the simulator's
// faults set afresh before each walk so that both see the same answers.
func listBoth(t *testing.T, sim *dlcsim.Server, c *dlc.Client, req *dlc.ListJobsRequest, opts dlc.PageOptions,
	faults dlcsim.Faults) (whole []dlc.JobItem, packed []dlc.Held) {
	t.Helper()
	for _, pack := range []bool{false, true} {
		sim.SetFaults(faults)
		opts.Pack = pack
		jobs, stats, err := dlc.ListAll(context.Background(), c, req.Clone(), opts)
		if err != nil || !stats.Complete || !stats.Consistent {
			t.Fatalf("pack %v: %v, %+v", pack, err, stats)
		}
		if pack {
			packed = jobs
		} else {
			whole = wholeJobs(t, jobs)
		}
	}
	return whole, packed
}

// A packed listing holds the same jobs in the same order, each restored by Job exactly as the
// unpacked listing decoded it: for the creation-time walk, for a top-k by another field, and
// for a walk whose ties the API orders differently on every request (jobs read twice, a repair).
func TestAPackedListingUnpacksToTheListingAsRead(t *testing.T) {
	sim, url := startSim(t, 700)
	c := newClient(t, url, dlc.Config{})
	for name, tc := range map[string]struct {
		req    *dlc.ListJobsRequest
		opts   dlc.PageOptions
		faults dlcsim.Faults
	}{
		"creation time":     {req: everything()},
		"top 50 by name":    {req: withSort(everything(), "DisplayName", "asc"), opts: dlc.PageOptions{MaxJobs: 50}},
		"shuffled ties":     {req: everything(), faults: dlcsim.Faults{ShuffleTies: true}},
		"first 120 by time": {req: everything(), opts: dlc.PageOptions{MaxJobs: 120, PageSize: 50}},
	} {
		t.Run(name, func(t *testing.T) {
			whole, packed := listBoth(t, sim, c, tc.req, tc.opts, tc.faults)
			if len(whole) == 0 || len(packed) != len(whole) {
				t.Fatalf("%d packed jobs, %d whole", len(packed), len(whole))
			}
			for i := range packed {
				if !packed[i].IsPacked() {
					t.Fatalf("job %d (%s) is not packed", i, packed[i].JobID)
				}
				got, err := packed[i].Job()
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, whole[i]) {
					t.Fatalf("job %d: unpacked %+v\nwant %+v", i, got, whole[i])
				}
			}
		})
	}
}

func withSort(req *dlc.ListJobsRequest, sortBy, order string) *dlc.ListJobsRequest {
	req.SortBy, req.Order = dlc.Ptr(sortBy), dlc.Ptr(order)
	return req
}

// An in-process Lister that keeps each job's JSON, as the fake does, has its jobs packed like the
// Client's. A job whose data restores as another job's is refused by Job alone (ErrUnpack); the
// listing and its other jobs are not affected. A released job gives nothing.
func TestAFakeListingPacksAndAJobWhoseDataIsAnotherJobsIsRefused(t *testing.T) {
	created := dlc.FormatTime(time.Now().Add(-time.Hour))
	jobs := []dlc.JobItem{{JobID: "dlc-1", GmtCreateTime: created, DisplayName: "a", UserID: "1001"},
		{JobID: "dlc-2", GmtCreateTime: created, DisplayName: "b", UserID: "1002", Priority: dlc.Ptr(int32(3))}}
	fake := &dlcfake.Lister{Jobs: jobs, JSON: func(job *dlc.JobItem) []byte {
		if job.JobID == "dlc-2" {
			return []byte(`{"JobId":"dlc-1","UserId":"1001"}`)
		}
		data, _ := json.Marshal(job)
		return data
	}}
	held, stats, err := dlc.ListAll(context.Background(), fake, everything(), dlc.PageOptions{Pack: true})
	if err != nil || len(held) != 2 || !stats.Consistent {
		t.Fatalf("fake listing with Pack: %d jobs, %v, %+v", len(held), err, stats)
	}
	byID := map[string]*dlc.Held{}
	for i := range held {
		if !held[i].IsPacked() {
			t.Errorf("%s is not packed", held[i].JobID)
		}
		byID[held[i].JobID] = &held[i]
	}
	if got, err := byID["dlc-1"].Job(); err != nil || !reflect.DeepEqual(got, jobs[0]) {
		t.Errorf("dlc-1 restored as %+v, %v; want %+v", got, err, jobs[0])
	}
	if byID["dlc-2"].Status != "" || byID["dlc-2"].DisplayName != "b" {
		t.Errorf("dlc-2's header: %+v; want the header of its decoded job", *byID["dlc-2"])
	}
	if got, err := byID["dlc-2"].Job(); !errors.Is(err, dlc.ErrUnpack) {
		t.Errorf("dlc-2 holding dlc-1's data restored as %+v, %v; want ErrUnpack", got, err)
	}
	byID["dlc-1"].Release(nil)
	if _, err := byID["dlc-1"].Job(); !errors.Is(err, dlc.ErrReleased) {
		t.Errorf("a released job: %v; want ErrReleased", err)
	}
}

// BenchmarkHeldListing10000 reports the heap a listing of 10,000 jobs holds once it has returned
// (what a sync holds until its listing is known complete and consistent), what the memory
// budget charges for it, and the time of the walk: ListAll whole and packed, and ListChanges
// re-reading every job as a moving one (100 batches of 100 IDs, packed).
func BenchmarkHeldListing10000(b *testing.B) {
	_, url := startSim(b, 10_000)
	c := newClient(b, url, dlc.Config{})
	all, _, err := dlc.ListAll(context.Background(), c, everything(), dlc.PageOptions{})
	if err != nil || len(all) != 10_000 {
		b.Fatalf("%d jobs, %v", len(all), err)
	}
	known := make([]dlc.KnownJob, len(all))
	for i, j := range all {
		known[i] = dlc.KnownJob{JobID: j.JobID, GmtCreateTime: j.GmtCreateTime, Status: dlc.StatusRunning}
	}
	listAll := func(pack bool) func(*dlc.Reservation) ([]dlc.Held, error) {
		return func(mem *dlc.Reservation) ([]dlc.Held, error) {
			jobs, _, err := dlc.ListAll(context.Background(), c, everything(), dlc.PageOptions{Pack: pack, Memory: mem})
			return jobs, err
		}
	}
	for _, tc := range []struct {
		name string
		list func(*dlc.Reservation) ([]dlc.Held, error)
	}{{"whole", listAll(false)}, {"packed", listAll(true)}, {"changes", func(mem *dlc.Reservation) ([]dlc.Held, error) {
		changes, err := dlc.ListChanges(context.Background(), c, everything(), known,
			dlc.ChangeOptions{PageOptions: dlc.PageOptions{Pack: true, Memory: mem}})
		return changes.Jobs, err
	}}} {
		b.Run(tc.name, func(b *testing.B) { benchmarkHeld(b, tc.list) })
	}
}

// benchmarkHeld measures one way of listing for BenchmarkHeldListing10000.
func benchmarkHeld(b *testing.B, list func(*dlc.Reservation) ([]dlc.Held, error)) {
	var held uint64
	var charged int64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		mem := dlc.NewMemoryBudget(1 << 40).Reserve()
		jobs, err := list(mem)
		if err != nil || len(jobs) != 10_000 {
			b.Fatalf("%d jobs, %v", len(jobs), err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(jobs)
		charged = mem.Held()
		mem.Release()
	}
	b.ReportMetric(float64(held)/(1<<20), "MiB-held")
	// What the memory budget charges for it (--listing-memory): an estimate that should not
	// be below what is held.
	b.ReportMetric(float64(charged)/(1<<20), "MiB-charged")
}
