package testenv

import (
	"net/http"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// RequestCounter counts the HTTP requests a rest.Config's clients send to the apiserver, by
// method and resource: what the apiserver sees, whichever client (cache, writer, event
// recorder, leader election) sent them. The benchmark and the reliability tests count writes
// with it.
type RequestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// RequestCount is a snapshot of the counter: requests by "METHOD resource[/subresource]".
type RequestCount map[string]int

// NewRequestCounter returns an empty counter.
func NewRequestCounter() *RequestCounter { return &RequestCounter{counts: map[string]int{}} }

// Instrument returns a copy of cfg whose clients count their requests here.
func (c *RequestCounter) Instrument(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			c.add(req.Method + " " + resourceOf(req.URL.Path))
			return rt.RoundTrip(req)
		})
	})
	return out
}

func (c *RequestCounter) add(key string) {
	c.mu.Lock()
	c.counts[key]++
	c.mu.Unlock()
}

// Snapshot returns the counts so far.
func (c *RequestCounter) Snapshot() RequestCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(RequestCount, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Since returns the counts added after an earlier snapshot.
func (c RequestCount) Since(before RequestCount) RequestCount {
	out := RequestCount{}
	for k, v := range c {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// Writes counts the requests that change something (every method but GET), optionally only for
// resources with the given prefix ("dlcjobsnapshots", "events", "jobqueries").
func (c RequestCount) Writes(resourcePrefix string) int {
	n := 0
	for k, v := range c {
		method, resource, _ := strings.Cut(k, " ")
		if method != http.MethodGet && strings.HasPrefix(resource, resourcePrefix) {
			n += v
		}
	}
	return n
}

// resourceOf turns /apis/g/v/namespaces/ns/res/name/sub into "res/sub" (or "res").
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		if p == "namespaces" && i+2 < len(parts) {
			tail := parts[i+2:]
			if len(tail) >= 3 {
				return tail[0] + "/" + tail[2]
			}
			return tail[0]
		}
	}
	if len(parts) > 0 {
		return parts[len(parts)-1]
	}
	return path
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
