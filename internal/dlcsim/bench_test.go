package dlcsim

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// benchQuery is a ListJobs with three filters and a page of 100 over the last 30 days.
func benchQuery(b *testing.B, now time.Time) *listQuery {
	v := url.Values{}
	v.Set("JobType", "PyTorchJob")
	v.Set("Status", "Succeeded")
	v.Set("NumericRangeField", "RequestGPU")
	v.Set("NumericRangeMin", "1")
	v.Set("StartTime", dlc.FormatTime(now.Add(-31*24*time.Hour)))
	v.Set("PageSize", "100")
	v.Set("PageNumber", "3")
	v.Set("ShowOwn", "false")
	q, err := parseListQuery(v, now, true)
	if err != nil {
		b.Fatal(err)
	}
	return q
}

// BenchmarkListJobs100k compares the simulator's ListJobs (a scan in a prebuilt sort order) with
// the naive approach (filter everything, then sort the matches) on 100,000 jobs.
func BenchmarkListJobs100k(b *testing.B) {
	now := time.Now()
	s := New(Options{Seed: 1})
	s.Generate(100000)
	q := benchQuery(b, now)
	who := caller{userID: "u0", admin: true}
	s.store.ensureIndexes()

	b.Run("indexed-scan", func(b *testing.B) {
		b.ReportAllocs()
		var total int64
		for b.Loop() {
			_, total = s.store.list(q, who)
		}
		b.ReportMetric(float64(total), "matches")
	})
	b.Run("baseline-filter-then-sort", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.store.mu.RLock()
			var matches []*record
			for _, r := range s.store.byID {
				if r.matches(q, who) {
					matches = append(matches, r)
				}
			}
			s.store.mu.RUnlock()
			slices.SortFunc(matches, func(a, b *record) int {
				if c := strings.Compare(b.job.GmtCreateTime, a.job.GmtCreateTime); c != 0 {
					return c
				}
				return strings.Compare(b.job.JobID, a.job.JobID)
			})
			_ = matches[min(200, len(matches)):min(300, len(matches))]
		}
	})
}
