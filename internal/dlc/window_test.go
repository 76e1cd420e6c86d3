package dlc

import (
	"testing"
	"time"
)

func TestEveryWindowIsPinnedOnBothEnds(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	opts := PageOptions{Within: 48 * time.Hour, Now: func() time.Time { return now }}.withDefaults()
	for _, tc := range []struct {
		name               string
		start, end         *string
		wantStart, wantEnd string
	}{
		{"relative", nil, nil, "2026-02-27T12:00:00Z", "2026-03-01T11:59:59Z"},
		// An end 30 days ago without a start: [end − within, end], never the API's now − 7 days.
		{"end only", nil, Ptr("2026-01-30T00:00:00Z"), "2026-01-28T00:00:00Z", "2026-01-30T00:00:00Z"},
		{"start only", Ptr("2026-02-01T00:00:00Z"), nil, "2026-02-01T00:00:00Z", "2026-03-01T11:59:59Z"},
		{"both", Ptr("2026-02-01T00:00:00Z"), Ptr("2026-02-02T00:00:00Z"), "2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z"},
	} {
		got := pinWindow(&ListJobsRequest{StartTime: tc.start, EndTime: tc.end}, opts)
		if deref(got.StartTime) != tc.wantStart || deref(got.EndTime) != tc.wantEnd {
			t.Errorf("%s: window [%s, %s], want [%s, %s]", tc.name, deref(got.StartTime), deref(got.EndTime), tc.wantStart, tc.wantEnd)
		}
	}
}
