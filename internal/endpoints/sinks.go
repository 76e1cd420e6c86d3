package endpoints

import (
	"fmt"
	"net/url"
	"strings"
)

// DefaultSinkPatterns are the CloudEvents sinks a manager allows unless its --allowed-sinks says
// otherwise: Services of the cluster, by their DNS names, on any port.
const DefaultSinkPatterns = "http://*.svc:*,https://*.svc:*,http://*.svc.cluster.local:*,https://*.svc.cluster.local:*"

// SinkPolicy is the set of URLs JobQueries may send CloudEvents to (the manager's
// --allowed-sinks). Unlike PAI-DLC endpoints nothing is allowed always: an empty policy turns
// CloudEvents off. A sink may have a path (a Knative Broker's /<namespace>/<name>).
type SinkPolicy struct {
	Patterns []Pattern
}

// ParseSinkPatterns parses a comma-separated list of sink patterns, e.g. DefaultSinkPatterns.
func ParseSinkPatterns(list string) (SinkPolicy, error) {
	p, err := ParsePatterns(list)
	if err != nil {
		return SinkPolicy{}, fmt.Errorf("allowed sinks: %w", err)
	}
	return SinkPolicy{Patterns: p.Extra}, nil
}

// Check returns nil when a JobQuery may send CloudEvents to uri. The error names only what the
// user wrote.
func (p SinkPolicy) Check(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: sink %q is not an http:// or https:// URL", ErrNotAllowed, uri)
	}
	if u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%w: sink %q must not carry userinfo or a fragment", ErrNotAllowed, uri)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	for _, pat := range p.Patterns {
		if pat.matches(u.Scheme, host, port) {
			return nil
		}
	}
	if len(p.Patterns) == 0 {
		return fmt.Errorf("%w: CloudEvents are turned off in this manager (--allowed-sinks is empty)", ErrNotAllowed)
	}
	return fmt.Errorf("%w: sink %q is not in the manager's --allowed-sinks (%s)", ErrNotAllowed, uri, Policy{Extra: p.Patterns})
}

// String lists the patterns, for the manager's start-up log.
func (p SinkPolicy) String() string { return Policy{Extra: p.Patterns}.String() }
