package dlc_test

import (
	"context"
	"fmt"
	"maps"
	mathrand "math/rand/v2"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

// TestListChangesEqualsAFullListingAfterEverySync drives the simulator's lifecycle workload with
// a fake clock (jobs move through their states, new jobs arrive, some arrive late, some are
// deleted, old ones leave the 7-day window) and keeps two views of a query: one rebuilt from a
// full listing at every sync, one updated from ListChanges. After every sync both hold the same
// jobs with the same data. Half the seeds also delete finished jobs, which by design only a full
// listing sees: there the incremental view may keep exactly those until the full listing every
// few syncs, which must then remove exactly them.
func TestListChangesEqualsAFullListingAfterEverySync(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		// Odd seeds delete only jobs still moving: then the views must be equal after every
		// sync, with no exception at all.
		terminalDeletes := seed%2 == 0
		t.Run(fmt.Sprintf("seed%d-terminalDeletes=%v", seed, terminalDeletes), func(t *testing.T) {
			checkIncrementalAgainstFull(t, seed, terminalDeletes)
		})
	}
}

func checkIncrementalAgainstFull(t *testing.T, seed uint64, terminalDeletes bool) {
	ctx := context.Background()
	clock := clocktesting.NewFakePassiveClock(time.Now().UTC().Truncate(time.Second))
	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{admin}, Seed: seed, Clock: clock})
	sim.Generate(6000)
	sim.EnableLifecycle(dlcsim.Lifecycle{SubmitPerMinute: 12, Pace: 1})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	client := newClient(t, srv.URL, dlc.Config{})
	rng := mathrand.New(mathrand.NewPCG(seed, 99))
	// The query: a filter fixed at creation and a 45-minute window, so that jobs leave it during
	// the run.
	req := &dlc.ListJobsRequest{JobType: dlc.Ptr("PyTorchJob"), ShowOwn: dlc.Ptr(false)}
	pageOpts := dlc.PageOptions{Now: clock.Now, Within: 45 * time.Minute}

	full := func() map[string]dlc.JobItem {
		jobs, stats, err := dlc.ListAll(ctx, client, req, pageOpts)
		if err != nil || !stats.Consistent || !stats.Complete {
			t.Fatalf("full listing: %v %+v", err, stats)
		}
		out := map[string]dlc.JobItem{}
		for _, j := range jobs {
			out[j.JobID] = j
		}
		return out
	}
	view := full()
	if len(view) < 50 {
		t.Fatalf("the workload is too small to mean anything: %d jobs", len(view))
	}
	deletedTerminal := map[string]bool{}
	var calls, syncs, moved, gone, exactSyncs int
	for step := 1; step <= 40; step++ {
		clock.SetTime(clock.Now().Add(time.Duration(10+rng.IntN(110)) * time.Second))
		sim.Step()
		// Disturb: delete a few jobs (terminal or not), and add a job that became visible late,
		// created 20-50 s before the newest one.
		ids := slices.Sorted(maps.Keys(view))
		for range rng.IntN(3) {
			victim, ok := sim.Job(ids[rng.IntN(len(ids))])
			if !ok {
				continue
			}
			if dlc.IsTerminal(victim.Status) {
				if !terminalDeletes {
					continue
				}
				deletedTerminal[victim.JobID] = true
			}
			sim.Delete(victim.JobID)
		}
		if rng.IntN(3) == 0 {
			late := sim.Generate(1)[0]
			late.GmtCreateTime = dlc.FormatTime(clock.Now().Add(-time.Duration(20+rng.IntN(30)) * time.Second))
			late.JobType = "PyTorchJob"
			sim.Upsert(late)
		}

		known := make([]dlc.KnownJob, 0, len(view))
		for _, j := range view {
			known = append(known, dlc.KnownJob{JobID: j.JobID, GmtCreateTime: j.GmtCreateTime, Status: j.Status})
		}
		changes, err := dlc.ListChanges(ctx, client, req, known, dlc.ChangeOptions{PageOptions: pageOpts})
		if err != nil || !changes.Stats.Consistent || !changes.Stats.Complete {
			t.Fatalf("step %d: %v %+v", step, err, changes.Stats)
		}
		calls += changes.Stats.APICalls
		syncs++
		moved += len(changes.Jobs)
		gone += len(changes.Gone)
		for _, j := range changes.Jobs {
			view[j.JobID] = j
		}
		for _, id := range changes.Gone {
			delete(view, id)
		}

		want := full()
		compareViews(t, step, view, want, deletedTerminal)
		if len(deletedTerminal) == 0 {
			exactSyncs++
		}
		if step%10 == 0 {
			// The periodic full listing: exactly the deleted terminal jobs go.
			for id := range deletedTerminal {
				delete(view, id)
			}
			clear(deletedTerminal)
			compareViews(t, step, view, want, nil)
			view = want
		}
	}
	if !terminalDeletes && exactSyncs != 40 {
		t.Fatalf("only %d of 40 syncs were compared exactly", exactSyncs)
	}
	if moved == 0 || gone == 0 {
		t.Fatalf("the workload changed nothing the test could check: %d jobs moved, %d gone", moved, gone)
	}
	t.Logf("%d syncs, %d API calls (%.1f per sync), %d jobs re-read, %d gone", syncs, calls, float64(calls)/float64(syncs), moved, gone)
}

// compareViews fails unless the incremental view holds the full listing's jobs, with the same
// data, plus at most the deleted terminal jobs a full listing has not yet removed.
func compareViews(t *testing.T, step int, view, full map[string]dlc.JobItem, deletedTerminal map[string]bool) {
	t.Helper()
	for id, want := range full {
		got, ok := view[id]
		if !ok {
			t.Fatalf("step %d: job %s (%s, created %s) is listed in full but missing from the incremental view", step, id, want.Status, want.GmtCreateTime)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: job %s differs: incremental %s/%s, full %s/%s", step, id, got.Status, got.GmtModifiedTime, want.Status, want.GmtModifiedTime)
		}
	}
	extra := slices.Sorted(maps.Keys(view))
	extra = slices.DeleteFunc(extra, func(id string) bool { _, ok := full[id]; return ok })
	for _, id := range extra {
		if !deletedTerminal[id] {
			t.Fatalf("step %d: job %s (%s) is in the incremental view but not listed in full", step, id, view[id].Status)
		}
	}
}

func TestListChangesCostsOneCallForNewJobsAndOnePerHundredMovingJobs(t *testing.T) {
	ctx := context.Background()
	clock := clocktesting.NewFakePassiveClock(time.Now().UTC().Truncate(time.Second))
	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{admin}, Seed: 3, Clock: clock})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	client := newClient(t, srv.URL, dlc.Config{})
	// 2,000 jobs over the last days, 150 of them still moving.
	known := make([]dlc.KnownJob, 0, 2000)
	for i, j := range sim.Generate(2000) {
		j.GmtCreateTime = dlc.FormatTime(clock.Now().Add(-time.Duration(i+10) * time.Minute))
		j.Status = dlc.StatusSucceeded
		if i < 150 {
			j.Status = dlc.StatusRunning
		}
		sim.Upsert(j)
		known = append(known, dlc.KnownJob{JobID: j.JobID, GmtCreateTime: j.GmtCreateTime, Status: j.Status})
	}
	req := &dlc.ListJobsRequest{ShowOwn: dlc.Ptr(false)}
	changes, err := dlc.ListChanges(ctx, client, req, known, dlc.ChangeOptions{PageOptions: dlc.PageOptions{Now: clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	// The newest known job is 10 min old: the listing of new jobs returns nothing (1 call); the
	// 150 moving jobs take two batches of 100.
	if changes.Stats.APICalls != 3 || len(changes.Jobs) != 150 || len(changes.Gone) != 0 {
		t.Fatalf("got %d calls, %d jobs, %d gone; want 3, 150, 0", changes.Stats.APICalls, len(changes.Jobs), len(changes.Gone))
	}

	// A lagging index drops jobs from the pages: the result says so and calls nothing gone.
	sim.SetFaults(dlcsim.Faults{OmitRate: 1})
	changes, err = dlc.ListChanges(ctx, client, req, known, dlc.ChangeOptions{PageOptions: dlc.PageOptions{Now: clock.Now}})
	if err != nil || changes.Stats.Consistent || len(changes.Gone) != 0 {
		t.Fatalf("pages missing jobs: err %v, consistent %v, %d gone; want inconsistent and none gone", err, changes.Stats.Consistent, len(changes.Gone))
	}
}
