// Package endpoints decides which PAI-DLC endpoints a JobQuery may call. Endpoints are an
// administrator's decision: a request carries the AccessKey ID and the signature (and an STS
// token), so a JobQuery that could name any host could hand them to anyone.
package endpoints

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// officialHost matches PAI-DLC's own hosts as the API reference lists them: the regional
// `pai-dlc.<region>.aliyuncs.com`, the central `pai-dlc.aliyuncs.com`, and the VPC form
// `pai-dlc-vpc.<region>.aliyuncs.com` the SDK's endpoint rule generates for Network=vpc.
var officialHost = regexp.MustCompile(`^pai-dlc(-vpc)?(\.[a-z0-9]+(-[a-z0-9]+)*)?\.aliyuncs\.com$`)

// Pattern is one administrator-allowed endpoint: a scheme, a host glob (path.Match syntax, so
// `*` matches any run of characters but '/') and a port ("*" for any, "" for the scheme's
// default port).
type Pattern struct {
	Scheme, Host, Port string
}

func (p Pattern) String() string {
	if p.Port == "" {
		return p.Scheme + "://" + p.Host
	}
	return p.Scheme + "://" + p.Host + ":" + p.Port
}

// Policy is the set of endpoints JobQueries may call: PAI-DLC's official HTTPS hosts, always,
// plus the administrator's patterns (the manager's --allowed-endpoints flag).
type Policy struct {
	Extra []Pattern
}

// ParsePatterns parses a comma-separated list of endpoint patterns such as
// "http://127.0.0.1:*,https://dlc-proxy.example.internal".
func ParsePatterns(list string) (Policy, error) {
	var p Policy
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		pat, err := parsePattern(item)
		if err != nil {
			return Policy{}, err
		}
		p.Extra = append(p.Extra, pat)
	}
	return p, nil
}

func parsePattern(s string) (Pattern, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return Pattern{}, fmt.Errorf("allowed endpoint %q: want http://host[:port] or https://host[:port]", s)
	}
	if strings.ContainsAny(rest, "/?#@") || strings.Count(rest, "[") != strings.Count(rest, "]") {
		return Pattern{}, fmt.Errorf("allowed endpoint %q: a pattern names a scheme, a host and a port only", s)
	}
	host, port := rest, ""
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, port = rest[:i], rest[i+1:]
		if port == "" {
			return Pattern{}, fmt.Errorf("allowed endpoint %q: empty port", s)
		}
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if host == "" {
		return Pattern{}, fmt.Errorf("allowed endpoint %q: no host", s)
	}
	if _, err := path.Match(host, ""); err != nil {
		return Pattern{}, fmt.Errorf("allowed endpoint %q: %w", s, err)
	}
	return Pattern{Scheme: scheme, Host: host, Port: port}, nil
}

// ErrNotAllowed marks an endpoint outside the policy.
var ErrNotAllowed = errors.New("endpoint not allowed")

// Check returns nil when a JobQuery with this region and endpoint may send requests. An empty
// endpoint means the official host of the region, which is always allowed. The error never
// contains anything but the endpoint the user wrote.
func (p Policy) Check(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("%w: %q is not a URL", ErrNotAllowed, endpoint)
	}
	// Userinfo turns "https://pai-dlc.cn-hangzhou.aliyuncs.com:443@evil.example" into a
	// request to evil.example; admission rejects it too, this is the second line.
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("%w: %q must be scheme://host[:port] without user, path, query or fragment", ErrNotAllowed, endpoint)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if u.Scheme == "https" && (port == "" || port == "443") && officialHost.MatchString(host) {
		return nil
	}
	for _, pat := range p.Extra {
		if pat.matches(u.Scheme, host, port) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is neither a PAI-DLC HTTPS endpoint (https://pai-dlc[-vpc].<region>.aliyuncs.com) "+
		"nor in the manager's --allowed-endpoints", ErrNotAllowed, endpoint)
}

func (pat Pattern) matches(scheme, host, port string) bool {
	if scheme != pat.Scheme {
		return false
	}
	if ok, _ := path.Match(pat.Host, host); !ok {
		// An IPv6 literal compares in its canonical form.
		if ip := net.ParseIP(host); ip == nil || ip.String() != net.ParseIP(pat.Host).String() {
			return false
		}
	}
	switch pat.Port {
	case "*":
		return true
	case "":
		return port == "" || port == defaultPort(scheme)
	default:
		return port == pat.Port || (port == "" && pat.Port == defaultPort(scheme))
	}
}

func defaultPort(scheme string) string {
	if scheme == "http" {
		return "80"
	}
	return "443"
}

// String lists the administrator's patterns, for the manager's start-up log.
func (p Policy) String() string {
	out := make([]string, len(p.Extra))
	for i, pat := range p.Extra {
		out[i] = pat.String()
	}
	return strings.Join(out, ",")
}

// SameSource reports whether two spec.endpoint values reach the same PAI-DLC service for one
// region: "" and every official host (regional, central, VPC) are the service itself; other
// endpoints compare by scheme, host (case-insensitive) and port, a scheme's default port given
// or not, a trailing "/" or not. Snapshots record the endpoint of their first writer, and a
// raw comparison made every snapshot foreign after an edit as harmless as adding ":443".
func SameSource(a, b string) bool { return sourceOf(a) == sourceOf(b) }

// sourceOf is the canonical form SameSource compares.
func sourceOf(endpoint string) string {
	if endpoint == "" {
		return "pai-dlc"
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return endpoint
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == defaultPort(u.Scheme) {
		port = ""
	}
	if u.Scheme == "https" && port == "" && officialHost.MatchString(host) {
		return "pai-dlc"
	}
	return u.Scheme + "://" + net.JoinHostPort(host, port)
}
