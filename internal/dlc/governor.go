package dlc

import (
	"errors"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// GovernorConfig sets the per-credential budget shared by every JobQuery that uses a credential.
type GovernorConfig struct {
	// QPS and Burst size the token bucket of each credential (defaults 5 and 10).
	QPS   float64
	Burst int
	// AuthFailuresToOpen consecutive authentication or authorization failures open the breaker
	// (default 3).
	AuthFailuresToOpen uint32
	// Cooldown is how long an open breaker refuses calls before one trial call (default 5m).
	Cooldown time.Duration
	// OnBreakerChange, if set, is told every breaker state change (for metrics). name is
	// GovernorKey.Name: the endpoint host and the region, never anything derived from the
	// credential, so it is safe as a metric label.
	OnBreakerChange func(name string, state gobreaker.State)
}

// GovernorKey names what one rate limiter and breaker govern: one credential at one endpoint
// of one region. Keying by credential alone let one namespace's endpoint that refuses a
// shared (ambient) credential open the breaker of every query using that credential.
type GovernorKey struct {
	// Credential is CredentialKey of the credential ("ambient" for the default chain).
	Credential string
	// Host is the endpoint host[:port] the requests go to.
	Host string
	// Region is the region ID.
	Region string
	// Tenant is the namespace of the JobQuery: each tenant has its own breaker, so one
	// namespace's refusals (a workspace the shared ambient role cannot read) cannot stop another
	// namespace's calls with the same credential. The rate limiter stays shared by every tenant:
	// the credential's API quota is one.
	Tenant string
}

// Name is the non-secret part of the key: host and region.
func (k GovernorKey) Name() string { return k.Host + "/" + k.Region }

// limiterKey is the key of the rate limiter, which every tenant of a credential, endpoint and
// region shares.
func (k GovernorKey) limiterKey() GovernorKey {
	k.Tenant = ""
	return k
}

// Governors hands out one Governor per GovernorKey. It is safe for concurrent use.
type Governors struct {
	cfg      GovernorConfig
	mu       sync.Mutex
	by       map[GovernorKey]*Governor
	limiters map[GovernorKey]*rate.Limiter
	// states are the breakers that are not closed, for OnBreakerChange's summary by name.
	// A lock of its own, never held while a breaker's methods run: a breaker reports a
	// change while holding its own lock.
	statesMu sync.Mutex
	states   map[GovernorKey]gobreaker.State
}

// Governor is the rate limiter and circuit breaker of one credential at one endpoint.
type Governor struct {
	limiter *rate.Limiter
	breaker *gobreaker.CircuitBreaker[*ListJobsResponse]
}

// NewGovernors returns an empty registry.
func NewGovernors(cfg GovernorConfig) *Governors {
	if cfg.QPS <= 0 {
		cfg.QPS = 5
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 10
	}
	if cfg.AuthFailuresToOpen == 0 {
		cfg.AuthFailuresToOpen = 3
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = 5 * time.Minute
	}
	return &Governors{cfg: cfg, by: map[GovernorKey]*Governor{}, limiters: map[GovernorKey]*rate.Limiter{},
		states: map[GovernorKey]gobreaker.State{}}
}

// Len is the number of governors held.
func (g *Governors) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.by)
}

// For returns the governor of a key, creating it on first use.
func (g *Governors) For(key GovernorKey) *Governor {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gov, ok := g.by[key]; ok {
		return gov
	}
	cfg := g.cfg
	limiter, ok := g.limiters[key.limiterKey()]
	if !ok {
		limiter = rate.NewLimiter(rate.Limit(cfg.QPS), cfg.Burst)
		g.limiters[key.limiterKey()] = limiter
	}
	gov := &Governor{
		limiter: limiter,
		breaker: gobreaker.NewCircuitBreaker[*ListJobsResponse](gobreaker.Settings{
			Name:        key.Name(),
			MaxRequests: 1,
			Timeout:     cfg.Cooldown,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.AuthFailuresToOpen },
			// Only the credential's own faults count: a throttled or failed server says nothing
			// about the key.
			IsSuccessful: func(err error) bool {
				var e *Error
				return err == nil || !errors.As(err, &e) || !e.AuthFailure()
			},
			IsExcluded:    func(err error) bool { return KindOf(err) == KindCanceled },
			OnStateChange: func(_ string, _, to gobreaker.State) { g.stateChanged(key, to) },
		}),
	}
	g.by[key] = gov
	return gov
}

// stateChanged records a breaker's new state and tells OnBreakerChange the worst state of the
// breakers of the same name (host and region, whatever the credential or tenant): closed once
// they all are, so that a metric can drop the series then.
func (g *Governors) stateChanged(key GovernorKey, to gobreaker.State) {
	g.statesMu.Lock()
	if to == gobreaker.StateClosed {
		delete(g.states, key)
	} else {
		g.states[key] = to
	}
	worst := gobreaker.StateClosed
	for k, st := range g.states {
		if k.Name() == key.Name() && st > worst {
			worst = st
		}
	}
	// Reported under the lock, so that two tenants' changes for one name reach the
	// callback in the order they were summarised (it must not call back into the governors).
	if g.cfg.OnBreakerChange != nil {
		g.cfg.OnBreakerChange(key.Name(), worst)
	}
	g.statesMu.Unlock()
}

// sweep forgets the governors no pooled client uses whose breaker is not open (closed, or
// half-open after its cooldown: a fresh breaker lets calls through as a half-open one does), and
// the rate limiters no governor left uses. An open breaker is kept, as a fresh one would let
// calls through before the cooldown is over; a later sweep forgets it once its cooldown passed.
func (g *Governors) sweep(inUse func(GovernorKey) bool) {
	g.mu.Lock()
	var gone []GovernorKey
	for key, gov := range g.by {
		if !inUse(key) && gov.breaker.State() != gobreaker.StateOpen {
			delete(g.by, key)
			gone = append(gone, key)
		}
	}
	used := map[GovernorKey]bool{}
	for k := range g.by {
		used[k.limiterKey()] = true
	}
	for k := range g.limiters {
		if !used[k] {
			delete(g.limiters, k)
		}
	}
	g.mu.Unlock()
	for _, key := range gone {
		g.stateChanged(key, gobreaker.StateClosed)
	}
}
