package dlc_test

// Integration tests of the client and the pager against the simulator on loopback: real signed
// requests through darabonba-openapi, real credentials-go credentials.

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

var admin = dlcsim.Identity{AccessKeyID: "testid", AccessKeySecret: "testsecret-0123456789", UserID: "1001", Username: "admin", Admin: true}

func startSim(t testing.TB, jobs int, identities ...dlcsim.Identity) (*dlcsim.Server, string) {
	t.Helper()
	if len(identities) == 0 {
		identities = []dlcsim.Identity{admin}
	}
	sim := dlcsim.New(dlcsim.Options{Identities: identities, Seed: 7})
	if jobs > 0 {
		sim.Generate(jobs)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

func newClient(t testing.TB, endpoint string, cfg dlc.Config) *dlc.Client {
	t.Helper()
	cfg.RegionID, cfg.Endpoint = "cn-hangzhou", endpoint
	if cfg.Static == nil {
		cfg.Static = &dlc.StaticCredentials{AccessKeyID: admin.AccessKeyID, AccessKeySecret: admin.AccessKeySecret}
	}
	if cfg.Retry.MaxAttempts == 0 {
		cfg.Retry = dlc.RetryPolicy{MaxAttempts: 6, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond}
	}
	c, err := dlc.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// everything is a request whose window covers the simulator's 30 days of generated jobs.
func everything() *dlc.ListJobsRequest {
	return &dlc.ListJobsRequest{StartTime: dlc.Ptr(dlc.FormatTime(time.Now().Add(-31 * 24 * time.Hour)))}
}

func ids(jobs []dlc.Held) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.JobID
	}
	slices.Sort(out)
	return out
}

func simIDs(sim *dlcsim.Server) []string {
	jobs := sim.Jobs()
	out := make([]string, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j.JobID)
	}
	slices.Sort(out)
	return out
}

func TestBothSignatureSchemesWorkAndAWrongSecretIsRefused(t *testing.T) {
	_, url := startSim(t, 50)
	for _, alg := range []string{"", "v2"} {
		resp, err := newClient(t, url, dlc.Config{SignatureAlgorithm: alg}).ListJobs(context.Background(), everything())
		if err != nil {
			t.Fatalf("signature %q: %v", alg, err)
		}
		if resp.TotalCount != 50 || len(resp.Jobs) != 10 || resp.RequestID == "" {
			t.Fatalf("signature %q: total %d, page %d", alg, resp.TotalCount, len(resp.Jobs))
		}
		bad := newClient(t, url, dlc.Config{SignatureAlgorithm: alg,
			Static: &dlc.StaticCredentials{AccessKeyID: admin.AccessKeyID, AccessKeySecret: "wrong-secret-123"}})
		_, err = bad.ListJobs(context.Background(), everything())
		if dlc.KindOf(err) != dlc.KindUnauthorized || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
			t.Fatalf("signature %q with a wrong secret: %v", alg, err)
		}
	}
}

func TestAWalkOverTenThousandJobsMakesOneCallPerPageAndSeesEachJobOnce(t *testing.T) {
	sim, url := startSim(t, 10000)
	jobs, stats, err := dlc.ListAll(context.Background(), newClient(t, url, dlc.Config{}), everything(), dlc.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The 100th page is full, so only an empty 101st proves the listing ended (a TotalCount too
	// small must not end a walk).
	if stats.APICalls != 101 || stats.Pages != 101 || stats.Retries != 0 {
		t.Fatalf("calls %d pages %d retries %d; want exactly 10000/100 + 1 = 101 calls", stats.APICalls, stats.Pages, stats.Retries)
	}
	if !slices.Equal(ids(jobs), simIDs(sim)) {
		t.Fatalf("walk returned %d jobs, not exactly the simulator's 10000", len(jobs))
	}
	if !stats.Consistent || !stats.Complete || stats.Truncated || stats.TotalCount != 10000 || stats.Bytes == 0 {
		t.Fatalf("stats %+v", stats)
	}
	for i := 1; i < len(jobs); i++ {
		if jobs[i-1].GmtCreateTime < jobs[i].GmtCreateTime {
			t.Fatalf("jobs not newest first at %d", i)
		}
	}
	t.Logf("10,000-job walk: %d calls, %d bytes, %v", stats.APICalls, stats.Bytes, stats.Duration)
}

func TestAWalkUnderInjectedFaultsNeitherLosesNorDuplicatesAJob(t *testing.T) {
	sim, url := startSim(t, 3000)
	sim.SetFaults(dlcsim.Faults{ServerErrorRate: 0.2, TruncateRate: 0.05, InvalidJSONRate: 0.05, RateLimitQPS: 400, RateLimitBurst: 5})
	jobs, stats, err := dlc.ListAll(context.Background(), newClient(t, url, dlc.Config{Retry: dlc.RetryPolicy{MaxAttempts: 20, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond}}),
		everything(), dlc.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(jobs), simIDs(sim)) || !stats.Consistent {
		t.Fatalf("walk under faults returned %d jobs (consistent %v), want the simulator's 3000", len(jobs), stats.Consistent)
	}
	if stats.Retries == 0 || stats.APICalls != stats.Pages+stats.Retries {
		t.Fatalf("stats %+v: want retries counted", stats)
	}
	t.Logf("faults: %d pages, %d calls, %d retries, %d throttled", stats.Pages, stats.APICalls, stats.Retries, stats.Throttled)
}

// A page that silently lacks a job (TotalCount unchanged) is seen: the walk starts again, and a
// listing that keeps missing jobs is reported inconsistent rather than returned as complete.
func TestAPageThatOmitsAJobIsNoticed(t *testing.T) {
	sim, url := startSim(t, 1000)
	sim.SetFaults(dlcsim.Faults{OmitRate: 0.05})
	client := newClient(t, url, dlc.Config{})
	for range 5 {
		jobs, stats, err := dlc.ListAll(context.Background(), client, everything(), dlc.PageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if stats.Consistent && !slices.Equal(ids(jobs), simIDs(sim)) {
			t.Fatalf("a walk called consistent lost jobs: %d of %d", len(jobs), len(simIDs(sim)))
		}
	}
	sim.SetFaults(dlcsim.Faults{OmitRate: 1})
	_, stats, err := dlc.ListAll(context.Background(), client, everything(), dlc.PageOptions{})
	if err != nil || stats.Consistent || stats.Walks != 3 || !strings.Contains(stats.Inconsistency, "expected") {
		t.Fatalf("every page short: err %v, %+v; want an inconsistent listing after 3 walks", err, stats)
	}
}

func TestJobsInsertedBetweenPagesAreNeitherMissedNorDuplicated(t *testing.T) {
	sim, url := startSim(t, 500)
	before := simIDs(sim)
	sim.SetFaults(dlcsim.Faults{Mutate: &dlcsim.Mutation{AfterPage: 2, Insert: 7}})
	jobs, stats, err := dlc.ListAll(context.Background(), newClient(t, url, dlc.Config{}), everything(), dlc.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sim.Jobs()) != 507 {
		t.Fatalf("the mutation did not run: %d jobs", len(sim.Jobs()))
	}
	// The window was pinned before the first page, so the 7 new jobs are outside it.
	if !slices.Equal(ids(jobs), before) || !stats.Consistent || stats.Walks != 1 {
		t.Fatalf("walk returned %d jobs (walks %d, consistent %v), want exactly the 500 that existed", len(jobs), stats.Walks, stats.Consistent)
	}
}

func TestJobsDeletedBetweenPagesMakeTheWalkStartAgain(t *testing.T) {
	sim, url := startSim(t, 500)
	sim.SetFaults(dlcsim.Faults{Mutate: &dlcsim.Mutation{AfterPage: 2, Delete: 3}})
	jobs, stats, err := dlc.ListAll(context.Background(), newClient(t, url, dlc.Config{}), everything(), dlc.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Walks != 2 || !stats.Consistent {
		t.Fatalf("walks %d consistent %v (%s); want a second, consistent walk", stats.Walks, stats.Consistent, stats.Inconsistency)
	}
	if !slices.Equal(ids(jobs), simIDs(sim)) || len(jobs) != 497 {
		t.Fatalf("walk returned %d jobs, want the 497 left", len(jobs))
	}
}

func TestAWalkThatNeverSettlesIsReportedInconsistent(t *testing.T) {
	sim, url := startSim(t, 500)
	sim.SetFaults(dlcsim.Faults{Mutate: &dlcsim.Mutation{AfterPage: 1, Delete: 1, Times: 100}})
	_, stats, err := dlc.ListAll(context.Background(), newClient(t, url, dlc.Config{}), everything(), dlc.PageOptions{MaxWalks: 3})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Consistent || stats.Walks != 3 || stats.Inconsistency == "" {
		t.Fatalf("stats %+v; want an inconsistent result after 3 walks", stats)
	}
}

func TestAPersistentFailureMidWalkFailsTheWholeListing(t *testing.T) {
	sim, url := startSim(t, 500)
	// Page 3 fails on every attempt: requests 3.. are all failures.
	fail := []int{}
	for i := 3; i < 40; i++ {
		fail = append(fail, i)
	}
	sim.SetFaults(dlcsim.Faults{FailRequests: fail})
	jobs, _, err := dlc.ListAll(context.Background(), newClient(t, url, dlc.Config{Retry: dlc.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond}}),
		everything(), dlc.PageOptions{})
	if err == nil || jobs != nil || !strings.Contains(err.Error(), "listing page 3") || dlc.KindOf(err) != dlc.KindServer {
		t.Fatalf("got %d jobs, err %v; want no jobs and the page-3 error", len(jobs), err)
	}
}

func TestMaxJobsKeepsTheFirstJobsInTheRequestedOrder(t *testing.T) {
	sim, url := startSim(t, 1000)
	c := newClient(t, url, dlc.Config{})

	jobs, stats, err := dlc.ListAll(context.Background(), c, everything(), dlc.PageOptions{MaxJobs: 250})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 250 || stats.Pages != 3 || !stats.Truncated {
		t.Fatalf("%d jobs in %d pages (truncated %v); want 250 in 3 pages", len(jobs), stats.Pages, stats.Truncated)
	}
	all := make([]dlc.JobItem, 0, 1000)
	for _, j := range sim.Jobs() {
		all = append(all, j.JobItem)
	}
	dlc.SortJobs(all, "GmtCreateTime", "desc")
	if !slices.Equal(itemIDs(wholeJobs(t, jobs)), itemIDs(all[:250])) {
		t.Fatal("the kept jobs are not the 250 newest")
	}

	// Another sort key is sorted here after reading everything.
	req := everything()
	req.SortBy, req.Order = dlc.Ptr("DisplayName"), dlc.Ptr("asc")
	jobs, stats, err = dlc.ListAll(context.Background(), c, req, dlc.PageOptions{MaxJobs: 100})
	if err != nil {
		t.Fatal(err)
	}
	dlc.SortJobs(all, "DisplayName", "asc")
	// Ten full pages and the empty eleventh that proves the end.
	if stats.Pages != 11 || !slices.Equal(itemIDs(wholeJobs(t, jobs)), itemIDs(all[:100])) {
		t.Fatalf("pages %d; want every page read and the first 100 by DisplayName", stats.Pages)
	}
}

// itemIDs is the IDs of jobs, in their order.
func itemIDs(jobs []dlc.JobItem) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.JobID
	}
	return out
}

// wholeJobs is the whole jobs of a listing.
func wholeJobs(t testing.TB, held []dlc.Held) []dlc.JobItem {
	t.Helper()
	jobs, err := dlc.Jobs(held)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func TestTheCircuitBreakerStopsCallingAfterRepeatedAuthFailures(t *testing.T) {
	sim, url := startSim(t, 10)
	govs := dlc.NewGovernors(dlc.GovernorConfig{AuthFailuresToOpen: 3, Cooldown: time.Hour})
	bad := newClient(t, url, dlc.Config{Governors: govs,
		Static: &dlc.StaticCredentials{AccessKeyID: "unknown-key", AccessKeySecret: "whatever-secret"}})
	for i := 0; i < 3; i++ {
		if _, err := bad.ListJobs(context.Background(), everything()); dlc.KindOf(err) != dlc.KindUnauthorized {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	before := sim.Stats().Requests
	_, err := bad.ListJobs(context.Background(), everything())
	if dlc.KindOf(err) != dlc.KindCircuitOpen || sim.Stats().Requests != before {
		t.Fatalf("4th call: %v, %d new requests; want CircuitOpen and none sent", err, sim.Stats().Requests-before)
	}
	// Another credential is not affected.
	if _, err := newClient(t, url, dlc.Config{Governors: govs}).ListJobs(context.Background(), everything()); err != nil {
		t.Fatal(err)
	}
}

func TestQueriesWithTheSameCredentialShareOneRateLimiter(t *testing.T) {
	_, url := startSim(t, 10)
	govs := dlc.NewGovernors(dlc.GovernorConfig{QPS: 0.001, Burst: 2})
	a, b := newClient(t, url, dlc.Config{Governors: govs}), newClient(t, url, dlc.Config{Governors: govs})
	if _, err := a.ListJobs(context.Background(), everything()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ListJobs(context.Background(), everything()); err != nil {
		t.Fatal(err)
	}
	// The bucket of 2 is empty now for both: a third call cannot get a token before its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.ListJobs(ctx, everything()); dlc.KindOf(err) != dlc.KindCanceled {
		t.Fatalf("third call: %v; want the limiter to hold it", err)
	}
}

func TestErrorsNeverContainTheSecretOrTheSecurityToken(t *testing.T) {
	sts := dlcsim.Identity{AccessKeyID: "STS.key", AccessKeySecret: "sts-secret-value", SecurityToken: "CAIS-token-value-123", UserID: "1", Admin: true}
	_, url := startSim(t, 5, sts)
	// A wrong secret: the server's SignatureDoesNotMatch message echoes the signed headers,
	// which include the security token.
	c := newClient(t, url, dlc.Config{Static: &dlc.StaticCredentials{AccessKeyID: "STS.key", AccessKeySecret: "wrong-secret-value", SecurityToken: "CAIS-token-value-123"}})
	_, err := c.ListJobs(context.Background(), everything())
	if err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	for _, secret := range []string{"wrong-secret-value", "CAIS-token-value-123", "sts-secret-value"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error text leaks %q: %v", secret, err)
		}
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("expected the echoed token to be redacted: %v", err)
	}
	// The right secret with the token works.
	ok := newClient(t, url, dlc.Config{Static: &dlc.StaticCredentials{AccessKeyID: "STS.key", AccessKeySecret: "sts-secret-value", SecurityToken: "CAIS-token-value-123"}})
	if _, err := ok.ListJobs(context.Background(), everything()); err != nil {
		t.Fatal(err)
	}
}

func TestTheDefaultCredentialChainReadsTheEnvironment(t *testing.T) {
	_, url := startSim(t, 3)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", admin.AccessKeyID)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", admin.AccessKeySecret)
	// Keep the chain from reaching for files or the ECS metadata service of this machine.
	t.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	c, err := dlc.NewClient(dlc.Config{RegionID: "cn-hangzhou", Endpoint: url})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.ListJobs(context.Background(), everything())
	if err != nil {
		t.Fatal(err)
	}
	if resp.TotalCount != 3 {
		t.Fatalf("TotalCount %d", resp.TotalCount)
	}
}

// A server slower than the read timeout: each attempt is cut off, retried, and the failure is a
// retryable network error; once the server is fast again the same client works.
func TestASlowServerTimesOutAndIsRetried(t *testing.T) {
	sim, url := startSim(t, 20)
	sim.SetFaults(dlcsim.Faults{Latency: dlcsim.Duration(400 * time.Millisecond)})
	client := newClient(t, url, dlc.Config{ReadTimeout: 100 * time.Millisecond,
		Retry: dlc.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}})
	start := time.Now()
	_, err := client.ListJobs(context.Background(), everything())
	var e *dlc.Error
	if !errors.As(err, &e) || e.Attempts != 3 || !e.Retryable() || dlc.KindOf(err) != dlc.KindNetwork {
		t.Fatalf("want a retryable network error after 3 attempts, got %v", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("3 attempts of 100 ms took %v: the timeout was not applied", elapsed)
	}
	sim.SetFaults(dlcsim.Faults{})
	if _, err := client.ListJobs(context.Background(), everything()); err != nil {
		t.Fatal(err)
	}
}
