package dlcsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

func TestGeneratedJobsArePlausibleAndDeterministic(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	gen := func() []dlcsim.Job {
		sim := dlcsim.New(dlcsim.Options{Clock: clocktesting.NewFakePassiveClock(now), Seed: 42})
		return sim.Generate(2000)
	}
	a, b := gen(), gen()
	if len(a) != 2000 {
		t.Fatalf("%d jobs", len(a))
	}
	for i := range a {
		if a[i].JobID != b[i].JobID || a[i].Status != b[i].Status || a[i].GmtCreateTime != b[i].GmtCreateTime {
			t.Fatalf("job %d differs between two runs with the same seed", i)
		}
	}
	statuses, types, chinese := map[string]int{}, map[string]int{}, 0
	for _, j := range a {
		statuses[j.Status]++
		types[j.JobType]++
		created, err := time.Parse(dlc.TimeLayout, j.GmtCreateTime)
		if err != nil || created.After(now) || created.Before(now.Add(-30*24*time.Hour)) {
			t.Fatalf("job %s created %q, outside the last 30 days", j.JobID, j.GmtCreateTime)
		}
		switch j.Status {
		case "Succeeded", "Failed", "Stopped":
			finish, err := time.Parse(dlc.TimeLayout, j.GmtFinishTime)
			if err != nil || finish.Before(created) || j.ReasonCode == "" {
				t.Fatalf("finished job %s: finish %q reason %q", j.JobID, j.GmtFinishTime, j.ReasonCode)
			}
		}
		if j.Status == "Running" && (j.GmtRunningTime == "" || j.GmtFinishTime != "") {
			t.Fatalf("running job %s has running %q finish %q", j.JobID, j.GmtRunningTime, j.GmtFinishTime)
		}
		if strings.ContainsFunc(j.DisplayName, func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff }) {
			chinese++
		}
	}
	for _, s := range []string{"Succeeded", "Failed", "Stopped", "Running", "Queuing", "Creating", "EnvPreparing"} {
		if statuses[s] == 0 {
			t.Errorf("no job in status %s: %v", s, statuses)
		}
	}
	if len(types) < 6 || chinese == 0 {
		t.Errorf("types %v, %d Chinese names", types, chinese)
	}
}

func TestLifecycleMovesJobsToTheEndAndSubmitsNewOnes(t *testing.T) {
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := clocktesting.NewFakeClock(start)
	run := func() (map[string]string, int) {
		clock.SetTime(start)
		sim := dlcsim.New(dlcsim.Options{Clock: clock, Seed: 3})
		sim.EnableLifecycle(dlcsim.Lifecycle{SubmitPerMinute: 10, Pace: 1})
		seen := map[string]bool{}
		for i := 0; i < 600; i++ {
			clock.Step(time.Second)
			sim.Step()
			for _, j := range sim.Jobs() {
				seen[j.Status] = true
			}
		}
		final := map[string]string{}
		for _, j := range sim.Jobs() {
			final[j.JobID] = j.Status
			if len(j.StatusHistory) == 0 || j.StatusHistory[0].Status != "Creating" {
				t.Fatalf("job %s history %v does not start at Creating", j.JobID, j.StatusHistory)
			}
			if j.GmtModifiedTime < j.GmtCreateTime {
				t.Fatalf("job %s modified before created", j.JobID)
			}
		}
		for _, s := range []string{"Creating", "Queuing", "EnvPreparing", "Running", "Succeeded", "Failed"} {
			if !seen[s] {
				t.Errorf("no job passed through %s in 10 minutes", s)
			}
		}
		return final, len(final)
	}
	a, n := run()
	b, _ := run()
	if n < 90 || n > 110 {
		t.Fatalf("%d jobs submitted in 10 minutes at 10/min", n)
	}
	for id, s := range a {
		if b[id] != s {
			t.Fatalf("lifecycle is not deterministic under a seed: %s is %s then %s", id, s, b[id])
		}
	}
}

func TestControlAPI(t *testing.T) {
	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{adminID}, Control: true})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	now := dlc.FormatTime(time.Now())
	if code, body := call("PUT", "/_sim/jobs", `[{"JobId":"dlca","Status":"Running","GmtCreateTime":"`+now+`"},{"JobId":"dlcb","GmtCreateTime":"`+now+`"}]`); code != 200 {
		t.Fatalf("upsert: %d %s", code, body)
	}
	if code, body := call("PATCH", "/_sim/jobs/dlca", `{"Status":"Failed","ReasonCode":"OOM"}`); code != 200 || !strings.Contains(body, `"Status":"Failed"`) {
		t.Fatalf("patch: %d %s", code, body)
	}
	if j, _ := sim.Job("dlca"); j.Status != "Failed" || j.ReasonCode != "OOM" || j.GmtCreateTime != now {
		t.Fatalf("patched job: %+v", j)
	}
	if code, _ := call("DELETE", "/_sim/jobs/dlcb", ""); code != 200 || len(sim.Jobs()) != 1 {
		t.Fatalf("delete: %d, %d jobs left", code, len(sim.Jobs()))
	}
	if code, body := call("PUT", "/_sim/faults", `{"serverErrorRate":0.5,"latency":"10ms","failRequests":[3]}`); code != 200 {
		t.Fatalf("faults: %d %s", code, body)
	}
	if f := sim.Faults(); f.ServerErrorRate != 0.5 || time.Duration(f.Latency) != 10*time.Millisecond || !slices.Equal(f.FailRequests, []int{3}) {
		t.Fatalf("faults: %+v", f)
	}
	if code, _ := call("PUT", "/_sim/faults", `{"noSuchFault":1}`); code != 400 {
		t.Fatalf("unknown fault accepted: %d", code)
	}
	code, body := call("GET", "/_sim/stats", "")
	var stats dlcsim.Stats
	if code != 200 || json.Unmarshal([]byte(body), &stats) != nil || stats.Jobs != 1 {
		t.Fatalf("stats: %d %s", code, body)
	}
	if code, _ := call("POST", "/_sim/reset", ""); code != 200 || len(sim.Jobs()) != 0 || sim.Faults().ServerErrorRate != 0 {
		t.Fatalf("reset: %d", code)
	}

	closed := dlcsim.New(dlcsim.Options{})
	srv2 := httptest.NewServer(closed.Handler())
	defer srv2.Close()
	resp, err := http.Get(srv2.URL + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("control API served without Control: %d", resp.StatusCode)
	}
}

func TestLoadJobsAcceptsAnArrayOrASavedResponse(t *testing.T) {
	sim := dlcsim.New(dlcsim.Options{})
	if n, err := sim.LoadJobs(bytes.NewBufferString(`{"RequestId":"x","TotalCount":1,"Jobs":[{"JobId":"dlc1","RequestGPU":"2"}]}`)); err != nil || n != 1 {
		t.Fatalf("saved response: %d %v", n, err)
	}
	if n, err := sim.LoadJobs(bytes.NewBufferString(`[{"JobId":"dlc2"},{"JobId":"dlc3","Description":"d"}]`)); err != nil || n != 2 {
		t.Fatalf("array: %d %v", n, err)
	}
	if _, err := sim.LoadJobs(bytes.NewBufferString(`[{"DisplayName":"no id"}]`)); err == nil {
		t.Fatal("a job without JobId was accepted")
	}
	if _, err := sim.LoadJobs(bytes.NewBufferString(`nonsense`)); err == nil {
		t.Fatal("nonsense was accepted")
	}
	if len(sim.Jobs()) != 3 {
		t.Fatalf("%d jobs", len(sim.Jobs()))
	}
}
