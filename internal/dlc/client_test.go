package dlc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI answers with the scripted responses in order, then with the last one.
type fakeAPI struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	calls   int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	i := min(f.calls, len(f.answers)-1)
	f.calls++
	f.mu.Unlock()
	f.answers[i](w)
}

func errorAnswer(status int, code string, headers map[string]string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"Code": code, "Message": code + " happened", "RequestId": "REQ-1"})
	}
}

func okAnswer(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"Jobs":[{"JobId":"dlc1"}],"TotalCount":1,"RequestId":"REQ-OK"}`))
}

func newTestServer(t *testing.T, api http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newTestClient returns a client of the fake API that records its backoff waits instead of
// sleeping.
func newTestClient(t *testing.T, api http.Handler, policy RetryPolicy) (*Client, *[]time.Duration) {
	t.Helper()
	c, err := NewClient(Config{RegionID: "cn-hangzhou", Endpoint: newTestServer(t, api), Retry: policy,
		Static: &StaticCredentials{AccessKeyID: "testid", AccessKeySecret: "testsecret-very-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	return c, &waits
}

func TestRetryableFailuresAreRetriedThenSucceed(t *testing.T) {
	api := &fakeAPI{answers: []func(http.ResponseWriter){
		errorAnswer(503, "ServiceUnavailable", nil),
		errorAnswer(500, "InternalError", nil),
		okAnswer,
	}}
	c, waits := newTestClient(t, api, RetryPolicy{MaxAttempts: 4, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second})
	resp, err := c.ListJobs(context.Background(), &ListJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Call.Attempts != 3 || len(*waits) != 2 {
		t.Fatalf("attempts %d, waits %v; want 3 attempts and 2 waits", resp.Call.Attempts, *waits)
	}
	// Full jitter: each wait lies in [0, base·2^(n-1)].
	if (*waits)[0] > 100*time.Millisecond || (*waits)[1] > 200*time.Millisecond {
		t.Fatalf("waits %v exceed the backoff ceilings 100ms, 200ms", *waits)
	}
}

func TestRetriesStopAtMaxAttempts(t *testing.T) {
	api := &fakeAPI{answers: []func(http.ResponseWriter){errorAnswer(503, "ServiceUnavailable", nil)}}
	c, _ := newTestClient(t, api, RetryPolicy{MaxAttempts: 3})
	_, err := c.ListJobs(context.Background(), &ListJobsRequest{})
	e, ok := err.(*Error)
	if !ok || e.Kind != KindServer || e.Attempts != 3 || api.calls != 3 {
		t.Fatalf("err %v (attempts %d), server calls %d; want ServerError after 3 attempts", err, e.Attempts, api.calls)
	}
}

func TestRetryAfterHeaderAndThrottlingTimeLeftAreHonoured(t *testing.T) {
	api := &fakeAPI{answers: []func(http.ResponseWriter){
		errorAnswer(503, "ServiceUnavailable", map[string]string{"Retry-After": "3"}),
		errorAnswer(400, "Throttling.User", map[string]string{"x-ratelimit-user-api": "Limit:10,Remain:0,TimeLeft:1500,Reset:1"}),
		okAnswer,
	}}
	c, waits := newTestClient(t, api, RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Second})
	resp, err := c.ListJobs(context.Background(), &ListJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if (*waits)[0] != 3*time.Second || (*waits)[1] != 1500*time.Millisecond {
		t.Fatalf("waits %v, want [3s 1.5s] as the server asked", *waits)
	}
	if resp.Call.Throttled != 1 {
		t.Fatalf("throttled %d, want 1", resp.Call.Throttled)
	}
}

func TestRetryAfterIsCappedByMaxDelay(t *testing.T) {
	api := &fakeAPI{answers: []func(http.ResponseWriter){
		errorAnswer(503, "ServiceUnavailable", map[string]string{"Retry-After": "3600"}), okAnswer}}
	c, waits := newTestClient(t, api, RetryPolicy{MaxAttempts: 2, MaxDelay: 2 * time.Second})
	if _, err := c.ListJobs(context.Background(), &ListJobsRequest{}); err != nil {
		t.Fatal(err)
	}
	if (*waits)[0] != 2*time.Second {
		t.Fatalf("wait %v, want the 2s cap", (*waits)[0])
	}
}

func TestErrorClassificationOfEveryDocumentedCode(t *testing.T) {
	cases := []struct {
		code      string
		status    int
		kind      Kind
		retryable bool
	}{
		{"Throttling.User", 400, KindThrottled, true},
		{"Throttling.Api", 400, KindThrottled, true},
		{"Throttling", 400, KindThrottled, true},
		{"ServiceUnavailable", 503, KindServer, true},
		{"ServiceUnavailableTemporary", 503, KindServer, true},
		{"InternalError", 500, KindServer, true},
		{"InternalFailure", 500, KindServer, true},
		{"InvalidParameter", 400, KindInvalidRequest, false},
		{"MissingParameter", 400, KindInvalidRequest, false},
		{"InvalidParameter.PageSize", 400, KindInvalidRequest, false},
		{"InvalidAccessKeyId.NotFound", 404, KindUnauthorized, false},
		{"InvalidAccessKeyId.Inactive", 400, KindUnauthorized, false},
		{"SignatureDoesNotMatch", 400, KindUnauthorized, false},
		{"IncompleteSignature", 400, KindUnauthorized, false},
		{"InvalidTimeStamp.Expired", 400, KindUnauthorized, false},
		{"SignatureNonceUsed", 400, KindUnauthorized, true},
		{"InvalidSecurityToken.Expired", 400, KindUnauthorized, false},
		{"InvalidSecurityToken.MismatchWithAccessKey", 400, KindUnauthorized, false},
		{"Forbidden.RAM", 403, KindForbidden, false},
		{"NoPermission", 403, KindForbidden, false},
		{"Forbidden", 403, KindForbidden, false},
		{"SomethingNew", 429, KindThrottled, true},
		{"SomethingNew", 401, KindUnauthorized, false},
		{"SomethingNew", 403, KindForbidden, false},
		{"SomethingNew", 502, KindServer, true},
		{"SomethingNew", 400, KindInvalidRequest, false},
	}
	for _, tc := range cases {
		t.Run(tc.code+"/"+http.StatusText(tc.status), func(t *testing.T) {
			api := &fakeAPI{answers: []func(http.ResponseWriter){errorAnswer(tc.status, tc.code, nil)}}
			c, _ := newTestClient(t, api, RetryPolicy{MaxAttempts: 1})
			_, err := c.ListJobs(context.Background(), &ListJobsRequest{})
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if e.Kind != tc.kind || e.Retryable() != tc.retryable || e.Code != tc.code || e.HTTPStatus != tc.status || e.RequestID != "REQ-1" {
				t.Fatalf("got kind %s retryable %v code %s status %d request %s", e.Kind, e.Retryable(), e.Code, e.HTTPStatus, e.RequestID)
			}
			if KindOf(err) != tc.kind || retryable(err) != tc.retryable {
				t.Fatalf("through the error chain: kind %s, retryable %v", KindOf(err), retryable(err))
			}
			if !strings.Contains(e.Error(), tc.code+" happened") {
				t.Fatalf("error text %q lacks the server's message", e.Error())
			}
		})
	}
}

func TestNonRetryableFailuresAreSentOnce(t *testing.T) {
	api := &fakeAPI{answers: []func(http.ResponseWriter){errorAnswer(400, "SignatureDoesNotMatch", nil)}}
	c, waits := newTestClient(t, api, RetryPolicy{MaxAttempts: 5})
	_, err := c.ListJobs(context.Background(), &ListJobsRequest{})
	if KindOf(err) != KindUnauthorized || api.calls != 1 || len(*waits) != 0 {
		t.Fatalf("err %v, calls %d, waits %v; want one call", err, api.calls, *waits)
	}
}

func TestTransportFailuresAndBrokenBodiesAreRetryable(t *testing.T) {
	broken := func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"Jobs":[{"JobId":"dl`)) }
	html := func(w http.ResponseWriter) { w.WriteHeader(502); _, _ = w.Write([]byte(`<html>bad gateway</html>`)) }
	api := &fakeAPI{answers: []func(http.ResponseWriter){broken, html, okAnswer}}
	c, _ := newTestClient(t, api, RetryPolicy{MaxAttempts: 3})
	resp, err := c.ListJobs(context.Background(), &ListJobsRequest{})
	if err != nil || resp.Call.Attempts != 3 {
		t.Fatalf("err %v; want success on the third attempt", err)
	}

	c, err = NewClient(Config{RegionID: "cn-hangzhou", Endpoint: "http://127.0.0.1:1", Retry: RetryPolicy{MaxAttempts: 1},
		Static: &StaticCredentials{AccessKeyID: "id", AccessKeySecret: "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListJobs(context.Background(), &ListJobsRequest{})
	if KindOf(err) != KindNetwork || !retryable(err) {
		t.Fatalf("connection refused classified as %s: %v", KindOf(err), err)
	}
}

func TestTheCallerContextBoundsRetries(t *testing.T) {
	api := &fakeAPI{answers: []func(http.ResponseWriter){errorAnswer(503, "ServiceUnavailable", nil)}}
	c, _ := newTestClient(t, api, RetryPolicy{MaxAttempts: 100})
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	_, err := c.ListJobs(ctx, &ListJobsRequest{})
	if err == nil || api.calls != 1 {
		t.Fatalf("err %v after %d calls; want to stop when the context ends", err, api.calls)
	}
}

func TestClientAlwaysSendsShowOwnAndATimeWindow(t *testing.T) {
	var got []string
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.RawQuery)
		okAnswer(w)
	})
	c, _ := newTestClient(t, api, RetryPolicy{})
	if _, err := c.ListJobs(context.Background(), &ListJobsRequest{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got[0], "ShowOwn=false") || !strings.Contains(got[0], "StartTime=") || !strings.Contains(got[0], "EndTime=") {
		t.Fatalf("query %q lacks the explicit ShowOwn and window", got[0])
	}
}

func TestUserAgentNamesDlcsync(t *testing.T) {
	var ua string
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ua = r.UserAgent(); okAnswer(w) })
	c, _ := newTestClient(t, api, RetryPolicy{})
	if _, err := c.ListJobs(context.Background(), &ListJobsRequest{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ua, "dlcsync/"+Version) {
		t.Fatalf("user agent %q does not name dlcsync", ua)
	}
}

func TestScrubberRemovesSecretsFromText(t *testing.T) {
	scrub := scrubber("my-secret-key", "STS.token-abc", "")
	got := scrub("x-acs-security-token:STS.token-abc\nsigned with my-secret-key")
	if strings.Contains(got, "STS.token-abc") || strings.Contains(got, "my-secret-key") || !strings.Contains(got, "[REDACTED]") {
		t.Fatalf("scrubbed text still holds a secret: %q", got)
	}
}

func TestCredentialKeyHidesTheSecretAndChangesOnRotation(t *testing.T) {
	a := CredentialKey(&StaticCredentials{AccessKeyID: "LTAI1", AccessKeySecret: "secret-one"})
	b := CredentialKey(&StaticCredentials{AccessKeyID: "LTAI1", AccessKeySecret: "secret-two"})
	if a == b || strings.Contains(a, "secret") || !strings.HasPrefix(a, "ak:LTAI1:") || CredentialKey(nil) != "ambient" {
		t.Fatalf("keys %q %q", a, b)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "5": 5 * time.Second, "-1": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// The operator's own chain and an assumed role's session have tokens the scrubber does not know
// by value: a token quoted back by a server is found by its name.
func TestScrubberRemovesTokensItWasNotGiven(t *testing.T) {
	scrub := scrubber()
	for _, text := range []string{
		"server string to sign is:GET\n/api/v1/jobs\n\nhost:pai-dlc\nx-acs-security-token:CAISsessiontoken123\nx-acs-version:2020-12-03",
		"POST&%2F&AccessKeyId=STS.abc&SecurityToken=CAISsessiontoken123&Timestamp=2026",
		"POST&%2F&AccessKeyId%3DSTS.abc%26SecurityToken%3DCAISsessiontoken123%2B%2Fx%26Timestamp%3D2026",
	} {
		if got := scrub(text); strings.Contains(got, "CAISsessiontoken123") || !strings.Contains(got, "[REDACTED]") {
			t.Errorf("scrubbed text still holds the token: %q", got)
		}
	}
	if got := scrub("no token here: x-acs-version:2020-12-03"); got != "no token here: x-acs-version:2020-12-03" {
		t.Errorf("text without a token changed: %q", got)
	}
}
