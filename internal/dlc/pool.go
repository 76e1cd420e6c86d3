package dlc

import (
	"sync"
	"time"
)

const (
	// DefaultIdleTimeout is the default Pool.IdleTimeout.
	DefaultIdleTimeout = time.Hour
	// DefaultMaxPerTenant is the default Pool.MaxPerTenant: a namespace's queries rarely use more
	// than a few credentials, endpoints and regions at once.
	DefaultMaxPerTenant = 16
	// DefaultMaxClients is the default Pool.MaxClients.
	DefaultMaxClients = 1024
)

// Pool hands out one Client per (region, endpoint, signature algorithm, credential) and reuses
// it, so that connections stay pooled across syncs. A client not handed out for IdleTimeout is
// dropped (lazily, on the next call), so rotated secrets and deleted queries do not leave
// clients behind. The pool holds at most MaxPerTenant clients of one tenant and MaxClients in all,
// dropping the least recently used beyond: every new credential value is a new client (a
// transport, a limiter, a breaker), and a tenant rewriting a Secret in a loop must not grow the
// manager for everyone. Clients share the limiters and breakers of Governors, which are keyed by
// credential, endpoint host and region; a governor that no pooled client uses any more is
// forgotten with its last client. It is safe for concurrent use; the zero value works.
type Pool struct {
	// Governors, Retry, Observer and MaxBodyBytes fill the Config fields a caller left zero.
	Governors    *Governors
	Retry        RetryPolicy
	Observer     func(code string)
	MaxBodyBytes int64
	// STSEndpoint fills Config.STSEndpoint of the clients of assumed roles.
	STSEndpoint string
	// IdleTimeout drops a client not used for that long (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxPerTenant and MaxClients bound the clients of one tenant and of all (defaults
	// DefaultMaxPerTenant, DefaultMaxClients).
	MaxPerTenant, MaxClients int
	// Now returns the current time (tests pin it; default time.Now).
	Now func() time.Time

	mu      sync.Mutex
	clients map[poolKey]*pooled
}

// poolKey holds no secret: the credential is its CredentialKey (a SHA-256).
type poolKey struct {
	region, host, protocol, signature, credential, tenant string
}

// sameSource reports whether two keys differ by tenant only: their clients share a credential
// chain and a transport.
func (k poolKey) sameSource(o poolKey) bool {
	k.tenant, o.tenant = "", ""
	return k == o
}

type pooled struct {
	client   *Client
	lastUsed time.Time
	// governors and governor say which governor the client uses, so that the governors are
	// swept when a client goes and its governor with the last client that uses it; governors is
	// nil when the client has none.
	governors *Governors
	governor  GovernorKey
}

// Lister returns the pooled client for cfg, creating it on first use.
func (p *Pool) Lister(cfg Config) (Lister, error) {
	host, protocol, err := ResolveEndpoint(cfg.RegionID, cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	key := poolKey{region: cfg.RegionID, host: host, protocol: protocol, signature: cfg.SignatureAlgorithm, credential: cfg.credentialKey(),
		tenant: cfg.Tenant}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evict(now)
	if c, ok := p.clients[key]; ok {
		c.lastUsed = now
		return c.client, nil
	}
	if cfg.Governors == nil {
		cfg.Governors = p.Governors
	}
	if cfg.Retry == (RetryPolicy{}) {
		cfg.Retry = p.Retry
	}
	if cfg.Observer == nil {
		cfg.Observer = p.Observer
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = p.MaxBodyBytes
	}
	if cfg.STSEndpoint == "" {
		cfg.STSEndpoint = p.STSEndpoint
	}
	for k, other := range p.clients {
		if k.sameSource(key) {
			cfg.shared = other.client.parts
			break
		}
	}
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if p.clients == nil {
		p.clients = map[poolKey]*pooled{}
	}
	p.clients[key] = &pooled{client: c, lastUsed: now, governors: cfg.Governors,
		governor: GovernorKey{Credential: key.credential, Host: host, Region: cfg.RegionID, Tenant: cfg.Tenant}}
	p.bound(key)
	return c, nil
}

// bound drops the least recently used clients of added's tenant beyond MaxPerTenant, then of all
// beyond MaxClients; never added itself.
func (p *Pool) bound(added poolKey) {
	perTenant, total := orDefault(p.MaxPerTenant, DefaultMaxPerTenant), orDefault(p.MaxClients, DefaultMaxClients)
	var evicted []*pooled
	for _, limit := range []struct {
		max     int
		counted func(poolKey) bool
	}{
		{perTenant, func(k poolKey) bool { return k.tenant == added.tenant }},
		{total, func(poolKey) bool { return true }},
	} {
		for {
			n, oldest := 0, poolKey{}
			var oldestUse time.Time
			for k, c := range p.clients {
				if !limit.counted(k) {
					continue
				}
				if n++; k != added && (oldestUse.IsZero() || c.lastUsed.Before(oldestUse)) {
					oldest, oldestUse = k, c.lastUsed
				}
			}
			if n <= limit.max {
				break
			}
			evicted = append(evicted, p.clients[oldest])
			delete(p.clients, oldest)
		}
	}
	p.forget(evicted)
}

func orDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// Len is the number of pooled clients (idle ones not yet evicted included).
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}

func (p *Pool) evict(now time.Time) {
	idle := p.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	var evicted []*pooled
	for k, c := range p.clients {
		if now.Sub(c.lastUsed) >= idle {
			delete(p.clients, k)
			evicted = append(evicted, c)
		}
	}
	p.forget(evicted)
}

// forget lets go of evicted clients: the governors no pooled client uses any more, and the idle
// connections of a transport no pooled client shares. A sync still holding such a client
// finishes with it; only the pool forgets it.
func (p *Pool) forget(evicted []*pooled) {
	for _, c := range evicted {
		if !p.usesParts(c.client.parts) {
			c.client.parts.closeIdle()
		}
	}
	swept := map[*Governors]bool{}
	for _, c := range evicted {
		if govs := c.governors; govs != nil && !swept[govs] {
			swept[govs] = true
			govs.sweep(func(key GovernorKey) bool { return p.usesGovernor(govs, key) })
		}
	}
}

// usesParts reports whether a pooled client shares parts.
func (p *Pool) usesParts(parts *sharedParts) bool {
	for _, c := range p.clients {
		if c.client.parts == parts {
			return true
		}
	}
	return false
}

// usesGovernor reports whether a pooled client still uses the governor of key.
func (p *Pool) usesGovernor(govs *Governors, key GovernorKey) bool {
	for _, c := range p.clients {
		if c.governors == govs && c.governor == key {
			return true
		}
	}
	return false
}

func (p *Pool) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}
