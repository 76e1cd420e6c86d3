// Package dlcsim is a faithful PAI-DLC ListJobs server for tests, the demo, benchmarks and users
// who test their automation offline: the same request signing, parameter semantics, JSON types
// and error shapes as the real API, plus fault injection and jobs that change over time. Where
// the API reference is silent, the choice made is documented in docs/dlcsim.md.
package dlcsim

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// Options configures a Server.
type Options struct {
	// Identities are the AccessKeys the server accepts.
	Identities []Identity
	// Clock drives the data: the default time window, job lifecycles, new jobs (default: real).
	Clock clock.PassiveClock
	// AuthNow is the clock signatures are checked against (default time.Now): it stays the wall
	// clock when tests move Clock, because clients sign with the wall clock.
	AuthNow func() time.Time
	// MaxClockSkew bounds x-acs-date / Date against AuthNow (default 15m; negative disables).
	MaxClockSkew time.Duration
	// DisableNonceCheck accepts replayed nonces.
	DisableNonceCheck bool
	// ShowOwnDefault is the ShowOwn applied when a request omits it. The API metadata says true.
	ShowOwnDefault *bool
	// OmitEmptyJobs answers an empty page without a Jobs field instead of "Jobs": [] (the
	// reference does not say which the API does).
	OmitEmptyJobs bool
	// HostID is the HostId of error bodies (default pai-dlc.cn-hangzhou.aliyuncs.com).
	HostID string
	// Control enables the /_sim/ control API.
	Control bool
	// Seed seeds fault injection and generated data.
	Seed uint64
	// Roles are the RAM roles the simulated STS (AssumeRole, on / of the same address) lets
	// identities assume.
	Roles []Role
}

// Faults are injected failures, settable at run time (PUT /_sim/faults or SetFaults).
type Faults struct {
	// RateLimitQPS answers Throttling.User beyond this rate (0: off); RateLimitBurst sizes the bucket.
	RateLimitQPS   float64 `json:"rateLimitQPS,omitempty"`
	RateLimitBurst int     `json:"rateLimitBurst,omitempty"`
	// ServerErrorRate is the probability [0,1] of a 503 ServiceUnavailable answer.
	ServerErrorRate float64 `json:"serverErrorRate,omitempty"`
	// Latency is added before every answer.
	Latency Duration `json:"latency,omitempty"`
	// TruncateRate is the probability of a 200 answer whose JSON body is cut in half.
	TruncateRate float64 `json:"truncateRate,omitempty"`
	// InvalidJSONRate is the probability of a 200 answer whose body is not JSON.
	InvalidJSONRate float64 `json:"invalidJSONRate,omitempty"`
	// OmitRate is the probability that a page silently lacks one of its jobs while TotalCount
	// stays the same (an index that lags behind, as eventually consistent listings do).
	OmitRate float64 `json:"omitRate,omitempty"`
	// FailRequests fails the ListJobs requests with these ordinals (1 = the first request after
	// the faults were set) with FailCode (default InternalError, HTTP 500).
	FailRequests []int  `json:"failRequests,omitempty"`
	FailCode     string `json:"failCode,omitempty"`
	FailStatus   int    `json:"failStatus,omitempty"`
	// Mutate inserts or deletes jobs right after a page is served, to test walks.
	Mutate *Mutation `json:"mutate,omitempty"`

	// TotalCount makes the TotalCount of every page lie: "zero", "omit" (no TotalCount field),
	// "negative" (-TotalCountBy, default -1), "less" or "more" (off by TotalCountBy, default 1).
	TotalCount   string `json:"totalCount,omitempty"`
	TotalCountBy int64  `json:"totalCountBy,omitempty"`
	// OversizePage serves this many jobs beyond PageSize on every page; the next page still
	// starts PageSize jobs further, so consecutive pages overlap.
	OversizePage int `json:"oversizePage,omitempty"`
	// ShuffleTies serves the jobs that tie on the sort field (for the default sort: created in the
	// same second) in a different order on each request, deterministic under Options.Seed and the
	// request's ordinal since the faults were set: pages overlap and skip at tie boundaries.
	ShuffleTies bool `json:"shuffleTies,omitempty"`
	// PageDelay holds every 200 answer this long after its headers and the first part of its body
	// were sent: a slow page, which a client notices only with a timeout on the whole exchange
	// (Latency, by contrast, delays the headers).
	PageDelay Duration `json:"pageDelay,omitempty"`
	// Hang answers no ListJobs request: each is held until the client gives up (its context ends,
	// the connection closes) or the faults are changed.
	Hang bool `json:"hang,omitempty"`
	// PadMB pads the body of every 200 answer with a "Padding" string of this many MiB, sent
	// before Jobs. The body is streamed: the simulator never holds it in memory.
	PadMB int `json:"padMB,omitempty"`
	// TinyJobs answers every page with this many tiny jobs ({"JobId":"tiny-0"}, ...) instead of
	// the store's, TotalCount equal to their number; streamed like PadMB.
	TinyJobs int `json:"tinyJobs,omitempty"`
	// LiveDuration computes the Duration of every job that is running (not terminal, with a
	// GmtRunningTime) at each answer, so it grows from one call to the next as on the service;
	// NumericRangeField=Duration filters on the same value.
	LiveDuration bool `json:"liveDuration,omitempty"`
}

// Validate refuses faults that cannot be applied.
func (f *Faults) Validate() error {
	switch f.TotalCount {
	case "", totalZero, totalOmit, totalNegative, totalLess, totalMore:
	default:
		return fmt.Errorf("totalCount %q: want zero, omit, negative, less or more", f.TotalCount)
	}
	if f.TotalCountBy < 0 || f.OversizePage < 0 || f.PadMB < 0 || f.TinyJobs < 0 || f.PageDelay < 0 || f.Latency < 0 {
		return errors.New("totalCountBy, oversizePage, padMB, tinyJobs, pageDelay and latency must not be negative")
	}
	return nil
}

// Mutation changes the job set between two page requests of a walk.
type Mutation struct {
	// AfterPage triggers the mutation after a request for this PageNumber was answered.
	AfterPage int `json:"afterPage"`
	// Insert adds this many new jobs (created now, by the identity's user).
	Insert int `json:"insert,omitempty"`
	// Delete removes this many jobs, the ones at the start of the same query's next page.
	Delete int `json:"delete,omitempty"`
	// Times bounds how often the mutation fires (default 1).
	Times int `json:"times,omitempty"`
}

// Duration is a time.Duration that reads and writes as a Go duration string in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "150ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "150ms" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		*d = Duration(v)
		return err
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*d = Duration(n)
	return nil
}

// Stats counts what the server saw.
type Stats struct {
	Requests int64 `json:"requests"`
	// ByAccessKey counts the requests by the AccessKey ID they name (signed correctly or not);
	// "" for a request that names none.
	ByAccessKey        map[string]int64 `json:"byAccessKey"`
	ByCode             map[string]int64 `json:"byCode"`
	ByParameter        map[string]int64 `json:"byParameter"`
	PagesServed        int64            `json:"pagesServed"`
	JobsServed         int64            `json:"jobsServed"`
	SignaturesRejected int64            `json:"signaturesRejected"`
	Throttled          int64            `json:"throttled"`
	// STSRequests counts the requests to the simulated STS, answered or refused.
	STSRequests int64 `json:"stsRequests"`
	// RolesAssumed counts the AssumeRole calls answered with credentials.
	RolesAssumed int64 `json:"rolesAssumed"`
	Jobs         int   `json:"jobs"`
}

// Server is the simulator. Create it with New, serve Handler().
type Server struct {
	opts   Options
	clock  clock.PassiveClock
	store  *store
	auth   *authConfig
	nonces nonceCache

	mu        sync.Mutex
	faults    Faults
	limiter   *rate.Limiter
	faultSeq  int
	mutations int
	// hangRelease is closed when the faults change, ending the requests Faults.Hang holds.
	hangRelease chan struct{}
	rng         *mathrand.Rand
	stats       Stats
	gen         *generator
	life        *lifecycleState
	stepMu      sync.Mutex
}

// New returns a server with no jobs.
func New(opts Options) *Server {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.AuthNow == nil {
		opts.AuthNow = time.Now
	}
	if opts.MaxClockSkew == 0 {
		opts.MaxClockSkew = 15 * time.Minute
	}
	if opts.HostID == "" {
		opts.HostID = "pai-dlc.cn-hangzhou.aliyuncs.com"
	}
	s := &Server{
		opts:  opts,
		clock: opts.Clock,
		store: newStore(),
		auth: &authConfig{identities: map[string]*Identity{}, maxSkew: max(opts.MaxClockSkew, 0),
			checkNonce: !opts.DisableNonceCheck, now: opts.AuthNow},
		rng: mathrand.New(mathrand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
	}
	for i := range opts.Identities {
		id := opts.Identities[i]
		s.auth.identities[id.AccessKeyID] = &id
	}
	s.gen = newGenerator(opts.Seed, opts.Identities)
	s.hangRelease = make(chan struct{})
	s.resetStatsLocked()
	return s
}

func (s *Server) resetStatsLocked() {
	s.stats = Stats{ByCode: map[string]int64{}, ByParameter: map[string]int64{}, ByAccessKey: map[string]int64{}}
}

// Upsert adds or replaces jobs.
func (s *Server) Upsert(jobs ...Job) { s.store.upsert(jobs...) }

// Delete removes jobs by ID and returns how many existed.
func (s *Server) Delete(ids ...string) int { return s.store.delete(ids...) }

// Job returns a job by ID.
func (s *Server) Job(id string) (Job, bool) { return s.store.get(id) }

// Jobs returns every job, by ID.
func (s *Server) Jobs() []Job { return s.store.all() }

// Patch changes one job in place; it returns false when the job does not exist.
func (s *Server) Patch(id string, change func(*Job)) bool {
	j, ok := s.store.get(id)
	if !ok {
		return false
	}
	// A deep copy, so that change cannot touch the stored job's slices and pointers.
	j = cloneJob(j)
	change(&j)
	s.store.upsert(j)
	return true
}

// SetFaults replaces the injected faults and restarts their request count.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.faultSeq, s.mutations = f, 0, 0
	// Requests held by Hang end when the faults change, so a demo can lift a hang.
	if s.hangRelease != nil {
		close(s.hangRelease)
	}
	s.hangRelease = make(chan struct{})
	s.limiter = nil
	if f.RateLimitQPS > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(f.RateLimitQPS), max(f.RateLimitBurst, 1))
	}
}

// Faults returns the injected faults.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.ByCode, out.ByParameter, out.ByAccessKey = maps.Clone(s.stats.ByCode), maps.Clone(s.stats.ByParameter),
		maps.Clone(s.stats.ByAccessKey)
	out.Jobs = s.store.len()
	return out
}

// Reset removes every job, fault and counter.
func (s *Server) Reset() {
	s.store.delete(jobIDs(s.store.all())...)
	s.SetFaults(Faults{})
	s.mu.Lock()
	s.resetStatsLocked()
	s.mu.Unlock()
}

func jobIDs(jobs []Job) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.JobID
	}
	return ids
}

// Handler serves GET /api/v1/jobs and, with Options.Control, the /_sim/ control API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/jobs", s.serveListJobs)
	if s.opts.Control {
		s.registerControl(mux)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if stsAction(r) {
			s.serveSTS(w, r)
			return
		}
		s.writeError(w, newRequestID(), actionNotFound())
	})
	return mux
}

func (s *Server) serveListJobs(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByAccessKey[accessKeyOf(r.Header.Get("Authorization"))]++
	latency := time.Duration(s.faults.Latency)
	hang, release := s.faults.Hang, s.hangRelease
	s.mu.Unlock()
	if !waitToAnswer(r, hang, release, latency) {
		return
	}
	id, apiErr := s.admit(r, body)
	if apiErr != nil {
		s.writeError(w, requestID, apiErr)
		return
	}
	seq, apiErr := s.injectFault()
	if apiErr != nil {
		s.writeError(w, requestID, apiErr)
		return
	}
	q, err := parseListQuery(r.URL.Query(), s.clock.Now(), s.showOwnDefault())
	if err != nil {
		s.writeError(w, requestID, &apiError{status: 400, code: "InvalidParameter", message: err.Error()})
		return
	}
	if len(id.Workspaces) > 0 && q.workspaceID != "" && !slices.Contains(id.Workspaces, q.workspaceID) {
		s.writeError(w, requestID, &apiError{status: 403, code: "Forbidden.RAM",
			message: "User not authorized to operate on the specified resource.",
			accessDenied: map[string]string{"AuthAction": "paidlc:ListJobs", "PolicyType": "AccountLevelIdentityBasedPolicy",
				"NoPermissionType": "ImplicitDeny", "AuthPrincipalType": "SubUser", "AuthPrincipalDisplayName": id.Username,
				"AuthResource": "acs:paidlc:*:*:workspace/" + q.workspaceID}})
		return
	}
	s.mu.Lock()
	for _, p := range q.params {
		s.stats.ByParameter[p]++
	}
	f := s.faults
	s.mu.Unlock()

	who := caller{userID: id.UserID, admin: id.Admin}
	page := s.page(q, who, f, seq, requestID)
	s.writePage(w, r, page, time.Duration(f.PageDelay))
	s.mutateAfterPage(q, who)
}

// waitToAnswer waits out an injected hang or latency; false means the client went away (or a
// hang ended) and nothing is to be sent.
func waitToAnswer(r *http.Request, hang bool, release <-chan struct{}, latency time.Duration) bool {
	if hang {
		// A hanging endpoint: nothing is sent until the client gives up.
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return false
	}
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return false
		}
	}
	return true
}

// admit checks a request as the gateway does before ListJobs runs: method, signature, version,
// action, then the caller's permission.
func (s *Server) admit(r *http.Request, body []byte) (*Identity, *apiError) {
	if r.Method != http.MethodGet {
		return nil, actionNotFound()
	}
	id, apiErr := authenticate(r, body, s.auth, &s.nonces)
	if apiErr != nil {
		s.mu.Lock()
		s.stats.SignaturesRejected++
		s.mu.Unlock()
		return nil, apiErr
	}
	if v := r.Header.Get("x-acs-version"); v != dlc.APIVersion {
		return nil, &apiError{status: 400, code: "InvalidVersion", message: fmt.Sprintf("Specified parameter Version %q is not valid.", v)}
	}
	if a := r.Header.Get("x-acs-action"); a != dlc.APIAction {
		return nil, &apiError{status: 404, code: codeActionNotFound, message: fmt.Sprintf("Specified api %q is not found.", a)}
	}
	if !id.mayList() {
		return nil, &apiError{status: 403, code: "Forbidden.RAM",
			message: "User not authorized to operate on the specified resource.",
			accessDenied: map[string]string{"AuthAction": "paidlc:ListJobs", "PolicyType": "AccountLevelIdentityBasedPolicy",
				"NoPermissionType": "ImplicitDeny", "AuthPrincipalType": "SubUser", "AuthPrincipalDisplayName": id.Username}}
	}
	return id, nil
}

// page is the answer to a listing, shaped by the faults in force, and counted in the stats.
func (s *Server) page(q *listQuery, who caller, f Faults, seq int, requestID string) *pageBody {
	if f.LiveDuration {
		q.liveNow = s.clock.Now().Unix()
	}
	shape := pageShape{extra: f.OversizePage}
	if f.ShuffleTies {
		shape.shuffle = mathrand.New(mathrand.NewPCG(s.opts.Seed, uint64(seq)))
	}
	jobs, total := s.store.listShaped(q, who, shape)
	jobs = s.omitJob(jobs)
	if f.LiveDuration {
		liveDurations(jobs, s.clock.Now())
	}
	page := &pageBody{jobs: jobs, total: total, requestID: requestID, pad: int64(f.PadMB) << 20, tiny: f.TinyJobs}
	if f.TinyJobs > 0 {
		page.jobs, page.total = nil, int64(f.TinyJobs)
	}
	page.omitJobs = len(page.jobs) == 0 && page.tiny == 0 && s.opts.OmitEmptyJobs
	page.lieAboutTotal(f.TotalCount, f.TotalCountBy)
	s.mu.Lock()
	s.stats.ByCode["200"]++
	s.stats.PagesServed++
	s.stats.JobsServed += int64(len(page.jobs) + page.tiny)
	s.mu.Unlock()
	return page
}

// writePage sends a page, delayed halfway through by delay.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, page *pageBody, delay time.Duration) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", page.requestID)
	if page.streamed() {
		// A padded or huge page is written as it is produced, in bounded chunks.
		_ = page.writeTo(&delayedWriter{w: w, ctx: r.Context(), after: 32 << 10, delay: delay})
		return
	}
	var buf bytes.Buffer
	_ = page.writeTo(&buf)
	out := s.corruptBody(buf.Bytes())
	dw := &delayedWriter{w: w, ctx: r.Context(), after: len(out) / 2, delay: delay}
	_, _ = dw.Write(out)
}

func (s *Server) showOwnDefault() bool {
	if s.opts.ShowOwnDefault != nil {
		return *s.opts.ShowOwnDefault
	}
	return true
}

// injectFault returns the error a fault demands for this request, or nil.
func (s *Server) injectFault() (int, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultSeq++
	return s.faultSeq, s.injectFaultLocked()
}

func (s *Server) injectFaultLocked() *apiError {
	f := s.faults
	for _, n := range f.FailRequests {
		if n == s.faultSeq {
			code, status := f.FailCode, f.FailStatus
			if code == "" {
				code = "InternalError"
			}
			if status == 0 {
				status = statusForCode(code)
			}
			return &apiError{status: status, code: code, message: "The request processing has failed due to some unknown error (injected)."}
		}
	}
	if s.limiter != nil {
		if r := s.limiter.Reserve(); r.Delay() > 0 {
			left := r.Delay()
			r.Cancel()
			s.stats.Throttled++
			return &apiError{status: 400, code: "Throttling.User", message: "Request was denied due to user flow control.",
				header: map[string]string{"x-ratelimit-user-api": fmt.Sprintf("Limit:%d,Remain:0,TimeLeft:%d,Reset:%d",
					int(math.Ceil(f.RateLimitQPS)), left.Milliseconds(), s.clock.Now().Add(left).Unix())}}
		}
	}
	if f.ServerErrorRate > 0 && s.rng.Float64() < f.ServerErrorRate {
		return &apiError{status: 503, code: "ServiceUnavailable",
			message: "The request has failed due to a temporary failure of the server (injected)."}
	}
	return nil
}

// statusForCode is the HTTP status the gateway uses for a code (reference §4).
func statusForCode(code string) int {
	switch code {
	case "InternalError", "InternalFailure":
		return 500
	case "ServiceUnavailable", "ServiceUnavailableTemporary":
		return 503
	case "InvalidAccessKeyId.NotFound", codeActionNotFound:
		return 404
	case "Forbidden.RAM", "Forbidden", "NoPermission":
		return 403
	}
	return 400
}

// omitJob drops one job of a page with probability Faults.OmitRate.
func (s *Server) omitJob(jobs []dlc.JobItem) []dlc.JobItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(jobs) == 0 || s.faults.OmitRate <= 0 || s.rng.Float64() >= s.faults.OmitRate {
		return jobs
	}
	i := s.rng.IntN(len(jobs))
	return append(jobs[:i:i], jobs[i+1:]...)
}

func (s *Server) corruptBody(out []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.faults.TruncateRate > 0 && s.rng.Float64() < s.faults.TruncateRate:
		return out[:len(out)/2]
	case s.faults.InvalidJSONRate > 0 && s.rng.Float64() < s.faults.InvalidJSONRate:
		return []byte("<html><body>502 Bad Gateway</body></html>")
	}
	return out
}

// mutateAfterPage applies Faults.Mutate after the page it names.
func (s *Server) mutateAfterPage(q *listQuery, who caller) {
	s.mu.Lock()
	m := s.faults.Mutate
	if m == nil || m.AfterPage != q.pageNumber || s.mutations >= max(m.Times, 1) {
		s.mu.Unlock()
		return
	}
	s.mutations++
	s.mu.Unlock()
	if m.Delete > 0 {
		next := *q
		next.pageNumber++
		jobs, _ := s.store.list(&next, who)
		var ids []string
		for i := 0; i < len(jobs) && i < m.Delete; i++ {
			ids = append(ids, jobs[i].JobID)
		}
		s.store.delete(ids...)
	}
	for i := 0; i < m.Insert; i++ {
		s.store.upsert(s.gen.newJob(s.clock.Now(), who.userID))
	}
}

func (s *Server) writeError(w http.ResponseWriter, requestID string, e *apiError) {
	body := map[string]any{
		"RequestId": requestID,
		"HostId":    s.opts.HostID,
		"Code":      e.code,
		"Message":   e.message,
		"Recommend": fmt.Sprintf("https://api.aliyun.com/troubleshoot?q=%s&product=pai-dlc&requestId=%s", e.code, requestID),
	}
	if e.accessDenied != nil {
		body["AccessDeniedDetail"] = e.accessDenied
	}
	out := marshal(body)
	s.mu.Lock()
	s.stats.ByCode[e.code]++
	s.mu.Unlock()
	for k, v := range e.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", requestID)
	w.WriteHeader(e.status)
	_, _ = w.Write(out)
}

// newRequestID returns an ID in the gateway's shape, e.g. 473469C7-AA6F-4DC5-B3DB-A3DC0DE3C83E.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := bytes.ToUpper([]byte(hex.EncodeToString(b[:])))
	return string(h[0:8]) + "-" + string(h[8:12]) + "-" + string(h[12:16]) + "-" + string(h[16:20]) + "-" + string(h[20:32])
}

// registerControl mounts the test and demo control API (not part of PAI-DLC).
func (s *Server) registerControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/jobs", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, s.Jobs()) })
	mux.HandleFunc("PUT /_sim/jobs", func(w http.ResponseWriter, r *http.Request) {
		jobs, err := decodeJobs(r.Body)
		if err != nil {
			writeJSON(w, 400, errorBody(err.Error()))
			return
		}
		s.Upsert(jobs...)
		writeJSON(w, 200, map[string]int{"upserted": len(jobs)})
	})
	mux.HandleFunc("GET /_sim/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, ok := s.Job(r.PathValue("id"))
		if !ok {
			writeJSON(w, 404, errorBody("no such job"))
			return
		}
		writeJSON(w, 200, j)
	})
	mux.HandleFunc("PATCH /_sim/jobs/{id}", s.servePatchJob)
	mux.HandleFunc("POST /_sim/jobs/{id}/update", s.serveUpdateJob)
	mux.HandleFunc("DELETE /_sim/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]int{"deleted": s.Delete(r.PathValue("id"))})
	})
	mux.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		writeJSON(w, 200, map[string]string{"status": "reset"})
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, s.Stats()) })
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, s.Faults()) })
	mux.HandleFunc("PUT /_sim/faults", s.servePutFaults)
}

// servePatchJob applies a JSON merge patch of the job in the API's field names, e.g. {"Status":"Failed"}.
func (s *Server) servePatchJob(w http.ResponseWriter, r *http.Request) {
	patch, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, 400, errorBody(err.Error()))
		return
	}
	var perr error
	ok := s.Patch(r.PathValue("id"), func(j *Job) { perr = json.Unmarshal(patch, j) })
	switch {
	case !ok:
		writeJSON(w, 404, errorBody("no such job"))
	case perr != nil:
		writeJSON(w, 400, errorBody(perr.Error()))
	default:
		j, _ := s.Job(r.PathValue("id"))
		writeJSON(w, 200, j)
	}
}

// serveUpdateJob applies what UpdateJob or the scheduler change: Accessibility, JobSpecs,
// Priority, oversold fields.
func (s *Server) serveUpdateJob(w http.ResponseWriter, r *http.Request) {
	var u JobUpdate
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		writeJSON(w, 400, errorBody(err.Error()))
		return
	}
	j, ok, err := s.UpdateJob(r.PathValue("id"), u)
	switch {
	case err != nil:
		writeJSON(w, 400, errorBody(err.Error()))
	case !ok:
		writeJSON(w, 404, errorBody("no such job"))
	default:
		writeJSON(w, 200, j)
	}
}

// servePutFaults replaces the faults in force.
func (s *Server) servePutFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeJSON(w, 400, errorBody(err.Error()))
		return
	}
	if err := f.Validate(); err != nil {
		writeJSON(w, 400, errorBody(err.Error()))
		return
	}
	s.SetFaults(f)
	writeJSON(w, 200, f)
}

// decodeJobs reads a JSON array of jobs, one job, or a saved ListJobs response body.
func decodeJobs(r io.Reader) ([]Job, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<30))
	if err != nil {
		return nil, err
	}
	data = bytes.TrimSpace(data)
	switch {
	case len(data) > 0 && data[0] == '[':
		var jobs []Job
		if err := json.Unmarshal(data, &jobs); err != nil {
			return nil, fmt.Errorf("decoding a JSON array of jobs: %w", err)
		}
		return jobs, nil
	case len(data) > 0 && data[0] == '{':
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, fmt.Errorf("decoding JSON: %w", err)
		}
		if raw, ok := probe["Jobs"]; ok {
			var jobs []Job
			if err := json.Unmarshal(raw, &jobs); err != nil {
				return nil, fmt.Errorf("decoding the Jobs of a ListJobs response: %w", err)
			}
			return jobs, nil
		}
		var j Job
		if err := json.Unmarshal(data, &j); err != nil {
			return nil, fmt.Errorf("decoding a job: %w", err)
		}
		return []Job{j}, nil
	}
	return nil, fmt.Errorf("want a JSON array of jobs, a job, or a ListJobs response body")
}

// LoadJobs reads jobs from JSON (see decodeJobs) and upserts them; jobs without an ID are refused.
func (s *Server) LoadJobs(r io.Reader) (int, error) {
	jobs, err := decodeJobs(r)
	if err != nil {
		return 0, err
	}
	for i, j := range jobs {
		if j.JobID == "" {
			return 0, fmt.Errorf("job %d has no JobId", i)
		}
	}
	s.Upsert(jobs...)
	return len(jobs), nil
}

// marshal encodes like the gateway: compact, without escaping <, > and & as \u003c and friends.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

const codeActionNotFound = "InvalidAction.NotFound"

func actionNotFound() *apiError {
	return &apiError{status: 404, code: codeActionNotFound, message: "Specified api is not found, please check your url and method."}
}

func errorBody(msg string) map[string]string { return map[string]string{"error": msg} }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
