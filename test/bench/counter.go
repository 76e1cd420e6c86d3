package bench

import (
	"net/http"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// requestCounter counts the HTTP requests a rest.Config's clients send to the apiserver, by
// method and resource: what the apiserver sees, whichever client (cache, writer, event
// recorder) sent them.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// requestCount is a snapshot of the counter.
type requestCount map[string]int

func newRequestCounter() *requestCounter { return &requestCounter{counts: map[string]int{}} }

// instrument makes every client built from cfg count its requests here.
func (c *requestCounter) instrument(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			c.add(req.Method + " " + resourceOf(req.URL.Path))
			return rt.RoundTrip(req)
		})
	})
	return out
}

func (c *requestCounter) add(key string) {
	c.mu.Lock()
	c.counts[key]++
	c.mu.Unlock()
}

func (c *requestCounter) snapshot() requestCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(requestCount, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// since returns the counts added after an earlier snapshot.
func (c requestCount) since(before requestCount) requestCount {
	out := requestCount{}
	for k, v := range c {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// writes counts the requests that change something (every method but GET), optionally only for
// resources with the given prefix ("dlcjobsnapshots", "events", "jobqueries").
func (c requestCount) writes(resourcePrefix string) int {
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
