package dlcsim_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

// TestTheControlAPIUpdatesMutableFieldsAndTheFiltersSeeThem changes, through POST
// /_sim/jobs/{id}/update, each field UpdateJob or the scheduler change, and checks that the
// filters reading it select the job by its new value from the next request on.
func TestTheControlAPIUpdatesMutableFieldsAndTheFiltersSeeThem(t *testing.T) {
	ctl := newRawEnv(t, dlcsim.Options{}, fixture(time.Now())...)
	list := func(req dlc.ListJobsRequest) []string {
		req.ShowOwn, req.PageSize = dlc.Ptr(false), dlc.Ptr(int32(100))
		return pageIDs(ctl.page(t, req))
	}
	update := func(id, body string) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, ctl.url+"/_sim/jobs/"+id+"/update", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	cases := []struct {
		name          string
		req           dlc.ListJobsRequest
		before, after []string
		job, body     string
	}{
		{"Accessibility", dlc.ListJobsRequest{Accessibility: dlc.Ptr("PRIVATE")}, []string{"dlcj3"}, []string{"dlcj2", "dlcj3"},
			"dlcj2", `{"Accessibility":"PRIVATE"}`},
		{"ImageSearch", dlc.ListJobsRequest{ImageSearch: dlc.Ptr("pytorch")}, []string{"dlcj1"}, []string{"dlcj1", "dlcj2"},
			"dlcj2", `{"JobSpecs":[{"Type":"Worker","Image":"pai/pytorch-training:2.1","UseSpotInstance":true}]}`},
		{"PaymentType", dlc.ListJobsRequest{PaymentType: dlc.Ptr("Spot")}, []string{"dlcj2"}, nil,
			"dlcj2", `{"JobSpecs":[{"Type":"Worker","Image":"pai/pytorch-training:2.1"}]}`},
		{"EnableAssignNode", dlc.ListJobsRequest{EnableAssignNode: dlc.Ptr(true)}, []string{"dlcj1"}, []string{"dlcj1", "dlcj3"},
			"dlcj3", `{"JobSpecs":[{"AssignNodeSpec":{"EnableAssignNode":true}}]}`},
		{"OversoldInfo decided at scheduling", dlc.ListJobsRequest{OversoldInfo: dlc.Ptr("AcceptQuotaOverSold-true")}, []string{"dlcj1"}, nil,
			"dlcj1", `{"UseOversoldResource":false}`},
		{"OversoldType", dlc.ListJobsRequest{OversoldInfo: dlc.Ptr("ForceQuotaOverSold")}, nil, []string{"dlcj1"},
			"dlcj1", `{"OversoldType":"ForceQuotaOverSold"}`},
		{"Priority", dlc.ListJobsRequest{NumericRangeField: dlc.Ptr("Priority"), NumericRangeMin: dlc.Ptr(int64(9))}, nil, []string{"dlcj2"},
			"dlcj2", `{"Priority":9}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := idsSorted(list(tc.req)); !slices.Equal(got, tc.before) {
				t.Fatalf("before: %v, want %v", got, tc.before)
			}
			code, body := update(tc.job, tc.body)
			if code != 200 {
				t.Fatalf("update: %d %s", code, body)
			}
			var j dlcsim.Job
			if err := json.Unmarshal([]byte(body), &j); err != nil || j.JobID != tc.job || j.GmtModifiedTime == "" {
				t.Fatalf("the update answered %s (%v)", body, err)
			}
			if got := idsSorted(list(tc.req)); !slices.Equal(got, tc.after) {
				t.Fatalf("after: %v, want %v", got, tc.after)
			}
		})
	}
	for _, bad := range []string{`{"Accessibility":"SECRET"}`, `{"Priority":0}`, `{"Status":"Failed"}`} {
		if code, _ := update("dlcj1", bad); code != 400 {
			t.Fatalf("%s accepted: %d", bad, code)
		}
	}
	if code, _ := update("nosuchjob", `{"Priority":2}`); code != 404 {
		t.Fatalf("an unknown job: %d", code)
	}
}

func idsSorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// TestPatchDoesNotWriteIntoTheStoredJob: a job handed out by Job() must not change when the
// stored job is patched (and vice versa), or readers would see data change under them.
func TestPatchDoesNotWriteIntoTheStoredJob(t *testing.T) {
	sim := dlcsim.New(dlcsim.Options{})
	sim.Upsert(dlcsim.Job{JobItem: dlc.JobItem{JobID: "dlc1", JobSpecs: []dlc.JobSpec{{Type: "Worker", Image: "old"}}}})
	held, _ := sim.Job("dlc1")
	sim.Patch("dlc1", func(j *dlcsim.Job) { j.JobSpecs[0].Image = "new" })
	if held.JobSpecs[0].Image != "old" {
		t.Fatalf("a copy handed out earlier changed to %q", held.JobSpecs[0].Image)
	}
	if j, _ := sim.Job("dlc1"); j.JobSpecs[0].Image != "new" {
		t.Fatalf("the patch was lost: %q", j.JobSpecs[0].Image)
	}
}

// TestLifecycleUpdatesMutableFieldsOfUnfinishedJobsDeterministically runs the lifecycle with
// UpdateJob-like changes and checks, step by step, that they happen, only to jobs that were not
// finished (the default), the same way under the same seed, and that scheduling decides the
// oversold verdict.
func TestLifecycleUpdatesMutableFieldsOfUnfinishedJobsDeterministically(t *testing.T) {
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	run := func() (map[string]int, []dlcsim.Job) {
		clock := clocktesting.NewFakePassiveClock(start)
		sim := dlcsim.New(dlcsim.Options{Clock: clock, Seed: 11})
		sim.Generate(300)
		sim.EnableLifecycle(dlcsim.Lifecycle{SubmitPerMinute: 6, Pace: 1, UpdatesPerMinute: 30})
		prev := map[string]dlcsim.Job{}
		changed := map[string]int{}
		for range 300 {
			clock.SetTime(clock.Now().Add(time.Second))
			sim.Step()
			for _, j := range sim.Jobs() {
				before, ok := prev[j.JobID]
				prev[j.JobID] = j
				if !ok {
					continue
				}
				kinds := 0
				if before.Accessibility != j.Accessibility {
					changed["Accessibility"]++
					kinds++
				}
				if !reflect.DeepEqual(before.JobSpecs, j.JobSpecs) {
					changed["JobSpecs"]++
					kinds++
				}
				if *before.Priority != *j.Priority {
					changed["Priority"]++
					kinds++
				}
				if kinds > 0 && dlc.IsTerminal(before.Status) {
					t.Fatalf("job %s was %s, yet updated", j.JobID, before.Status)
				}
			}
		}
		return changed, sim.Jobs()
	}
	changed, jobs := run()
	again, jobs2 := run()
	if !reflect.DeepEqual(changed, again) || !reflect.DeepEqual(jobs, jobs2) {
		t.Fatal("the same seed gave different updates")
	}
	// 5 minutes at 30 a minute: about 150 changes, each of one of five kinds.
	if changed["Accessibility"] < 10 || changed["JobSpecs"] < 30 || changed["Priority"] < 10 {
		t.Fatalf("too few updates: %v", changed)
	}
	for _, j := range jobs {
		scheduled := slices.ContainsFunc(j.StatusHistory, func(s dlc.StatusTransitionItem) bool { return s.Status == dlc.StatusEnvPreparing })
		if j.Settings != nil && j.Settings.OversoldType != "" && scheduled != (j.UseOversoldResource != nil) {
			t.Fatalf("job %s (%s, %s): scheduled %v but UseOversoldResource %v", j.JobID, j.Status, j.Settings.OversoldType, scheduled, j.UseOversoldResource)
		}
	}
}
