package dlc_test

import (
	"context"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlc/dlcfake"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// listBoth lists req twice through the real client, whole and packed, with the simulator's
// faults set afresh before each walk so that both see the same answers.
func listBoth(t *testing.T, sim *dlcsim.Server, c *dlc.Client, req *dlc.ListJobsRequest, opts dlc.PageOptions,
	faults dlcsim.Faults) (whole, packed []dlc.JobItem) {
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
			whole = jobs
		}
	}
	return whole, packed
}

// A packed listing holds the same jobs in the same order, each restored by Unpack exactly as
// the unpacked listing decoded it: for the creation-time walk, for a top-k by another field, and
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
				got, err := dlc.Unpack(&packed[i])
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

// A packed job cannot be mirrored by mistake: converted before Unpack, it is refused instead of
// becoming a snapshot of an empty job. A Lister that does not keep what it read (the in-process
// fake) returns whole jobs even when asked to pack.
func TestAPackedJobIsRefusedByTheConversionAndAFakeListerReturnsWholeJobs(t *testing.T) {
	_, url := startSim(t, 20)
	jobs, _, err := dlc.ListAll(context.Background(), newClient(t, url, dlc.Config{}), everything(), dlc.PageOptions{Pack: true})
	if err != nil || len(jobs) == 0 {
		t.Fatalf("%d jobs, %v", len(jobs), err)
	}
	if _, err := snapshot.ConvertJob(&jobs[0], snapshot.Options{}); err == nil || !strings.Contains(err.Error(), "packed") {
		t.Errorf("converting a packed job: %v", err)
	}
	whole, err := dlc.Unpack(&jobs[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.ConvertJob(&whole, snapshot.Options{}); err != nil {
		t.Errorf("converting the unpacked job: %v", err)
	}

	fake := &dlcfake.Lister{Jobs: []dlc.JobItem{{JobID: "dlc-1", GmtCreateTime: dlc.FormatTime(time.Now().Add(-time.Hour)), DisplayName: "a",
		UserID: "1001"}}}
	got, _, err := dlc.ListAll(context.Background(), fake, everything(), dlc.PageOptions{Pack: true})
	if err != nil || len(got) != 1 || got[0].IsPacked() || got[0].UserID != "1001" {
		t.Errorf("fake listing with Pack: %+v, %v", got, err)
	}
}

// BenchmarkHeldListing10000 reports the heap a listing of 10,000 jobs holds once ListAll has
// returned it, whole and packed (what a first sync holds until its listing is known complete
// and consistent), and the time of the walk.
func BenchmarkHeldListing10000(b *testing.B) {
	_, url := startSim(b, 10_000)
	c := newClient(b, url, dlc.Config{})
	for _, pack := range []bool{false, true} {
		name := "whole"
		if pack {
			name = "packed"
		}
		b.Run(name, func(b *testing.B) {
			var held uint64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				jobs, _, err := dlc.ListAll(context.Background(), c, everything(), dlc.PageOptions{Pack: pack})
				if err != nil || len(jobs) != 10_000 {
					b.Fatalf("%d jobs, %v", len(jobs), err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				held = after.HeapAlloc - before.HeapAlloc
				runtime.KeepAlive(jobs)
			}
			b.ReportMetric(float64(held)/(1<<20), "MiB-held")
		})
	}
}
