package testenv

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// RequestCounter counts the HTTP requests a rest.Config's clients send to the apiserver, by
// verb, resource and response code: what the apiserver sees, whichever client (cache, writer,
// event recorder, leader election) sent them. The benchmark and the reliability tests count
// writes with it.
type RequestCounter struct {
	mu     sync.Mutex
	counts RequestCount
}

// Request is what the counter tells requests apart by.
type Request struct {
	// Verb is the HTTP method; a PATCH carries its patch type from the Content-Type:
	// "PATCH(json-patch)", "PATCH(merge-patch)", "PATCH(apply)", "PATCH(strategic)".
	Verb string
	// Resource is "resource" or "resource/subresource" (resourceOf).
	Resource string
	// Code is the response's status code, 0 when no response came (a transport error).
	Code int
}

// RequestCount is a snapshot of the counter: how many requests of each kind.
type RequestCount map[Request]int

// NewRequestCounter returns an empty counter.
func NewRequestCounter() *RequestCounter { return &RequestCounter{counts: RequestCount{}} }

// Instrument returns a copy of cfg whose clients count their requests here, once each has its
// response (or has failed).
func (c *RequestCounter) Instrument(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			code := 0
			if err == nil {
				code = resp.StatusCode
			}
			c.add(Request{Verb: verbOf(req), Resource: resourceOf(req.URL.Path), Code: code})
			return resp, err
		})
	})
	return out
}

func (c *RequestCounter) add(r Request) {
	c.mu.Lock()
	c.counts[r]++
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

// Writes counts the requests that change something (every method but GET), whatever their
// answer, optionally only for resources with the given prefix ("dlcjobsnapshots", "events",
// "jobqueries").
func (c RequestCount) Writes(resourcePrefix string) int {
	n := 0
	for k, v := range c {
		if k.isWrite(resourcePrefix) {
			n += v
		}
	}
	return n
}

// WritesBy breaks Writes(resourcePrefix) down by verb and response code, keyed like
// "POST 201", "PATCH(json-patch) 200" or "PATCH(json-patch) 409".
func (c RequestCount) WritesBy(resourcePrefix string) map[string]int {
	out := map[string]int{}
	for k, v := range c {
		if k.isWrite(resourcePrefix) {
			out[fmt.Sprintf("%s %d", k.Verb, k.Code)] += v
		}
	}
	return out
}

func (r Request) isWrite(resourcePrefix string) bool {
	return r.Verb != http.MethodGet && strings.HasPrefix(r.Resource, resourcePrefix)
}

// patchTypes names the patch types by their media type.
var patchTypes = map[string]string{
	"application/json-patch+json":            "json-patch",
	"application/merge-patch+json":           "merge-patch",
	"application/strategic-merge-patch+json": "strategic",
	"application/apply-patch+yaml":           "apply",
	"application/apply-patch+cbor":           "apply",
}

// verbOf is the request's method, with the patch type for a PATCH.
func verbOf(req *http.Request) string {
	if req.Method != http.MethodPatch {
		return req.Method
	}
	mediaType, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil {
		return "PATCH(unknown)"
	}
	if name, ok := patchTypes[mediaType]; ok {
		return "PATCH(" + name + ")"
	}
	return "PATCH(" + mediaType + ")"
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
