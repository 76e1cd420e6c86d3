package dlc

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

func TestTwoEndpointsWithTheSameCredentialHaveIndependentBreakers(t *testing.T) {
	refusing := &fakeAPI{answers: []func(http.ResponseWriter){errorAnswer(401, "InvalidAccessKeyId.NotFound", nil)}}
	healthy := &fakeAPI{answers: []func(http.ResponseWriter){okAnswer}}
	var changes []string
	govs := NewGovernors(GovernorConfig{AuthFailuresToOpen: 3, Cooldown: time.Hour,
		OnBreakerChange: func(name string, state gobreaker.State) { changes = append(changes, name+"="+state.String()) }})
	static := &StaticCredentials{AccessKeyID: "testid", AccessKeySecret: "testsecret-very-secret"}
	client := func(endpoint string) *Client {
		c, err := NewClient(Config{RegionID: "cn-hangzhou", Endpoint: endpoint, Static: static, Governors: govs, Retry: RetryPolicy{MaxAttempts: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	badURL, goodURL := newTestServer(t, refusing), newTestServer(t, healthy)
	bad, good := client(badURL), client(goodURL)
	for range 3 {
		if _, err := bad.ListJobs(context.Background(), &ListJobsRequest{}); KindOf(err) != KindUnauthorized {
			t.Fatalf("want Unauthorized, got %v", err)
		}
	}
	if _, err := bad.ListJobs(context.Background(), &ListJobsRequest{}); KindOf(err) != KindCircuitOpen || refusing.calls != 3 {
		t.Fatalf("4th call to the refusing endpoint: %v after %d calls; want CircuitOpen", err, refusing.calls)
	}
	if _, err := good.ListJobs(context.Background(), &ListJobsRequest{}); err != nil || healthy.calls != 1 {
		t.Fatalf("the other endpoint with the same credential: %v, %d calls; want it untouched", err, healthy.calls)
	}
	host := strings.TrimPrefix(badURL, "http://")
	if len(changes) != 1 || changes[0] != host+"/cn-hangzhou=open" {
		t.Fatalf("breaker changes %v; want one, named by host and region only", changes)
	}
}

func TestCredentialKeyIsAFullHash(t *testing.T) {
	a := CredentialKey(&StaticCredentials{AccessKeyID: "LTAI1", AccessKeySecret: "s", SecurityToken: "t1"})
	b := CredentialKey(&StaticCredentials{AccessKeyID: "LTAI1", AccessKeySecret: "s", SecurityToken: "t2"})
	c := CredentialKey(&StaticCredentials{AccessKeyID: "LTAI1", AccessKeySecret: "st", SecurityToken: "2"})
	if len(strings.TrimPrefix(a, "ak:LTAI1:")) != 64 || a == b || b == c {
		t.Fatalf("keys %q %q %q; want 256-bit hashes that differ", a, b, c)
	}
}

func TestThePoolReusesClientsPerKeyAndEvictsIdleOnes(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pool := &Pool{Now: func() time.Time { return now }, IdleTimeout: time.Hour}
	cfg := Config{RegionID: "cn-hangzhou", Endpoint: "http://127.0.0.1:1", Static: &StaticCredentials{AccessKeyID: "id", AccessKeySecret: "secret-1"}}
	get := func(cfg Config) Lister {
		l, err := pool.Lister(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	first := get(cfg)
	if get(cfg) != first {
		t.Fatal("the same config got a second client")
	}
	rotated := cfg
	rotated.Static = &StaticCredentials{AccessKeyID: "id", AccessKeySecret: "secret-2"}
	v2 := cfg
	v2.SignatureAlgorithm = "v2"
	other := cfg
	other.Endpoint = "http://127.0.0.2:1"
	for name, c := range map[string]Config{"rotated secret": rotated, "signature": v2, "endpoint": other} {
		if get(c) == first {
			t.Fatalf("%s: shares the client", name)
		}
	}
	if pool.Len() != 4 {
		t.Fatalf("%d clients, want 4", pool.Len())
	}
	now = now.Add(59 * time.Minute)
	if get(cfg) != first {
		t.Fatal("a client used within the idle timeout was replaced")
	}
	now = now.Add(30 * time.Minute)
	// The other three were last used 89 minutes ago: evicted; the first 30 minutes ago: kept.
	if get(cfg) != first || pool.Len() != 1 {
		t.Fatalf("%d clients after 89 idle minutes; want only the one in use", pool.Len())
	}
	now = now.Add(time.Hour)
	if get(cfg) == first || pool.Len() != 1 {
		t.Fatal("an idle client was not evicted")
	}
}

func TestAGovernorIsForgottenWithTheLastClientThatUsesIt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	govs := NewGovernors(GovernorConfig{})
	pool := &Pool{Now: func() time.Time { return now }, IdleTimeout: time.Hour, Governors: govs}
	cfg := Config{RegionID: "cn-hangzhou", Endpoint: "http://127.0.0.1:1", Static: &StaticCredentials{AccessKeyID: "id", AccessKeySecret: "secret-1"}}
	// Two clients (signature algorithms) of one credential, endpoint and region share a governor.
	v2 := cfg
	v2.SignatureAlgorithm = "v2"
	other := cfg
	other.Endpoint = "http://127.0.0.2:1"
	for _, c := range []Config{cfg, v2, other} {
		if _, err := pool.Lister(c); err != nil {
			t.Fatal(err)
		}
	}
	if govs.Len() != 2 {
		t.Fatalf("%d governors, want 2 (one per endpoint)", govs.Len())
	}
	now = now.Add(30 * time.Minute)
	if _, err := pool.Lister(cfg); err != nil {
		t.Fatal(err)
	}
	now = now.Add(45 * time.Minute)
	// v2 and other idle for 75 minutes: evicted; cfg still uses the shared governor.
	if _, err := pool.Lister(cfg); err != nil {
		t.Fatal(err)
	}
	if pool.Len() != 1 || govs.Len() != 1 {
		t.Fatalf("%d clients and %d governors, want 1 and 1", pool.Len(), govs.Len())
	}
	now = now.Add(2 * time.Hour)
	if _, err := pool.Lister(other); err != nil {
		t.Fatal(err)
	}
	if pool.Len() != 1 || govs.Len() != 1 {
		t.Fatalf("after every old client went idle: %d clients and %d governors, want only the new ones", pool.Len(), govs.Len())
	}
}

func TestAnOpenBreakerIsNotForgottenWithItsClients(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	govs := NewGovernors(GovernorConfig{Cooldown: 3 * time.Hour})
	pool := &Pool{Now: func() time.Time { return now }, IdleTimeout: time.Hour, Governors: govs}
	cfg := Config{RegionID: "cn-hangzhou", Endpoint: "http://127.0.0.1:1", Static: &StaticCredentials{AccessKeyID: "id", AccessKeySecret: "secret-1"}}
	if _, err := pool.Lister(cfg); err != nil {
		t.Fatal(err)
	}
	gov := govs.For(GovernorKey{Credential: CredentialKey(cfg.Static), Host: "127.0.0.1:1", Region: "cn-hangzhou"})
	if govs.Len() != 1 {
		t.Fatal("not the governor of the pooled client")
	}
	for range 3 {
		_, _ = gov.breaker.Execute(func() (*ListJobsResponse, error) { return nil, &Error{Kind: KindUnauthorized} })
	}
	if gov.breaker.State() != gobreaker.StateOpen {
		t.Fatalf("breaker %v after 3 auth failures", gov.breaker.State())
	}
	other := cfg
	other.Endpoint = "http://127.0.0.2:1"
	now = now.Add(2 * time.Hour)
	if _, err := pool.Lister(other); err != nil {
		t.Fatal(err)
	}
	if govs.Len() != 2 {
		t.Fatalf("%d governors: the open breaker was forgotten with its idle client, a fresh one would call at once", govs.Len())
	}
}

// Two tenants with one credential at one endpoint and region (the operator's ambient identity in
// two namespaces) have a breaker each, so one's refusals cannot stop the other, and share one
// rate limiter, since the credential's quota is one, and one credential chain and transport (one
// token refresh for the ambient role, not one per namespace).
func TestTenantsOfOneCredentialHaveABreakerEachAndOneLimiter(t *testing.T) {
	refusing := &fakeAPI{answers: []func(http.ResponseWriter){errorAnswer(403, "Forbidden.RAM", nil)}}
	govs := NewGovernors(GovernorConfig{AuthFailuresToOpen: 3, Cooldown: time.Hour})
	url := newTestServer(t, refusing)
	static := &StaticCredentials{AccessKeyID: "shared", AccessKeySecret: "shared-secret"}
	pool := &Pool{Governors: govs, Retry: RetryPolicy{MaxAttempts: 1}}
	lister := func(tenant string) Lister {
		l, err := pool.Lister(Config{RegionID: "cn-hangzhou", Endpoint: url, Static: static, Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := lister("team-a"), lister("team-b")
	if a == b || a.(*Client).parts != b.(*Client).parts {
		t.Fatal("tenants need clients of their own (their breakers) sharing one credential chain and transport")
	}
	for range 3 {
		if _, err := a.ListJobs(context.Background(), &ListJobsRequest{}); KindOf(err) != KindForbidden {
			t.Fatalf("want Forbidden, got %v", err)
		}
	}
	if _, err := a.ListJobs(context.Background(), &ListJobsRequest{}); KindOf(err) != KindCircuitOpen {
		t.Fatalf("team-a's 4th call: %v; want CircuitOpen", err)
	}
	if _, err := b.ListJobs(context.Background(), &ListJobsRequest{}); KindOf(err) != KindForbidden || refusing.calls != 4 {
		t.Fatalf("team-b's call: %v after %d calls; want it sent (Forbidden), not refused by team-a's breaker", err, refusing.calls)
	}
	host := strings.TrimPrefix(url, "http://")
	ga := govs.For(GovernorKey{Credential: CredentialKey(static), Host: host, Region: "cn-hangzhou", Tenant: "team-a"})
	gb := govs.For(GovernorKey{Credential: CredentialKey(static), Host: host, Region: "cn-hangzhou", Tenant: "team-b"})
	if ga.limiter != gb.limiter || ga.breaker == gb.breaker {
		t.Fatalf("tenants must share the limiter (%p, %p) and not the breaker", ga.limiter, gb.limiter)
	}
}

// A breaker kept open when its client went idle is forgotten once its cooldown has passed and no
// client uses it (issue 23, finding 14: half-open breakers stayed for good); the breaker summary
// by host and region is the worst of its tenants' breakers, and closed only once all are, so a
// metric drops its series then.
func TestBreakersAreForgottenAfterTheirCooldownAndSummarisedByName(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var changes []string
	govs := NewGovernors(GovernorConfig{Cooldown: 50 * time.Millisecond,
		OnBreakerChange: func(name string, state gobreaker.State) { changes = append(changes, state.String()) }})
	pool := &Pool{Now: func() time.Time { return now }, IdleTimeout: time.Hour, Governors: govs}
	static := &StaticCredentials{AccessKeyID: "id", AccessKeySecret: "secret-1"}
	cfg := func(tenant, endpoint string) Config {
		return Config{RegionID: "cn-hangzhou", Endpoint: endpoint, Static: static, Tenant: tenant}
	}
	key := func(tenant string) GovernorKey {
		return GovernorKey{Credential: CredentialKey(static), Host: "127.0.0.1:1", Region: "cn-hangzhou", Tenant: tenant}
	}
	fail := func(g *Governor) {
		for range 3 {
			_, _ = g.breaker.Execute(func() (*ListJobsResponse, error) { return nil, &Error{Kind: KindUnauthorized} })
		}
	}
	for _, tenant := range []string{"a", "b"} {
		if _, err := pool.Lister(cfg(tenant, "http://127.0.0.1:1")); err != nil {
			t.Fatal(err)
		}
	}
	a, b := govs.For(key("a")), govs.For(key("b"))
	fail(a)
	fail(b)
	time.Sleep(60 * time.Millisecond) // both cooldowns over: half-open at the next look
	_, _ = a.breaker.Execute(func() (*ListJobsResponse, error) { return &ListJobsResponse{}, nil })
	if got := changes[len(changes)-1]; got == "closed" {
		t.Fatalf("summary %v after a closed while b is still not closed", changes)
	}

	// Both clients go idle; another client's arrival evicts them: a closed, b half-open: both go.
	now = now.Add(2 * time.Hour)
	if _, err := pool.Lister(cfg("c", "http://127.0.0.2:1")); err != nil {
		t.Fatal(err)
	}
	if govs.Len() != 1 {
		t.Fatalf("%d governors after the sweep; want only c's", govs.Len())
	}
	if got := changes[len(changes)-1]; got != "closed" {
		t.Fatalf("summary changes %v; want closed last, once no breaker of the name is left", changes)
	}
}

// A tenant rewriting its credentials Secret in a loop makes a new client per value; the pool keeps
// the tenant's most recent ones only, and another tenant's client stays pooled (and reused).
func TestThePoolBoundsTheClientsOfATenantAndOfAll(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pool := &Pool{Now: func() time.Time { return now }, MaxPerTenant: 4, MaxClients: 6}
	get := func(tenant, secret string) Lister {
		now = now.Add(time.Second)
		l, err := pool.Lister(Config{RegionID: "cn-hangzhou", Endpoint: "http://127.0.0.1:1", Tenant: tenant,
			Static: &StaticCredentials{AccessKeyID: "id", AccessKeySecret: secret}})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	quiet := get("quiet", "steady-secret")
	for i := range 100 {
		get("noisy", fmt.Sprintf("rotated-secret-%d", i))
		if n := pool.Len(); n > 5 {
			t.Fatalf("after %d rotations the pool holds %d clients; want at most 4 of the noisy tenant and the quiet one", i+1, n)
		}
	}
	if get("quiet", "steady-secret") != quiet {
		t.Fatal("the quiet tenant's client was dropped for the noisy tenant's")
	}
	for i := range 3 {
		get(fmt.Sprintf("tenant-%d", i), "s")
	}
	if n := pool.Len(); n != 6 {
		t.Fatalf("the pool holds %d clients; want MaxClients, 6", n)
	}
}
