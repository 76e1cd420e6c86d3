package dlcsim

import "strings"

// ListJobs ordering, written from the API reference (§2 SortBy, Order) and kept apart from the
// client's own sort (internal/dlc), so that a mistake in one cannot hide behind the same code in
// the other:
//
//   - SortBy is DisplayName, JobType, Status, GmtCreateTime or GmtFinishTime; the default is not
//     documented, dlcsim uses GmtCreateTime (the "presumably" of the reference).
//   - Order is desc (the documented default) or asc.
//   - Text fields compare byte by byte (UTF-8), so "B" < "a" and Latin sorts before Chinese.
//   - Time fields compare by the instant; a job that has not reached the time (no finish time
//     yet) has the smallest value: first ascending, last descending.
//   - Ties are not documented: dlcsim breaks them by JobId in the same direction, so desc is the
//     exact reverse of asc and every page boundary is stable (unless Faults.ShuffleTies says
//     otherwise).

// compareRecords orders a before b (negative), after b (positive) or as a tie (0) by the value of
// sortBy alone, ascending.
func compareRecords(a, b *record, sortBy string) int {
	switch sortBy {
	case "DisplayName":
		return strings.Compare(a.job.DisplayName, b.job.DisplayName)
	case "JobType":
		return strings.Compare(a.job.JobType, b.job.JobType)
	case "Status":
		return strings.Compare(a.job.Status, b.job.Status)
	case "GmtFinishTime":
		return compareTimes(a.times[timeFinish], b.times[timeFinish])
	default:
		return compareTimes(a.times[timeCreate], b.times[timeCreate])
	}
}

// compareRecordsTotal is compareRecords with the JobId tie-break: a total order, ascending.
func compareRecordsTotal(a, b *record, sortBy string) int {
	if c := compareRecords(a, b, sortBy); c != 0 {
		return c
	}
	return strings.Compare(a.job.JobID, b.job.JobID)
}

// compareTimes compares unix seconds; noTime (unset) is the smallest value.
func compareTimes(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Indexes of record.times (see timeFields).
const (
	timeCreate  = 0
	timeRunning = 2
	timeFinish  = 3
)

// numericDuration is the index of Duration in record.numbers (see numericFields).
const numericDuration = 3
