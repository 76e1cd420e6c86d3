package main

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

func TestJobDuration(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	meta := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	for _, tc := range []struct {
		name    string
		status  dlcv1alpha1.DLCJobSnapshotStatus
		started *time.Time
		want    string
	}{
		{"finished: start to finish", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Failed", FinishedAt: meta(-time.Hour)},
			at(-4*time.Hour - 7*time.Minute), "3h7m"},
		{"running: start to now, not the stale API seconds", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Running", Duration: 5},
			at(-90 * time.Second), "90s"},
		{"not started yet: the API's seconds", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Queuing", Duration: 0}, nil, "<none>"},
		{"terminal without a finish time: the API's seconds", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Stopped", Duration: 3600},
			at(-5 * time.Hour), "60m"},
		{"finish before start (clock skew): the API's seconds", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Succeeded",
			FinishedAt: meta(-2 * time.Hour), Duration: 600}, at(-time.Hour), "10m"},
		{"no start time: the API's seconds", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Succeeded", Duration: 26 * 3600}, nil, "26h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := jobDuration(&tc.status, tc.started, now); got != tc.want {
				t.Errorf("jobDuration = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAPITimeRejectsWhatTheAPINeverSends(t *testing.T) {
	if got := apiTime("2026-05-01T12:00:00Z"); got == nil || !got.Equal(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("apiTime of a valid time = %v", got)
	}
	for _, s := range []string{"", "yesterday", "2026-05-01 12:00:00"} {
		if got := apiTime(s); got != nil {
			t.Errorf("apiTime(%q) = %v, want nil", s, got)
		}
	}
}

func TestResourceAliases(t *testing.T) {
	for arg, kind := range map[string]string{"queries": "JobQuery", "jq": "JobQuery", "JobQueries": "JobQuery",
		"jobs": "DLCJobSnapshot", "djs": "DLCJobSnapshot", "snapshots": "DLCJobSnapshot"} {
		r, err := resourceFor(arg)
		if err != nil || r.kind != kind {
			t.Errorf("resourceFor(%q) = %q, %v; want %q", arg, r.kind, err, kind)
		}
	}
}
