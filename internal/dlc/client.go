package dlc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/dara"
	credential "github.com/aliyun/credentials-go/credentials"
	"github.com/aliyun/credentials-go/credentials/providers"
	"github.com/sony/gobreaker/v2"
)

// Lister is what the controllers need from PAI-DLC: one ListJobs call. The pager walks it.
type Lister interface {
	ListJobs(ctx context.Context, req *ListJobsRequest) (*ListJobsResponse, error)
}

// StaticCredentials is an AccessKey pair, with an STS token when SecurityToken is set.
type StaticCredentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
}

// Config configures a Client.
type Config struct {
	// RegionID selects the default endpoint.
	RegionID string
	// Endpoint overrides the endpoint: a URL (https://host[:port] or http://host:port).
	Endpoint string
	// Tenant is the namespace the client serves: clients, and so circuit breakers, are per
	// tenant (see GovernorKey.Tenant).
	Tenant string
	// Static holds an AccessKey; nil means the default credential chain of credentials-go
	// (environment, RRSA/OIDC, CLI profile, credentials file, ECS RAM role).
	Static *StaticCredentials
	// RoleArn, with Static nil, assumes this RAM role (STS AssumeRole) with the identity of the
	// default credential chain, and calls PAI-DLC as the role: one namespace's queries see what
	// its team's role may see, not what the operator's own identity may.
	RoleArn string
	// STSEndpoint is the host[:port] of the STS AssumeRole calls (always HTTPS); empty:
	// credentials-go's choice, sts.aliyuncs.com, or sts[-vpc].<ALIBABA_CLOUD_STS_REGION>.aliyuncs.com
	// with ALIBABA_CLOUD_STS_REGION (and ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true) set.
	STSEndpoint string
	// SignatureAlgorithm is "" for V3 (ACS3-HMAC-SHA256, the default) or "v2" for the legacy ROA
	// HMAC-SHA1 signer.
	SignatureAlgorithm string
	// ConnectTimeout and ReadTimeout bound each HTTP request (defaults 5s and 20s).
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	// UserAgent is appended to the SDK's user agent (default "dlcsync/<Version>").
	UserAgent string
	// Retry bounds retries of retryable failures.
	Retry RetryPolicy
	// Governors shares a rate limiter and circuit breaker per credential between clients; nil
	// means neither.
	Governors *Governors
	// Transport replaces the HTTP transport (tests); nil uses a pooled transport honouring
	// HTTP(S)_PROXY and NO_PROXY.
	Transport http.RoundTripper
	// Observer, if set, is told the outcome of every HTTP request: "200" or the error code
	// (or the failure kind when the answer had no code).
	Observer func(code string)
	// shared, set by the Pool, are the credential chain and the transport of the clients of one
	// credential, endpoint and region, whatever their tenant: one token cache (one STS refresh
	// for the ambient role, not one per namespace) and one connection pool.
	shared *sharedParts
	// MaxBodyBytes bounds the response body of one request, error answers included (default
	// DefaultMaxBodyBytes). It is enforced while reading: a longer body fails the request with
	// KindBadResponse after at most MaxBodyBytes were read.
	MaxBodyBytes int64
}

// DefaultMaxBodyBytes is the default Config.MaxBodyBytes. The reference's example job with every
// field set is 11 KiB, so a full page of 100 such jobs is about 1.1 MiB: 8 MiB leaves a wide
// margin. The stream decoder of encoding/json decoder holds one whole value while reading it and grows
// its buffer by doubling, so a body made of one huge value costs up to about four times the
// limit in allocations (measured: 64 MiB for 16 MiB); 8 MiB keeps that under 32 MiB.
const DefaultMaxBodyBytes = 8 << 20

// RetryPolicy is capped exponential backoff with full jitter: before retry n (1-based) the client
// waits a random time in [0, min(MaxDelay, BaseDelay·2^(n-1))], or longer when the server asked
// for it (Retry-After), up to MaxDelay.
type RetryPolicy struct {
	// MaxAttempts is the total number of HTTP requests per call (default 4; 1 disables retries).
	MaxAttempts int
	// BaseDelay is the first backoff ceiling (default 200ms).
	BaseDelay time.Duration
	// MaxDelay caps every wait (default 10s).
	MaxDelay time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 4
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 200 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 10 * time.Second
	}
	return p
}

// backoff returns the wait before retry n (n ≥ 1).
func (p RetryPolicy) backoff(n int, retryAfter time.Duration) time.Duration {
	ceiling := p.BaseDelay << min(n-1, 30)
	if ceiling <= 0 || ceiling > p.MaxDelay {
		ceiling = p.MaxDelay
	}
	wait := time.Duration(rand.Int64N(int64(ceiling) + 1))
	if retryAfter > wait {
		wait = retryAfter
	}
	return min(wait, p.MaxDelay)
}

// Version is the dlcsync version the user agent names; cmd/ sets it from internal/version.
var Version = "dev"

// Client calls ListJobs through darabonba-openapi. It is safe for concurrent use.
type Client struct {
	api      *openapi.Client
	retry    RetryPolicy
	governor *Governor
	scrub    func(string) string
	// parts are the credential chain and transport, shared with the pool's other clients of the
	// same credential, endpoint and region.
	parts *sharedParts
	// sleep waits between retries; tests replace it.
	sleep   func(ctx context.Context, d time.Duration) error
	observe func(code string)
}

var _ Lister = (*Client)(nil)

// NewClient builds a client. It does not contact the API or the credential provider.
func NewClient(cfg Config) (*Client, error) {
	host, protocol, err := ResolveEndpoint(cfg.RegionID, cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	connect, read := cfg.ConnectTimeout, cfg.ReadTimeout
	if connect <= 0 {
		connect = 5 * time.Second
	}
	if read <= 0 {
		read = 20 * time.Second
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "dlcsync/" + Version
	}
	parts := cfg.shared
	if parts == nil {
		parts, err = newSharedParts(cfg, connect, read)
		if err != nil {
			return nil, err
		}
	}
	cred, scrub, transport := parts.cred, parts.scrub, parts.transport
	maxBody := cfg.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	apiCfg := &openapi.Config{
		Credential:     guardedCredential{cred},
		Endpoint:       dara.String(host),
		Protocol:       dara.String(protocol),
		RegionId:       dara.String(cfg.RegionID),
		ConnectTimeout: dara.Int(int(connect / time.Millisecond)),
		ReadTimeout:    dara.Int(int(read / time.Millisecond)),
		UserAgent:      dara.String(ua),
		HttpClient: &recordingHTTPClient{maxBody: maxBody,
			client: &http.Client{Transport: transport, Timeout: connect + read, CheckRedirect: followNoRedirect}},
	}
	if cfg.SignatureAlgorithm != "" {
		apiCfg.SignatureAlgorithm = dara.String(cfg.SignatureAlgorithm)
	}
	api, err := openapi.NewClient(apiCfg)
	if err != nil {
		return nil, fmt.Errorf("creating PAI-DLC client: %s", scrub(err.Error()))
	}
	// Typed errors keep the request ID and the throttling TimeLeft, which tea.SDKError drops.
	api.DisableSDKError = dara.Bool(true)
	c := &Client{api: api, retry: cfg.Retry.withDefaults(), scrub: scrub, sleep: sleepContext, observe: cfg.Observer, parts: parts}
	if cfg.Governors != nil {
		c.governor = cfg.Governors.For(GovernorKey{Credential: cfg.credentialKey(), Host: host, Region: cfg.RegionID, Tenant: cfg.Tenant})
	}
	return c, nil
}

// CredentialKey names a credential for keying clients, limiters and breakers: "ambient" for
// the default chain, else the AccessKey ID and the full SHA-256 of the ID, secret and token, so
// two credentials never share a key and a rotated secret starts afresh. It reveals no secret,
// but it is credential-derived: never use it as a metric label or in a message.
func CredentialKey(static *StaticCredentials) string {
	if static == nil {
		return "ambient"
	}
	h := sha256.New()
	// Length-prefixed fields, so that moving bytes between fields changes the hash.
	for _, f := range []string{static.AccessKeyID, static.AccessKeySecret, static.SecurityToken} {
		_, _ = fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return "ak:" + static.AccessKeyID + ":" + hex.EncodeToString(h.Sum(nil))
}

// credentialKey is CredentialKey, or "role:<ARN>" for an assumed role: the role is the
// identity PAI-DLC sees, so its limiter and breakers are the role's, shared by the namespaces
// allowed to assume it and apart from the operator's own identity.
func (cfg Config) credentialKey() string {
	if cfg.Static == nil && cfg.RoleArn != "" {
		return "role:" + cfg.RoleArn
	}
	return CredentialKey(cfg.Static)
}

// sharedParts are what the clients of one credential, endpoint and region share.
type sharedParts struct {
	cred      credential.Credential
	scrub     func(string) string
	transport http.RoundTripper
}

// closeIdle closes the transport's idle connections (and with them their goroutines).
func (s *sharedParts) closeIdle() {
	if t, ok := s.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

func newSharedParts(cfg Config, connect, read time.Duration) (*sharedParts, error) {
	cred, scrub, err := newCredential(cfg)
	if err != nil {
		return nil, err
	}
	transport := cfg.Transport
	if transport == nil {
		transport = newTransport(connect, read)
	}
	return &sharedParts{cred: cred, scrub: scrub, transport: transport}, nil
}

// roleSessionName names the sessions of assumed roles in the account's audit trail (ActionTrail).
const roleSessionName = "dlcsync"

func newCredential(c Config) (credential.Credential, func(string) string, error) {
	static := c.Static
	if static == nil && c.RoleArn != "" {
		// The source is the default chain as a provider (RRSA's OIDC token, ECS RAM role,
		// environment), so a rotated source credential is picked up when the role's session
		// is renewed (credentials-go renews it 3 minutes before it expires).
		assume, err := providers.NewRAMRoleARNCredentialsProviderBuilder().
			WithCredentialsProvider(providers.NewDefaultCredentialsProvider()).
			WithRoleArn(c.RoleArn).
			WithRoleSessionName(roleSessionName).
			WithStsEndpoint(c.STSEndpoint).
			Build()
		if err != nil {
			return nil, nil, fmt.Errorf("assuming role %s: %w", c.RoleArn, err)
		}
		return credential.FromCredentialsProvider("ram_role_arn", &serialProvider{provider: assume}), scrubber(), nil
	}
	if static == nil {
		// The default chain, as credential.NewCredential(nil) builds it, one caller at a time:
		// its providers keep their sessions (OIDC, ECS RAM role) in fields without a lock, and
		// every namespace allowed the ambient credentials shares it.
		return credential.FromCredentialsProvider("default", &serialProvider{provider: providers.NewDefaultCredentialsProvider()}),
			scrubber(), nil
	}
	scrub := scrubber(static.AccessKeySecret, static.SecurityToken)
	if static.AccessKeyID == "" || static.AccessKeySecret == "" {
		return nil, nil, errors.New("credentials: the AccessKey ID and secret must both be set")
	}
	cfg := new(credential.Config).
		SetType("access_key").
		SetAccessKeyId(static.AccessKeyID).
		SetAccessKeySecret(static.AccessKeySecret)
	if static.SecurityToken != "" {
		cfg.SetType("sts").SetSecurityToken(static.SecurityToken)
	}
	cred, err := credential.NewCredential(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("creating credentials: %s", scrub(err.Error()))
	}
	return cred, scrub, nil
}

const protocolHTTPS = "https"

// serialProvider calls a credentials-go provider one caller at a time: the RAM role provider and
// the default chain keep their sessions in fields without a lock, and clients share them.
type serialProvider struct {
	mu       sync.Mutex
	provider providers.CredentialsProvider
}

func (p *serialProvider) GetCredentials() (*providers.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.provider.GetCredentials()
}

func (p *serialProvider) GetProviderName() string { return p.provider.GetProviderName() }

// centralRegions are the region IDs the SDK's endpoint map sends to the central host (the
// reference lists these among its 43; unlisted ones follow the regional rule).
var centralRegions = map[string]bool{
	"ap-northeast-2-pop": true, "ap-south-1": true, "ap-southeast-2": true, "cn-chengdu": true,
	"cn-qingdao": true, "cn-huhehaote": true, "cn-zhangjiakou": true, "cn-zhangbei": true,
	"cn-wuhan": true, "cn-fujian": true, "eu-west-1": true, "me-east-1": true, "rus-west-1-pop": true,
}

// ResolveEndpoint returns the host[:port] and protocol to call for a region and an optional
// endpoint URL override.
func ResolveEndpoint(regionID, endpoint string) (host, protocol string, err error) {
	if endpoint == "" {
		if regionID == "" {
			return "", "", errors.New("endpoint: a region ID or an endpoint is required")
		}
		if centralRegions[regionID] {
			return "pai-dlc.aliyuncs.com", protocolHTTPS, nil
		}
		return "pai-dlc." + regionID + ".aliyuncs.com", protocolHTTPS, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != protocolHTTPS) || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", "", fmt.Errorf("endpoint %q: want http(s)://host[:port]", endpoint)
	}
	return u.Host, u.Scheme, nil
}

func newTransport(connect, read time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: read,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// ListJobs sends one ListJobs call, retrying retryable failures. It always sends ShowOwn and a
// time window: the API's own defaults (ShowOwn true, the last 7 days) surprise callers.
func (c *Client) ListJobs(ctx context.Context, req *ListJobsRequest) (*ListJobsResponse, error) {
	req = req.Clone()
	if req.ShowOwn == nil {
		req.ShowOwn = Ptr(false)
	}
	if req.StartTime == nil && req.EndTime == nil {
		now := time.Now()
		req.StartTime, req.EndTime = Ptr(FormatTime(now.Add(-DefaultWindow))), Ptr(FormatTime(now))
	}
	query := req.Query()
	// The page may not hold more jobs than asked for (the API's maximum when PageSize is
	// not sent); a longer one is refused while decoding, before its jobs are allocated.
	maxJobs := MaxPageSize
	if req.PageSize != nil && *req.PageSize > 0 && *req.PageSize < MaxPageSize {
		maxJobs = int(*req.PageSize)
	}

	var stats CallStats
	for attempt := 1; ; attempt++ {
		resp, err := c.attempt(ctx, query, maxJobs, &stats)
		if err == nil {
			resp.Call = stats
			return resp, nil
		}
		var e *Error
		if !errors.As(err, &e) {
			return nil, err
		}
		e.Attempts = stats.Attempts
		if !e.Retryable() || attempt >= c.retry.MaxAttempts || ctx.Err() != nil {
			return nil, e
		}
		if err := c.sleep(ctx, c.retry.backoff(attempt, e.RetryAfter)); err != nil {
			return nil, e
		}
	}
}

// attempt sends one HTTP request, through the limiter and the breaker of the credential.
func (c *Client) attempt(ctx context.Context, query map[string]*string, maxJobs int, stats *CallStats) (*ListJobsResponse, error) {
	if c.governor != nil {
		if err := c.governor.limiter.Wait(ctx); err != nil {
			return nil, &Error{Kind: KindCanceled, Message: "waiting for the rate limiter: " + err.Error(), cause: contextCause(err)}
		}
		resp, err := c.governor.breaker.Execute(func() (*ListJobsResponse, error) {
			return c.send(ctx, query, maxJobs, stats)
		})
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			return nil, &Error{Kind: KindCircuitOpen, Code: "CircuitOpen",
				Message: "calls for this credential are paused after repeated authentication failures"}
		}
		return resp, err
	}
	return c.send(ctx, query, maxJobs, stats)
}

func (c *Client) send(ctx context.Context, query map[string]*string, maxJobs int, stats *CallStats) (*ListJobsResponse, error) {
	rec := &exchange{}
	ctx = context.WithValue(ctx, exchangeKey{}, rec)
	params := &openapi.Params{
		Action:      dara.String(APIAction),
		Version:     dara.String(APIVersion),
		Protocol:    dara.String("HTTPS"),
		Pathname:    dara.String(APIPathname),
		Method:      dara.String("GET"),
		AuthType:    dara.String("AK"),
		Style:       dara.String("ROA"),
		ReqBodyType: dara.String("json"),
		// "binary" hands the body over unread; "string" would read it whole and then
		// round-trip it through json.Marshal, several copies of whatever size the server sent.
		BodyType: dara.String("binary"),
	}
	result, err := c.api.CallApiWithCtx(ctx, params, &openapi.OpenApiRequest{Query: query}, &dara.RuntimeOptions{})
	var resp *ListJobsResponse
	if err == nil {
		resp, err = decodeBody(result["body"], maxJobs)
	}
	stats.Attempts += rec.requests
	stats.Bytes += rec.bytes
	if err == nil {
		if c.observe != nil {
			c.observe("200")
		}
		return resp, nil
	}
	var e *Error
	switch {
	case errors.Is(err, errBodyTooLarge), errors.Is(err, errDecode) && !isTransportFailure(err):
		e = badResponse(err, rec.status, c.scrub)
	default:
		e = classify(err, rec.status, rec.retryAfter, c.scrub)
		if e.Kind == KindCanceled && ctx.Err() == nil {
			// The HTTP client's own deadline, not the caller's: the endpoint is too slow.
			e.Kind = KindNetwork
		}
	}
	if e.Kind == KindThrottled {
		stats.Throttled++
	}
	c.observeCode(e)
	return nil, e
}

// errDecode marks a body that was read but is not a ListJobs answer.
var errDecode = errors.New("not a ListJobs body")

// decodeBody streams and closes the body darabonba handed over unread.
func decodeBody(v any, maxJobs int) (*ListJobsResponse, error) {
	body, ok := v.(io.ReadCloser)
	if !ok {
		return nil, fmt.Errorf("%w: no body", errDecode)
	}
	defer func() { _ = body.Close() }()
	resp, err := decodeListJobs(body, maxJobs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errDecode, err)
	}
	return resp, nil
}

// isTransportFailure reports whether a body read failed in the transport (a timeout, a reset
// connection, the caller's context), which is classified as such rather than as a bad body.
func isTransportFailure(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// badResponse classifies an answer that could not be read as a ListJobs body: too large, too
// many jobs, not JSON, cut short.
func badResponse(err error, status int, scrub func(string) string) *Error {
	msg := err.Error()
	// errDecode only marks the failure; its text would say it twice.
	msg = strings.TrimPrefix(msg, errDecode.Error()+": ")
	e := &Error{Kind: KindBadResponse, HTTPStatus: status, Message: scrub(msg)}
	var tooLarge *bodyTooLargeError
	if errors.As(err, &tooLarge) {
		// A fixed text; nothing of the body is quoted.
		e.Message = tooLarge.Error()
	}
	return e
}

func (c *Client) observeCode(e *Error) {
	if c.observe == nil || e.Kind == KindCanceled {
		return
	}
	if e.Code != "" {
		c.observe(e.Code)
	} else {
		c.observe(string(e.Kind))
	}
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// exchange records what the transport saw of one darabonba call, which darabonba's errors do
// not carry: the status, a Retry-After header, the body size.
type exchange struct {
	requests   int
	status     int
	retryAfter time.Duration
	bytes      int64
}

type exchangeKey struct{}

// recordingHTTPClient is the dara.HttpClient darabonba sends through. It ignores the per-request
// transport darabonba builds (a new one per call, which defeats connection reuse) and records
// the exchange in the request's context.
type recordingHTTPClient struct {
	client  *http.Client
	maxBody int64
}

func (h *recordingHTTPClient) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	resp, err := h.client.Do(req)
	rec, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if rec != nil {
		rec.requests++
	}
	if err != nil {
		return resp, err
	}
	if rec != nil {
		rec.status = resp.StatusCode
	}
	if isRedirect(resp.StatusCode) {
		// The 3xx answer itself (followNoRedirect); its body is of no use.
		_ = resp.Body.Close()
		return nil, &redirectError{status: resp.StatusCode, location: resp.Header.Get("Location")}
	}
	if rec == nil {
		return resp, nil
	}
	rec.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &rec.bytes, remaining: h.maxBody, limit: h.maxBody,
		declared: resp.ContentLength}
	return resp, nil
}

// followNoRedirect is the HTTP client's redirect policy: none is followed. A request carries the
// AccessKey ID, the signature and any STS token in its headers (x-acs-*), which Go's client would
// carry to whatever host a Location names; where requests go is the administrator's decision
// (the allowed endpoints), never an endpoint's. The 3xx answer is returned as it is and becomes a
// redirectError.
func followNoRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func isRedirect(status int) bool { return status >= 300 && status < 400 }

// redirectError is an endpoint's redirect answer, which the client does not follow.
type redirectError struct {
	status   int
	location string
}

func (e *redirectError) Error() string {
	const rest = "; dlcsync follows no redirects, so nothing was sent there: set the endpoint to the host that answers"
	if e.location == "" {
		return fmt.Sprintf("the endpoint answered with a redirect status (HTTP %d) without a location", e.status) + rest
	}
	return "the endpoint redirected to " + redirectTarget(e.location) + rest
}

// redirectTarget names a Location by its scheme and host only: its path, query and userinfo are
// the endpoint's text, which has no place in a condition message.
func redirectTarget(location string) string {
	u, err := url.Parse(location)
	switch {
	case err != nil:
		return "an unreadable location"
	case u.Host == "":
		return "another path of the same host"
	}
	return u.Scheme + "://" + u.Host
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// errBodyTooLarge marks a body cut at the size limit (errors.Is).
var errBodyTooLarge = errors.New("response body too large")

// bodyTooLargeError says a body exceeded Config.MaxBodyBytes.
type bodyTooLargeError struct{ limit int64 }

func (e *bodyTooLargeError) Error() string {
	return fmt.Sprintf("the response body exceeds the limit of %d bytes (Config.MaxBodyBytes)", e.limit)
}

func (e *bodyTooLargeError) Is(target error) bool { return target == errBodyTooLarge }

// countingBody counts the bytes read and fails once more than limit bytes arrive, or at once
// when the declared Content-Length is larger: the limit holds while reading, whoever reads.
type countingBody struct {
	io.ReadCloser
	n         *int64
	remaining int64
	limit     int64
	declared  int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.limit > 0 && (b.declared > b.limit || b.remaining < 0) {
		// Close early so the connection is not kept busy draining what we refuse; the
		// SDK's error path does not close a body whose read failed.
		_ = b.ReadCloser.Close()
		return 0, &bodyTooLargeError{limit: b.limit}
	}
	if b.limit > 0 && int64(len(p)) > b.remaining+1 {
		// Read one byte past the limit at most, to tell "exactly the limit" from "more".
		p = p[:b.remaining+1]
	}
	n, err := b.ReadCloser.Read(p)
	*b.n += int64(n)
	b.remaining -= int64(n)
	if b.limit > 0 && b.remaining < 0 {
		_ = b.ReadCloser.Close()
		return 0, &bodyTooLargeError{limit: b.limit}
	}
	return n, err
}
