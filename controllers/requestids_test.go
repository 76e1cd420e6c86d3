package controllers

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

func TestRequestIDsNameTheAnswerOfEachJobWithinABound(t *testing.T) {
	var ids *requestIDs
	if got := ids.of("dlc1"); got != "" {
		t.Fatalf("no listing: %q", got)
	}
	ids = &requestIDs{}
	page := func(id string, jobs ...string) *dlc.ListJobsResponse {
		resp := &dlc.ListJobsResponse{RequestID: id}
		for _, j := range jobs {
			resp.Jobs = append(resp.Jobs, dlc.JobItem{JobID: j})
		}
		return resp
	}
	ids.record(page("req-1", "dlc1", "dlc2"))
	ids.record(page("req-2", "dlc2", "dlc3"))
	for job, want := range map[string]string{"dlc1": "req-1", "dlc2": "req-2", "dlc3": "req-2", "dlc9": "req-2"} {
		if got := ids.of(job); got != want {
			t.Errorf("of(%s) = %q, want %q", job, got, want)
		}
	}
	many := make([]string, maxRecordedRequestIDs)
	for i := range many {
		many[i] = fmt.Sprintf("bulk%d", i)
	}
	ids.record(page("req-3", many...))
	ids.record(page("req-4", "dlc1", "late"))
	if len(ids.byJob) != maxRecordedRequestIDs {
		t.Fatalf("recorded %d jobs, bound %d", len(ids.byJob), maxRecordedRequestIDs)
	}
	if ids.of("dlc1") != "req-4" || ids.of("late") != "req-4" {
		t.Fatalf("a known job must follow its latest answer, an unknown one the last answer: %q %q", ids.of("dlc1"), ids.of("late"))
	}
	long := strings.Repeat("R", 300)
	ids.record(page(long, "dlc1"))
	if got := ids.of("dlc1"); len(got) != snapshot.MaxRequestIDBytes {
		t.Fatalf("an oversize RequestId is kept at %d bytes", len(got))
	}
}
