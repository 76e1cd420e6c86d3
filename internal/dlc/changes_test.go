package dlc_test

import (
	"cmp"
	"context"
	"encoding/json"
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
// deleted, old ones leave the 7-day window, UpdateJob changes accessibility, images, spot and node
// settings, the scheduler decides the oversold verdict) and keeps two views of a query: one
// rebuilt from a full listing at every sync, one updated from ListChanges. After every sync both
// hold the same jobs with the same data. Half the seeds also delete finished jobs, which by
// design only a full listing sees: there the incremental view may keep exactly those until the
// full listing every few syncs, which must then remove exactly them.
func TestListChangesEqualsAFullListingAfterEverySync(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		// Odd seeds delete only jobs still moving: then the views must be equal after every
		// sync, with no exception at all.
		terminalDeletes := seed%2 == 0
		t.Run(fmt.Sprintf("seed%d-terminalDeletes=%v", seed, terminalDeletes), func(t *testing.T) {
			// The query: a filter fixed at creation and a 45-minute window, so that jobs leave it
			// during the run.
			run := syncRun{seed: seed, jobs: 6000, steps: 40, minJobs: 50, caller: admin, within: 45 * time.Minute, terminalDeletes: terminalDeletes,
				req: &dlc.ListJobsRequest{JobType: dlc.Ptr("PyTorchJob"), ShowOwn: dlc.Ptr(false)}}
			if !dlc.FixedAtCreationForAdmin(run.req) {
				t.Fatalf("the query is not fixed at creation: %v", dlc.MutableFilters(run.req, true))
			}
			res := run.do(t, true)
			if !terminalDeletes && res.exactSyncs != 40 {
				t.Fatalf("only %d of 40 syncs were compared exactly", res.exactSyncs)
			}
			if res.moved == 0 || res.gone == 0 || res.updated == 0 {
				t.Fatalf("the workload changed nothing the test could check: %d jobs moved, %d gone, %d updated", res.moved, res.gone, res.updated)
			}
		})
	}
}

// syncRun is one workload: a simulator with a lifecycle, a query, and syncs alternating with
// disturbances.
type syncRun struct {
	seed            uint64
	jobs, steps     int
	req             *dlc.ListJobsRequest
	caller          dlcsim.Identity
	within          time.Duration
	terminalDeletes bool
	// minJobs is the fewest jobs the first full listing must hold for the run to mean anything.
	minJobs int
	// pace and updatesPerMinute tune the lifecycle (defaults 1 and 20; a negative rate: none).
	pace, updatesPerMinute float64
}

type syncResult struct {
	calls, syncs, moved, gone, exactSyncs int
	// updated counts the jobs of the view whose mutable fields (accessibility, JobSpecs,
	// priority, oversold verdict) changed between two syncs.
	updated int
	// drift is the first difference between the views (only when not exact).
	drift string
}

// mutableOf is what UpdateJob and the scheduler change on a job.
func mutableOf(j dlc.JobItem) string {
	b, _ := json.Marshal([]any{j.Accessibility, j.JobSpecs, j.Priority, j.UseOversoldResource})
	return string(b)
}

// do runs the workload. With exact, any difference between the views fails the test (except the
// deleted terminal jobs a full listing has not removed yet); without, the first one is returned.
func (run syncRun) do(t *testing.T, exact bool) syncResult {
	t.Helper()
	ctx := context.Background()
	clock := clocktesting.NewFakePassiveClock(time.Now().UTC().Truncate(time.Second))
	identities := []dlcsim.Identity{admin}
	if run.caller.AccessKeyID != admin.AccessKeyID {
		identities = append(identities, run.caller)
	}
	sim := dlcsim.New(dlcsim.Options{Identities: identities, Seed: run.seed, Clock: clock})
	sim.Generate(run.jobs)
	sim.EnableLifecycle(dlcsim.Lifecycle{SubmitPerMinute: 12, Pace: max(run.pace, 1), UpdatesPerMinute: cmp.Or(run.updatesPerMinute, 20)})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	client := newClient(t, srv.URL, dlc.Config{Static: &dlc.StaticCredentials{AccessKeyID: run.caller.AccessKeyID, AccessKeySecret: run.caller.AccessKeySecret}})
	rng := mathrand.New(mathrand.NewPCG(run.seed, 99))
	req := run.req
	pageOpts := dlc.PageOptions{Now: clock.Now, Within: run.within}

	full := func() map[string]dlc.JobItem {
		jobs, stats, err := dlc.ListAll(ctx, client, req, pageOpts)
		if err != nil || !stats.Consistent || !stats.Complete {
			t.Fatalf("full listing: %v %+v", err, stats)
		}
		out := map[string]dlc.JobItem{}
		for _, j := range wholeJobs(t, jobs) {
			out[j.JobID] = j
		}
		return out
	}
	view := full()
	if len(view) < max(run.minJobs, 1) {
		t.Fatalf("the workload is too small to mean anything: %d jobs", len(view))
	}
	var res syncResult
	deletedTerminal := map[string]bool{}
	for step := 1; step <= run.steps; step++ {
		clock.SetTime(clock.Now().Add(time.Duration(10+rng.IntN(110)) * time.Second))
		sim.Step()
		run.disturb(sim, rng, clock.Now(), step, view, deletedTerminal)
		applyChanges(t, client, req, pageOpts, view, &res, step)
		want := full()
		if problem := diffViews(view, want, deletedTerminal); problem != "" {
			if exact {
				t.Fatalf("step %d: %s", step, problem)
			}
			res.drift = fmt.Sprintf("step %d: %s", step, problem)
			return res
		}
		if len(deletedTerminal) == 0 {
			res.exactSyncs++
		}
		if step%10 == 0 {
			// The periodic full listing: exactly the deleted terminal jobs go.
			for id := range deletedTerminal {
				delete(view, id)
			}
			clear(deletedTerminal)
			if problem := diffViews(view, want, nil); problem != "" {
				t.Fatalf("step %d: %s", step, problem)
			}
			view = want
		}
	}
	t.Logf("%d syncs, %d API calls (%.1f per sync), %d jobs re-read, %d gone, %d updated in the view",
		res.syncs, res.calls, float64(res.calls)/float64(res.syncs), res.moved, res.gone, res.updated)
	return res
}

// disturb deletes a few jobs (terminal or not, noting the terminal ones), and adds a job that
// became visible late, created 20-50 s before now: a copy of a job the query lists, so that it
// matches the filter.
func (run syncRun) disturb(sim *dlcsim.Server, rng *mathrand.Rand, now time.Time, step int, view map[string]dlc.JobItem,
	deletedTerminal map[string]bool) {
	ids := slices.Sorted(maps.Keys(view))
	for range rng.IntN(3) {
		if len(ids) < 3 {
			break
		}
		victim, ok := sim.Job(ids[rng.IntN(len(ids))])
		if !ok {
			continue
		}
		if dlc.IsTerminal(victim.Status) {
			if !run.terminalDeletes {
				continue
			}
			deletedTerminal[victim.JobID] = true
		}
		sim.Delete(victim.JobID)
	}
	if rng.IntN(3) == 0 && len(ids) > 0 {
		if late, ok := sim.Job(ids[rng.IntN(len(ids))]); ok {
			late.JobID = fmt.Sprintf("dlclate%03d", step)
			late.GmtCreateTime = dlc.FormatTime(now.Add(-time.Duration(20+rng.IntN(30)) * time.Second))
			sim.Upsert(late)
		}
	}
}

// applyChanges lists what changed since view and applies it to view, counting into res.
func applyChanges(t *testing.T, client dlc.Lister, req *dlc.ListJobsRequest, pageOpts dlc.PageOptions,
	view map[string]dlc.JobItem, res *syncResult, step int) {
	t.Helper()
	known := make([]dlc.KnownJob, 0, len(view))
	for _, j := range view {
		known = append(known, dlc.KnownJob{JobID: j.JobID, GmtCreateTime: j.GmtCreateTime, Status: j.Status})
	}
	changes, err := dlc.ListChanges(context.Background(), client, req, known, dlc.ChangeOptions{PageOptions: pageOpts})
	if err != nil || !changes.Stats.Consistent || !changes.Stats.Complete {
		t.Fatalf("step %d: %v %+v", step, err, changes.Stats)
	}
	res.calls += changes.Stats.APICalls
	res.syncs++
	res.moved += len(changes.Jobs)
	res.gone += len(changes.Gone)
	for _, j := range wholeJobs(t, changes.Jobs) {
		if old, ok := view[j.JobID]; ok && mutableOf(old) != mutableOf(j) {
			res.updated++
		}
		view[j.JobID] = j
	}
	for _, id := range changes.Gone {
		delete(view, id)
	}
}

// diffViews says how the incremental view differs from the full listing: a job missing, a job with
// other data, or a job too many that is not one of the deleted terminal jobs a full listing has not
// yet removed. It returns "" when they agree.
func diffViews(view, full map[string]dlc.JobItem, deletedTerminal map[string]bool) string {
	for _, id := range slices.Sorted(maps.Keys(full)) {
		want := full[id]
		got, ok := view[id]
		if !ok {
			return fmt.Sprintf("job %s (%s, created %s) is listed in full but missing from the incremental view", id, want.Status, want.GmtCreateTime)
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("job %s differs: incremental %s/%s, full %s/%s", id, got.Status, got.GmtModifiedTime, want.Status, want.GmtModifiedTime)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(view)) {
		if _, ok := full[id]; !ok && !deletedTerminal[id] {
			return fmt.Sprintf("job %s (%s) is in the incremental view but not listed in full", id, view[id].Status)
		}
	}
	return ""
}

// alice is a caller who is not an admin and owns a share of the generated jobs (the generator's
// user 1557702098194904).
var alice = dlcsim.Identity{AccessKeyID: "alice-key", AccessKeySecret: "alice-secret-0123456789", UserID: "1557702098194904", Username: "alice"}

// fixedFilterCase is a listing whose filter is fixed at creation, and who lists.
type fixedFilterCase struct {
	req    *dlc.ListJobsRequest
	caller dlcsim.Identity
}

// filterJobs is the size of the workload of the fixed-filter cases.
const filterJobs = 800

// asAdmin lists with ShowOwn=false (every job the admin sees); asOwner lists the caller's own.
func asAdmin(r dlc.ListJobsRequest) *dlc.ListJobsRequest {
	r.ShowOwn = dlc.Ptr(false)
	return &r
}

func asOwner(r dlc.ListJobsRequest) *dlc.ListJobsRequest {
	r.ShowOwn = dlc.Ptr(true)
	return &r
}

// fixedFilterCases are the cases of every filter fixed at creation, with values the generator of
// internal/dlcsim produces; the job ID and pipeline cases come from a probe of the workload.
func fixedFilterCases(t *testing.T, now time.Time) map[string]fixedFilterCase {
	t.Helper()
	cases := map[string]fixedFilterCase{
		"JobType":               {asAdmin(dlc.ListJobsRequest{JobType: dlc.Ptr("TFJob")}), admin},
		"WorkspaceId":           {asAdmin(dlc.ListJobsRequest{WorkspaceID: dlc.Ptr("1024")}), admin},
		"FromAllWorkspaces":     {asOwner(dlc.ListJobsRequest{FromAllWorkspaces: dlc.Ptr(true), WorkspaceID: dlc.Ptr("268")}), alice},
		"ShowOwn":               {asOwner(dlc.ListJobsRequest{}), alice},
		"UserIdForFilter":       {asAdmin(dlc.ListJobsRequest{UserIDForFilter: dlc.Ptr("1557702098194905")}), admin},
		"DisplayName":           {asAdmin(dlc.ListJobsRequest{DisplayName: dlc.Ptr("b")}), admin},
		"DisplayNameSearchMode": {asAdmin(dlc.ListJobsRequest{DisplayName: dlc.Ptr("qwen"), DisplayNameSearchMode: dlc.Ptr("prefix")}), admin},
		"TemplateId":            {asAdmin(dlc.ListJobsRequest{TemplateID: dlc.Ptr("tml1a2b3c")}), admin},
		"Caller":                {asAdmin(dlc.ListJobsRequest{Caller: dlc.Ptr("console")}), admin},
		"BusinessUserId":        {asAdmin(dlc.ListJobsRequest{BusinessUserID: dlc.Ptr("bu-1557702098194905")}), admin},
		"StartTime":             {asAdmin(dlc.ListJobsRequest{StartTime: dlc.Ptr(dlc.FormatTime(now.Add(-3 * time.Hour)))}), admin},
		"EndTime": {asAdmin(dlc.ListJobsRequest{StartTime: dlc.Ptr(dlc.FormatTime(now.Add(-5 * time.Hour))),
			EndTime: dlc.Ptr(dlc.FormatTime(now.Add(-time.Hour)))}), admin},
		"TimeRangeField": {asAdmin(dlc.ListJobsRequest{TimeRangeField: dlc.Ptr("GmtCreateTime"), ResourceQuotaName: nil, JobType: dlc.Ptr("RayJob")}), admin},
		"PageNumber":     {asAdmin(dlc.ListJobsRequest{PageNumber: dlc.Ptr(int32(2)), JobType: dlc.Ptr("XGBoostJob")}), admin},
		"PageSize":       {asAdmin(dlc.ListJobsRequest{PageSize: dlc.Ptr(int32(7)), JobType: dlc.Ptr("MPIJob")}), admin},
		"SortBy":         {asAdmin(dlc.ListJobsRequest{SortBy: dlc.Ptr("Status"), JobType: dlc.Ptr("ElasticBatchJob")}), admin},
		"Order":          {asAdmin(dlc.ListJobsRequest{Order: dlc.Ptr("asc"), WorkspaceID: dlc.Ptr("4096")}), admin},
	}
	// Job IDs and a pipeline of the workload's recent jobs: the generator is deterministic under
	// the seed, the number of jobs and the identities, so a probe generates the same jobs.
	probe := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{admin}, Seed: 1,
		Clock: clocktesting.NewFakePassiveClock(now.Truncate(time.Second))})
	var recent []string
	for _, j := range probe.Generate(filterJobs) {
		if j.GmtCreateTime < dlc.FormatTime(now.Add(-5*time.Hour)) {
			continue
		}
		recent = append(recent, j.JobID)
		if j.Settings != nil && j.Settings.PipelineID != "" {
			cases["PipelineId"] = fixedFilterCase{asAdmin(dlc.ListJobsRequest{PipelineID: dlc.Ptr(j.Settings.PipelineID)}), admin}
		}
	}
	if len(recent) < 20 {
		t.Fatalf("only %d recent jobs in the probe", len(recent))
	}
	cases["JobId"] = fixedFilterCase{asAdmin(dlc.ListJobsRequest{JobID: dlc.Ptr(recent[0])}), admin}
	cases["JobIds"] = fixedFilterCase{asAdmin(dlc.ListJobsRequest{JobIDs: recent[:20]}), admin}
	return cases
}

// TestListChangesEqualsAFullListingForEveryFilterFixedAtCreation runs the workload once per
// parameter FilterRules calls fixed, with jobs whose mutable fields change under it: for each,
// the incremental view equals the full listing after every sync. A fixed rule without a case
// here fails the test, so a parameter newly declared fixed is proven before it is trusted.
func TestListChangesEqualsAFullListingForEveryFilterFixedAtCreation(t *testing.T) {
	now := time.Now().UTC()
	cases := fixedFilterCases(t, now)
	updated := 0
	for _, rule := range dlc.FilterRules {
		if !rule.Fixed {
			continue
		}
		tc, ok := cases[rule.Parameter]
		if !ok {
			t.Errorf("%s is declared fixed at creation but no case here proves it", rule.Parameter)
			continue
		}
		t.Run(rule.Parameter, func(t *testing.T) {
			// Note: the admin cases list with ShowOwn=false, fixed only for a caller who sees
			// every job; alice's list her own jobs, fixed for anyone.
			fixed := dlc.FixedAtCreation(tc.req)
			if tc.caller.Admin {
				fixed = dlc.FixedAtCreationForAdmin(tc.req)
			}
			if !fixed {
				t.Fatalf("FixedAtCreation refuses the case: %v", dlc.MutableFilters(tc.req, tc.caller.Admin))
			}
			run := syncRun{seed: 1, jobs: filterJobs, steps: 8, caller: tc.caller, within: 6 * time.Hour, req: tc.req}
			res := run.do(t, true)
			updated += res.updated
		})
	}
	if updated == 0 {
		t.Fatal("no listed job had a mutable field changed: the runs prove nothing about mutable fields")
	}
}

// TestIncrementalListingDriftsWhereFixedAtCreationRefuses shows that the refusals are needed: with
// a filter on a mutable field, or as a caller who is not an admin listing other users' jobs, the
// incremental view misses jobs that a full listing has.
func TestIncrementalListingDriftsWhereFixedAtCreationRefuses(t *testing.T) {
	cases := []struct {
		name   string
		req    *dlc.ListJobsRequest
		caller dlcsim.Identity
	}{
		// UpdateJob turns PRIVATE jobs PUBLIC: they enter the filter without being new.
		{"Accessibility", &dlc.ListJobsRequest{Accessibility: dlc.Ptr(dlc.AccessibilityPublic), ShowOwn: dlc.Ptr(false)}, admin},
		// Spot settings change: jobs enter PaymentType=Spot.
		{"PaymentType", &dlc.ListJobsRequest{PaymentType: dlc.Ptr("Spot"), ShowOwn: dlc.Ptr(false)}, admin},
		// Another user's job turned PUBLIC becomes visible to alice.
		{"visibility for a caller who is not an admin", &dlc.ListJobsRequest{JobType: dlc.Ptr("PyTorchJob"), ShowOwn: dlc.Ptr(false)}, alice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if dlc.FixedAtCreation(tc.req) || (tc.caller.Admin && dlc.FixedAtCreationForAdmin(tc.req)) {
				t.Fatalf("FixedAtCreation accepts a filter that drifts")
			}
			// Note: jobs that live longer (pace 5) and many updates, so that a job the filter did
			// not list changes after it left the range the listing of new jobs covers.
			run := syncRun{seed: 2, jobs: 800, steps: 30, caller: tc.caller, within: 6 * time.Hour, req: tc.req, pace: 5, updatesPerMinute: 60}
			res := run.do(t, false)
			if res.drift == "" {
				t.Fatalf("the incremental view never drifted in %d syncs: the test cannot show why incremental listing is refused", res.syncs)
			}
			t.Logf("drift, as expected: %s", res.drift)
			// The control: the same workload without updates never drifts, so the updates are
			// what the incremental listing cannot see.
			run.updatesPerMinute = -1
			run.do(t, true)
		})
	}
	// The same non-admin query is fixed for an admin, and the refusal names its reasons.
	req := &dlc.ListJobsRequest{JobType: dlc.Ptr("PyTorchJob"), ShowOwn: dlc.Ptr(false), Accessibility: dlc.Ptr("PUBLIC"), TimeRangeField: dlc.Ptr("GmtFinishTime")}
	if got := dlc.MutableFilters(req, false); !slices.Equal(got, []string{"Accessibility", "TimeRangeField", "ShowOwn"}) {
		t.Fatalf("MutableFilters %v", got)
	}
	if !dlc.FixedAtCreationForAdmin(&dlc.ListJobsRequest{JobType: dlc.Ptr("PyTorchJob"), ShowOwn: dlc.Ptr(false)}) ||
		dlc.FixedAtCreation(&dlc.ListJobsRequest{JobType: dlc.Ptr("PyTorchJob")}) ||
		!dlc.FixedAtCreation(&dlc.ListJobsRequest{JobType: dlc.Ptr("PyTorchJob"), ShowOwn: dlc.Ptr(true), TimeRangeField: dlc.Ptr("GmtCreateTime")}) ||
		dlc.FixedAtCreation(&dlc.ListJobsRequest{ShowOwn: dlc.Ptr(true), Status: dlc.Ptr("")}) {
		t.Fatal("FixedAtCreation misjudges a plain request")
	}
}

// TestEveryRequestFieldIsClassified: a ListJobsRequest field without a FilterRule is treated as
// mutable, which is safe but silently disables incremental listing; name it here instead.
func TestEveryRequestFieldIsClassified(t *testing.T) {
	rules := map[string]bool{}
	for _, r := range dlc.FilterRules {
		if rules[r.Field] {
			t.Errorf("field %s classified twice", r.Field)
		}
		rules[r.Field] = true
		if r.Reason == "" || r.Parameter == "" {
			t.Errorf("rule %+v lacks a parameter or a reason", r)
		}
	}
	typ := reflect.TypeOf(dlc.ListJobsRequest{})
	for i := range typ.NumField() {
		if !rules[typ.Field(i).Name] {
			t.Errorf("ListJobsRequest.%s has no FilterRule", typ.Field(i).Name)
		}
	}
	if len(rules) != typ.NumField() {
		t.Errorf("%d rules for %d fields", len(rules), typ.NumField())
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
