package dlcsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

// rawEnv serves a simulator and builds signed ListJobs requests that a test sends itself, to see
// the bytes and the timing of an answer (the nonce check is off so a request can be replayed).
type rawEnv struct {
	sim *dlcsim.Server
	url string
}

func newRawEnv(t *testing.T, opts dlcsim.Options, jobs ...dlcsim.Job) *rawEnv {
	t.Helper()
	opts.Identities = []dlcsim.Identity{adminID}
	opts.DisableNonceCheck, opts.Control = true, true
	sim := dlcsim.New(opts)
	sim.Upsert(jobs...)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &rawEnv{sim: sim, url: srv.URL}
}

// captureTransport keeps the request the dlc client signed and answers it with an empty page.
type captureTransport struct{ req *http.Request }

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.req = r.Clone(context.Background())
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
		Body: io.NopCloser(strings.NewReader(`{"Jobs":[],"TotalCount":0,"RequestId":"x"}`))}, nil
}

// signed returns a signed request for req (ShowOwn=false unless set), to send with send.
func (e *rawEnv) signed(t *testing.T, req dlc.ListJobsRequest) *http.Request {
	t.Helper()
	if req.ShowOwn == nil {
		req.ShowOwn = dlc.Ptr(false)
	}
	capture := &captureTransport{}
	c, err := dlc.NewClient(dlc.Config{RegionID: "cn-hangzhou", Endpoint: e.url, Transport: capture, Retry: dlc.RetryPolicy{MaxAttempts: 1},
		Static: &dlc.StaticCredentials{AccessKeyID: adminID.AccessKeyID, AccessKeySecret: adminID.AccessKeySecret}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListJobs(context.Background(), &req); err != nil {
		t.Fatalf("signing a request: %v", err)
	}
	return capture.req
}

func send(ctx context.Context, r *http.Request) (*http.Response, error) {
	return http.DefaultClient.Do(r.Clone(ctx))
}

// page sends req and decodes the answer into a map (numbers as json.Number).
func (e *rawEnv) page(t *testing.T, req dlc.ListJobsRequest) map[string]any {
	t.Helper()
	resp, err := send(context.Background(), e.signed(t, req))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, data)
	}
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("decoding %.200s: %v", data, err)
	}
	return body
}

func pageIDs(body map[string]any) []string {
	var out []string
	for _, j := range body["Jobs"].([]any) {
		out = append(out, j.(map[string]any)["JobId"].(string))
	}
	return out
}

// simpleJobs returns n public jobs dlcf00, dlcf01, ... created one second apart, newest last.
func simpleJobs(now time.Time, n int) []dlcsim.Job {
	out := make([]dlcsim.Job, n)
	for i := range out {
		out[i] = dlcsim.Job{JobItem: dlc.JobItem{JobID: fmt.Sprintf("dlcf%02d", i), JobType: "TFJob", Status: dlc.StatusSucceeded,
			Accessibility: dlc.AccessibilityPublic, UserID: "u1", GmtCreateTime: ts(now.Add(time.Duration(i-n) * time.Second))}}
	}
	return out
}

func TestTotalCountCanLieInEachWay(t *testing.T) {
	e := newRawEnv(t, dlcsim.Options{}, simpleJobs(time.Now(), 7)...)
	cases := []struct {
		mode  string
		by    int64
		want  string // "" = no TotalCount field
		honst bool
	}{
		{"", 0, "7", true},
		{"zero", 0, "0", false},
		{"omit", 0, "", false},
		{"negative", 0, "-1", false},
		{"negative", 5, "-5", false},
		{"less", 0, "6", false},
		{"less", 3, "4", false},
		{"more", 4, "11", false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%d", tc.mode, tc.by), func(t *testing.T) {
			e.sim.SetFaults(dlcsim.Faults{TotalCount: tc.mode, TotalCountBy: tc.by})
			body := e.page(t, dlc.ListJobsRequest{PageSize: dlc.Ptr(int32(100))})
			got, present := body["TotalCount"]
			switch {
			case tc.want == "" && present:
				t.Fatalf("TotalCount %v sent, want none", got)
			case tc.want != "" && (!present || got.(json.Number).String() != tc.want):
				t.Fatalf("TotalCount %v, want %s", got, tc.want)
			}
			// The jobs themselves are the honest ones.
			if n := len(pageIDs(body)); n != 7 {
				t.Fatalf("%d jobs, want 7", n)
			}
		})
	}
}

func TestOversizePagesServeMoreJobsThanPageSizeAndOverlap(t *testing.T) {
	e := newRawEnv(t, dlcsim.Options{}, simpleJobs(time.Now(), 10)...)
	e.sim.SetFaults(dlcsim.Faults{OversizePage: 2})
	p1 := pageIDs(e.page(t, dlc.ListJobsRequest{PageSize: dlc.Ptr(int32(3)), PageNumber: dlc.Ptr(int32(1))}))
	p2 := pageIDs(e.page(t, dlc.ListJobsRequest{PageSize: dlc.Ptr(int32(3)), PageNumber: dlc.Ptr(int32(2))}))
	// Newest first: dlcf09 ... dlcf00. Page 2 starts at the 4th job, as PageSize says.
	if want := []string{"dlcf09", "dlcf08", "dlcf07", "dlcf06", "dlcf05"}; !slices.Equal(p1, want) {
		t.Fatalf("page 1 %v, want %v", p1, want)
	}
	if want := []string{"dlcf06", "dlcf05", "dlcf04", "dlcf03", "dlcf02"}; !slices.Equal(p2, want) {
		t.Fatalf("page 2 %v, want %v", p2, want)
	}
}

// tiedJobs returns 5 jobs created in distinct seconds and 30 created in one earlier second.
func tiedJobs(now time.Time) []dlcsim.Job {
	jobs := simpleJobs(now, 5)
	for i := range 30 {
		jobs = append(jobs, dlcsim.Job{JobItem: dlc.JobItem{JobID: fmt.Sprintf("dlct%02d", i), JobType: "TFJob", Status: dlc.StatusRunning,
			Accessibility: dlc.AccessibilityPublic, UserID: "u1", GmtCreateTime: ts(now.Add(-time.Minute))}})
	}
	return jobs
}

func TestShuffledTiesMakePagesOverlapAndSkipDeterministically(t *testing.T) {
	now := time.Now()
	walk := func(e *rawEnv) [][]string {
		var pages [][]string
		for p := int32(1); p <= 4; p++ {
			pages = append(pages, pageIDs(e.page(t, dlc.ListJobsRequest{PageSize: dlc.Ptr(int32(10)), PageNumber: dlc.Ptr(p)})))
		}
		return pages
	}
	distinct := func(pages [][]string) int {
		seen := map[string]bool{}
		for _, p := range pages {
			for _, id := range p {
				seen[id] = true
			}
		}
		return len(seen)
	}

	honest := newRawEnv(t, dlcsim.Options{Seed: 5}, tiedJobs(now)...)
	if got := walk(honest); distinct(got) != 35 || got[0][5] != "dlct29" || got[1][0] != "dlct24" {
		t.Fatalf("without the fault a walk sees every job once, ties by JobId descending: %v", got)
	}

	var walks [][][]string
	for range 2 {
		e := newRawEnv(t, dlcsim.Options{Seed: 5}, tiedJobs(now)...)
		e.sim.SetFaults(dlcsim.Faults{ShuffleTies: true})
		var w [][]string
		for range 3 {
			w = append(w, walk(e)...)
		}
		walks = append(walks, w)
	}
	a := walks[0]
	for i := range a {
		if !slices.Equal(a[i], walks[1][i]) {
			t.Fatalf("request %d differs between two servers with the same seed: %v vs %v", i+1, a[i], walks[1][i])
		}
	}
	lost := false
	for w := 0; w < len(a); w += 4 {
		// Jobs of distinct seconds keep their places; only the tied ones move.
		if !slices.Equal(a[w][:5], []string{"dlcf04", "dlcf03", "dlcf02", "dlcf01", "dlcf00"}) {
			t.Fatalf("walk %d: the untied jobs moved: %v", w/4, a[w])
		}
		if distinct(a[w:w+4]) < 35 {
			lost = true
		}
	}
	if !lost {
		t.Fatalf("no walk skipped a tied job: %v", a)
	}
	if slices.Equal(a[0], a[4]) && slices.Equal(a[4], a[8]) {
		t.Fatalf("page 1 came in the same order on every request: %v", a[0])
	}
}

func TestASlowPageSendsItsHeadersThenWaits(t *testing.T) {
	e := newRawEnv(t, dlcsim.Options{}, simpleJobs(time.Now(), 3)...)
	const delay = 300 * time.Millisecond
	e.sim.SetFaults(dlcsim.Faults{PageDelay: dlcsim.Duration(delay)})
	start := time.Now()
	resp, err := send(context.Background(), e.signed(t, dlc.ListJobsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	headers := time.Since(start)
	data, err := io.ReadAll(resp.Body)
	whole := time.Since(start)
	if err != nil || !json.Valid(data) {
		t.Fatalf("body %q: %v", data, err)
	}
	if headers >= delay/2 || whole < delay {
		t.Fatalf("headers after %v, body after %v; want headers at once and the body after %v", headers, whole, delay)
	}

	// A client that gives up mid-body gets an error, not a page.
	ctx, cancel := context.WithTimeout(context.Background(), delay/3)
	defer cancel()
	if resp, err := send(ctx, e.signed(t, dlc.ListJobsRequest{})); err == nil {
		_, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err == nil {
			t.Fatal("a client with a shorter deadline read the whole slow page")
		}
	}
}

func TestAHangingEndpointAnswersOnlyWhenTheClientGivesUp(t *testing.T) {
	e := newRawEnv(t, dlcsim.Options{}, simpleJobs(time.Now(), 3)...)
	e.sim.SetFaults(dlcsim.Faults{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := send(ctx, e.signed(t, dlc.ListJobsRequest{}))
	if err == nil || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("after %v: %v; want the client's deadline to end the request", time.Since(start), err)
	}

	// Changing the faults releases a request still held.
	done := make(chan error, 1)
	req := e.signed(t, dlc.ListJobsRequest{})
	go func() {
		resp, err := send(context.Background(), req)
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("a hanging endpoint answered: %v", err)
	default:
	}
	e.sim.SetFaults(dlcsim.Faults{})
	select {
	case err := <-done:
		// Note: the hang sends nothing, so how the request ends (an empty answer or an error)
		// is not the point, only that it ends; logged for whoever reads a -v run.
		t.Logf("the held request ended when the faults changed (error: %v)", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the held request was not released when the faults changed")
	}
}

func TestAPaddedBodyIsStreamedNotHeld(t *testing.T) {
	e := newRawEnv(t, dlcsim.Options{}, simpleJobs(time.Now(), 3)...)
	const mb = 64
	e.sim.SetFaults(dlcsim.Faults{PadMB: mb})
	req := e.signed(t, dlc.ListJobsRequest{})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := send(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// Read the head to check the shape, and discard the rest.
	head := make([]byte, 12)
	if _, err := io.ReadFull(resp.Body, head); err != nil || string(head) != `{"Padding":"` {
		t.Fatalf("head %q: %v", head, err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n < mb<<20 {
		t.Fatalf("read %d bytes: %v; want more than %d MiB", n, err, mb)
	}
	// Server and client together allocated a small fraction of the body.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("serving a %d MiB body allocated %d MiB: it was held in memory", mb, alloc>>20)
	}

	// A small padded page is valid JSON with the honest jobs.
	e.sim.SetFaults(dlcsim.Faults{PadMB: 1})
	body := e.page(t, dlc.ListJobsRequest{})
	if len(body["Padding"].(string)) != 1<<20 || len(pageIDs(body)) != 3 || body["TotalCount"].(json.Number).String() != "3" {
		t.Fatalf("padded page: %d padding bytes, jobs %v, TotalCount %v", len(body["Padding"].(string)), pageIDs(body), body["TotalCount"])
	}
}

func TestAPageOfTwoHundredThousandTinyJobs(t *testing.T) {
	e := newRawEnv(t, dlcsim.Options{}, simpleJobs(time.Now(), 3)...)
	const n = 200_000
	e.sim.SetFaults(dlcsim.Faults{TinyJobs: n})
	body := e.page(t, dlc.ListJobsRequest{})
	ids := pageIDs(body)
	if len(ids) != n || ids[0] != "tiny-0" || ids[n-1] != fmt.Sprintf("tiny-%d", n-1) || body["TotalCount"].(json.Number).String() != "200000" {
		t.Fatalf("%d jobs (%v ... ), TotalCount %v", len(ids), ids[:min(3, len(ids))], body["TotalCount"])
	}
	if job := body["Jobs"].([]any)[1].(map[string]any); len(job) != 1 {
		t.Fatalf("a tiny job has fields %v, want only JobId", job)
	}
	if s := e.sim.Stats(); s.JobsServed != n {
		t.Fatalf("stats counted %d jobs served, want %d", s.JobsServed, n)
	}
}

func TestLiveDurationGrowsOnEveryCallForRunningJobsOnly(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	clock := clocktesting.NewFakePassiveClock(now)
	stored := int64(5)
	jobs := []dlcsim.Job{
		{JobItem: dlc.JobItem{JobID: "dlcrun", Status: dlc.StatusRunning, Accessibility: "PUBLIC", GmtCreateTime: ts(now.Add(-time.Hour)),
			GmtRunningTime: ts(now.Add(-100 * time.Second)), Duration: &stored}},
		{JobItem: dlc.JobItem{JobID: "dlcdone", Status: dlc.StatusSucceeded, Accessibility: "PUBLIC", GmtCreateTime: ts(now.Add(-2 * time.Hour)),
			GmtRunningTime: ts(now.Add(-100 * time.Minute)), Duration: &stored}},
	}
	e := newRawEnv(t, dlcsim.Options{Clock: clock}, jobs...)
	durations := func() map[string]string {
		out := map[string]string{}
		for _, j := range e.page(t, dlc.ListJobsRequest{})["Jobs"].([]any) {
			m := j.(map[string]any)
			out[m["JobId"].(string)] = m["Duration"].(json.Number).String()
		}
		return out
	}
	if d := durations(); d["dlcrun"] != "5" || d["dlcdone"] != "5" {
		t.Fatalf("off by default: %v", d)
	}
	e.sim.SetFaults(dlcsim.Faults{LiveDuration: true})
	if d := durations(); d["dlcrun"] != "100" || d["dlcdone"] != "5" {
		t.Fatalf("live: %v, want the running job at 100 s and the finished one as stored", d)
	}
	clock.SetTime(now.Add(30 * time.Second))
	if d := durations(); d["dlcrun"] != "130" {
		t.Fatalf("30 s later: %v, want 130", d)
	}
	// The Duration filter sees what the answer shows.
	long := func() []string {
		return pageIDs(e.page(t, dlc.ListJobsRequest{NumericRangeField: dlc.Ptr("Duration"), NumericRangeMin: dlc.Ptr(int64(120))}))
	}
	if got := long(); !slices.Equal(got, []string{"dlcrun"}) {
		t.Fatalf("Duration >= 120 at 130 s: %v", got)
	}
	e.sim.SetFaults(dlcsim.Faults{})
	if got := long(); len(got) != 0 {
		t.Fatalf("Duration >= 120 with the stored 5 s: %v", got)
	}
	if j, _ := e.sim.Job("dlcrun"); *j.Duration != 5 {
		t.Fatalf("the stored job changed: Duration %d", *j.Duration)
	}
}

func TestEveryNewFaultIsSwitchableThroughTheControlAPI(t *testing.T) {
	e := newRawEnv(t, dlcsim.Options{})
	put := func(body string) int {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, e.url+"/_sim/faults", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	all := `{"totalCount":"less","totalCountBy":2,"oversizePage":3,"shuffleTies":true,"pageDelay":"1s","hang":true,` +
		`"padMB":200,"tinyJobs":200000,"liveDuration":true}`
	if code := put(all); code != 200 {
		t.Fatalf("PUT: %d", code)
	}
	want := dlcsim.Faults{TotalCount: "less", TotalCountBy: 2, OversizePage: 3, ShuffleTies: true, PageDelay: dlcsim.Duration(time.Second),
		Hang: true, PadMB: 200, TinyJobs: 200000, LiveDuration: true}
	if got := e.sim.Faults(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("faults %+v, want %+v", got, want)
	}
	for _, bad := range []string{`{"totalCount":"sometimes"}`, `{"oversizePage":-1}`, `{"padMB":-5}`} {
		if code := put(bad); code != 400 {
			t.Fatalf("%s accepted: %d", bad, code)
		}
	}
	e.sim.SetFaults(dlcsim.Faults{})
}
