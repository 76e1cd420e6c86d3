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
	// OnBreakerChange, if set, is told every breaker state change (for metrics).
	OnBreakerChange func(key string, state gobreaker.State)
}

// Governors hands out one Governor per credential key. It is safe for concurrent use.
type Governors struct {
	cfg GovernorConfig
	mu  sync.Mutex
	by  map[string]*Governor
}

// Governor is the rate limiter and circuit breaker of one credential.
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
	return &Governors{cfg: cfg, by: map[string]*Governor{}}
}

// For returns the governor of a credential key, creating it on first use.
func (g *Governors) For(key string) *Governor {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gov, ok := g.by[key]; ok {
		return gov
	}
	cfg := g.cfg
	gov := &Governor{
		limiter: rate.NewLimiter(rate.Limit(cfg.QPS), cfg.Burst),
		breaker: gobreaker.NewCircuitBreaker[*ListJobsResponse](gobreaker.Settings{
			Name:        key,
			MaxRequests: 1,
			Timeout:     cfg.Cooldown,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.AuthFailuresToOpen },
			// Only the credential's own faults count: a throttled or failed server says nothing
			// about the key.
			IsSuccessful: func(err error) bool {
				var e *Error
				return err == nil || !errors.As(err, &e) || !e.AuthFailure()
			},
			IsExcluded: func(err error) bool { return KindOf(err) == KindCanceled },
			OnStateChange: func(name string, _, to gobreaker.State) {
				if cfg.OnBreakerChange != nil {
					cfg.OnBreakerChange(name, to)
				}
			},
		}),
	}
	g.by[key] = gov
	return gov
}
