package snapshot

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// A job's Duration is mirrored once the job has ended; while it runs (any phase that is not
// terminal) it is left out, so a Duration that grows from call to call changes neither the
// snapshot nor its hash.
func TestDurationIsMirroredOnlyOnceTheJobHasEnded(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   bool
	}{
		{dlc.StatusRunning, false}, {dlc.StatusRestarting, false}, {dlc.StatusQueuing, false},
		{dlc.StatusSucceededReserving, false}, {dlc.StatusSucceeded, true}, {dlc.StatusFailed, true}, {dlc.StatusStopped, true},
	} {
		hashes := map[string]bool{}
		for _, d := range []int64{60, 61, 3600} {
			job := &dlc.JobItem{JobID: "dlcduration", Status: tc.status, Duration: dlc.Ptr(d), GmtRunningTime: "2026-01-02T03:04:05Z"}
			out, err := ConvertJob(job, Options{})
			if err != nil {
				t.Fatal(err)
			}
			st := Status(out, Hash(out), nil, metav1.Now())
			switch {
			case tc.want && (out.Duration == nil || *out.Duration != d || st.Duration != d):
				t.Errorf("%s: duration %d not mirrored: job %v, status %d", tc.status, d, out.Duration, st.Duration)
			case !tc.want && (out.Duration != nil || st.Duration != 0):
				t.Errorf("%s: duration %d mirrored while the job runs: job %v, status %d", tc.status, d, out.Duration, st.Duration)
			}
			if out.GmtRunningTime != job.GmtRunningTime {
				t.Errorf("%s: gmtRunningTime %q, want %q", tc.status, out.GmtRunningTime, job.GmtRunningTime)
			}
			hashes[Hash(out)] = true
		}
		if n := len(hashes); tc.want && n != 3 || !tc.want && n != 1 {
			t.Errorf("%s: %d distinct hashes for 3 durations", tc.status, n)
		}
	}
}
