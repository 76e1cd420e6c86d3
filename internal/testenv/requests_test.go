package testenv

import (
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func TestResourceOfNamesWhatARequestWrites(t *testing.T) {
	for path, want := range map[string]string{
		"/apis/dlc.dlcsync.io/v1alpha1/namespaces/ns/dlcjobsnapshots":             "dlcjobsnapshots",
		"/apis/dlc.dlcsync.io/v1alpha1/namespaces/ns/dlcjobsnapshots/dlc1":        "dlcjobsnapshots",
		"/apis/dlc.dlcsync.io/v1alpha1/namespaces/ns/dlcjobsnapshots/dlc1/status": "dlcjobsnapshots/status",
		"/apis/events.k8s.io/v1/namespaces/ns/events":                             "events",
		"/apis/dlc.dlcsync.io/v1alpha1/namespaces/ns/jobqueries/q/status":         "jobqueries/status",
		"/api/v1/namespaces": "namespaces",
	} {
		if got := resourceOf(path); got != want {
			t.Errorf("resourceOf(%s) = %q, want %q", path, got, want)
		}
	}
	snapshots, status := Request{Resource: "dlcjobsnapshots"}, Request{Resource: "dlcjobsnapshots/status"}
	get, patch, create := snapshots, status, snapshots
	get.Verb, patch.Verb, create.Verb = http.MethodGet, "PATCH(apply)", http.MethodPost
	createEvent := Request{Verb: http.MethodPost, Resource: "events"}
	before := RequestCount{get: 5, patch: 1}
	after := RequestCount{get: 9, patch: 4, create: 2, createEvent: 1}
	delta := after.Since(before)
	if delta.Writes("") != 6 || delta.Writes("dlcjobsnapshots") != 5 || delta.Writes("events") != 1 {
		t.Fatalf("writes: %v", delta)
	}
}

// An apiserver stand-in: each request's answer is the code its path asks for
// (/apis/g/v/namespaces/ns/dlcjobsnapshots/<code>), and a path ending in "drop" gets its
// connection closed without an answer.
func codeServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		if name == "drop" {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		code, err := strconv.Atoi(name)
		if err != nil {
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTheCounterTellsWritesApartByVerbAndAnswer(t *testing.T) {
	srv := codeServer(t)
	counter := NewRequestCounter()
	hc, err := rest.HTTPClientFor(counter.Instrument(&rest.Config{Host: srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	const base = "/apis/dlc.dlcsync.io/v1alpha1/namespaces/ns/dlcjobsnapshots/"
	send := func(method, name, contentType string) {
		req, err := http.NewRequest(method, srv.URL+base+name, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if resp, err := hc.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}
	send(http.MethodPost, "201", "application/json")
	send(http.MethodPatch, "200", "application/json-patch+json")
	send(http.MethodPatch, "409", "application/json-patch+json")
	send(http.MethodPatch, "409", "application/json-patch+json")
	send(http.MethodPatch, "200", "application/merge-patch+json")
	send(http.MethodPatch, "200", "application/apply-patch+yaml")
	send(http.MethodPatch, "404", "application/strategic-merge-patch+json; charset=utf-8")
	send(http.MethodPut, "422", "application/json")
	send(http.MethodPut, "drop", "application/json")
	send(http.MethodGet, "200", "")
	send(http.MethodGet, "404", "")

	got := counter.Snapshot()
	want := map[string]int{"POST 201": 1, "PATCH(json-patch) 200": 1, "PATCH(json-patch) 409": 2, "PATCH(merge-patch) 200": 1,
		"PATCH(apply) 200": 1, "PATCH(strategic) 404": 1, "PUT 422": 1, "PUT 0": 1}
	if by := got.WritesBy("dlcjobsnapshots"); !maps.Equal(by, want) {
		t.Errorf("WritesBy = %v, want %v", by, want)
	}
	// Writes counts every write whatever its answer (the reliability tests rely on that); reads
	// are not writes.
	if n := got.Writes("dlcjobsnapshots"); n != 9 {
		t.Errorf("Writes = %d, want 9", n)
	}
	if by := got.WritesBy("events"); len(by) != 0 {
		t.Errorf("WritesBy(events) = %v, want none", by)
	}
}
