package endpoints

import (
	"errors"
	"testing"
)

// By default only in-cluster Service URLs are sinks; the flag replaces the default; an empty
// policy allows nothing; userinfo and fragments are refused whatever the policy.
func TestSinkPolicy(t *testing.T) {
	def, err := ParseSinkPatterns(DefaultSinkPatterns)
	if err != nil {
		t.Fatal(err)
	}
	local, err := ParseSinkPatterns("http://127.0.0.1:*")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		policy SinkPolicy
		uri    string
		ok     bool
	}{
		{def, "http://el-dlc.ci.svc.cluster.local:8080", true},
		{def, "http://broker-ingress.knative-eventing.svc.cluster.local/team-a/default", true},
		{def, "https://webhook.argo-events.svc:12000/dlc", true},
		{def, "http://hooks.example.com/dlc", false},
		{def, "http://169.254.169.254/latest", false},
		{def, "http://127.0.0.1:8080/", false},
		{def, "http://x.svc.cluster.local.evil.example/", false},
		{def, "http://user:pw@el.ci.svc:8080/", false},
		{def, "http://el.ci.svc:8080/#frag", false},
		{def, "ftp://el.ci.svc/", false},
		{local, "http://127.0.0.1:39123/events", true},
		{local, "http://el.ci.svc:8080/", false},
		{SinkPolicy{}, "http://el.ci.svc:8080/", false},
	} {
		err := tc.policy.Check(tc.uri)
		if (err == nil) != tc.ok {
			t.Errorf("%s with %s: %v, want allowed=%v", tc.uri, tc.policy, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNotAllowed) {
			t.Errorf("%s: %v is not ErrNotAllowed", tc.uri, err)
		}
	}
}
