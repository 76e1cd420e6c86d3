package dlcsim_test

import (
	"slices"
	"testing"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

// TestListJobsOrderFollowsTheReference checks dlcsim's ordering against orders worked out by hand
// from the API reference (§2: SortBy fields, Order desc by default) and the documented choices of
// docs/dlcsim.md (bytewise text, unset times smallest, ties by JobId in the same direction). The
// expected lists are written out, not computed by either implementation.
func TestListJobsOrderFollowsTheReference(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) string { return ts(now.Add(-d * time.Second)) }
	job := func(id, name, jobType, status, created, finished string) dlcsim.Job {
		return dlcsim.Job{JobItem: dlc.JobItem{JobID: id, DisplayName: name, JobType: jobType, Status: status,
			Accessibility: dlc.AccessibilityPublic, GmtCreateTime: created, GmtFinishTime: finished}}
	}
	e := newRawEnv(t, dlcsim.Options{},
		job("o1", "beta", "TFJob", "Running", at(50), ""),
		job("o2", "Alpha", "PyTorchJob", "Failed", at(40), at(10)),
		job("o3", "alpha", "TFJob", "Succeeded", at(40), at(20)),
		job("o4", "图像", "MPIJob", "Failed", at(60), at(10)),
		job("o5", "", "TFJob", "Queuing", at(30), ""),
	)
	cases := []struct {
		sortBy, order string // "" = not sent
		want          []string
	}{
		{"", "", []string{"o5", "o3", "o2", "o1", "o4"}},    // GmtCreateTime desc; o2/o3 tie, JobId desc
		{"", "asc", []string{"o4", "o1", "o2", "o3", "o5"}}, // GmtCreateTime asc
		{"GmtCreateTime", "desc", []string{"o5", "o3", "o2", "o1", "o4"}},
		{"DisplayName", "asc", []string{"o5", "o2", "o3", "o1", "o4"}}, // "" < "Alpha" < "alpha" < "beta" < "图像"
		{"DisplayName", "desc", []string{"o4", "o1", "o3", "o2", "o5"}},
		{"JobType", "asc", []string{"o4", "o2", "o1", "o3", "o5"}}, // MPIJob < PyTorchJob < TFJob (o1, o3, o5)
		{"JobType", "desc", []string{"o5", "o3", "o1", "o2", "o4"}},
		{"Status", "asc", []string{"o2", "o4", "o5", "o1", "o3"}}, // Failed (o2, o4) < Queuing < Running < Succeeded
		{"Status", "desc", []string{"o3", "o1", "o5", "o4", "o2"}},
		{"GmtFinishTime", "asc", []string{"o1", "o5", "o3", "o2", "o4"}}, // unset (o1, o5) first, then -20 s, then -10 s (o2, o4)
		{"GmtFinishTime", "desc", []string{"o4", "o2", "o3", "o5", "o1"}},
	}
	for _, tc := range cases {
		t.Run(tc.sortBy+"-"+tc.order, func(t *testing.T) {
			req := dlc.ListJobsRequest{PageSize: dlc.Ptr(int32(10))}
			if tc.sortBy != "" {
				req.SortBy = dlc.Ptr(tc.sortBy)
			}
			if tc.order != "" {
				req.Order = dlc.Ptr(tc.order)
			}
			if got := pageIDs(e.page(t, req)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			// Pages of two cut the same order.
			var paged []string
			for p := int32(1); p <= 3; p++ {
				req.PageSize, req.PageNumber = dlc.Ptr(int32(2)), dlc.Ptr(p)
				paged = append(paged, pageIDs(e.page(t, req))...)
			}
			if !slices.Equal(paged, tc.want) {
				t.Fatalf("paged: %v, want %v", paged, tc.want)
			}
		})
	}
}
