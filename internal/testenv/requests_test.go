package testenv

import "testing"

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
	before := RequestCount{"GET dlcjobsnapshots": 5, "PATCH dlcjobsnapshots/status": 1}
	after := RequestCount{"GET dlcjobsnapshots": 9, "PATCH dlcjobsnapshots/status": 4, "POST dlcjobsnapshots": 2, "POST events": 1}
	delta := after.Since(before)
	if delta.Writes("") != 6 || delta.Writes("dlcjobsnapshots") != 5 || delta.Writes("events") != 1 {
		t.Fatalf("writes: %v", delta)
	}
}
