package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// testStatusRefresh is the suite manager's Options.StatusRefreshInterval.
const testStatusRefresh = 20 * time.Second

func TestStatusWriteRefreshesQuietQueriesAtMostOncePerRefresh(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1000, 0))
	at := func(d time.Duration) *metav1.Time { v := metav1.NewTime(t0.Add(d)); return &v }
	written := dlcv1alpha1.JobQueryStatus{Snapshots: 3, LastSyncTime: &t0, LastSuccessfulSyncTime: &t0, NextSyncTime: at(time.Minute),
		LastSyncStats: &dlcv1alpha1.SyncStats{APICalls: 2, Created: 3, Mode: dlcv1alpha1.SyncModeFull}}
	setConditions(&written.Conditions, 1, outcomeSynced, "", "Keeping 3 matching jobs")
	quiet := func(after time.Duration) *dlcv1alpha1.JobQueryStatus {
		s := written.DeepCopy()
		s.LastSyncTime, s.LastSuccessfulSyncTime, s.NextSyncTime = at(after), at(after), at(after+time.Minute)
		s.LastSyncStats = &dlcv1alpha1.SyncStats{APICalls: 1, Unchanged: 3, Mode: dlcv1alpha1.SyncModeIncremental}
		return s
	}
	const refresh = 5 * time.Minute
	cases := []struct {
		name  string
		after *dlcv1alpha1.JobQueryStatus
		want  string
	}{
		{"nothing at all changed", written.DeepCopy(), ""},
		{"a quiet sync a minute later", quiet(time.Minute), ""},
		{"a quiet sync just before the refresh", quiet(refresh - time.Second), ""},
		{"a quiet sync at the refresh", quiet(refresh), statusWriteFreshness},
		{"a quiet sync long after", quiet(3 * time.Hour), statusWriteFreshness},
		{"a change a second later", func() *dlcv1alpha1.JobQueryStatus { s := quiet(time.Second); s.Snapshots = 4; return s }(), statusWriteChange},
		{"a failure a second later", func() *dlcv1alpha1.JobQueryStatus {
			s := quiet(time.Second)
			s.ConsecutiveFailures = 1
			return s
		}(), statusWriteChange},
	}
	for _, c := range cases {
		if got := statusWrite(&written, c.after, refresh); got != c.want {
			t.Errorf("%s: statusWrite = %q, want %q", c.name, got, c.want)
		}
	}
	// A status that holds no sync time yet gets one at once.
	never := written.DeepCopy()
	never.LastSyncTime, never.LastSuccessfulSyncTime, never.LastSyncStats = nil, nil, nil
	if got := statusWrite(never, quiet(time.Second), refresh); got != statusWriteFreshness {
		t.Errorf("a first sync: statusWrite = %q", got)
	}
}

func TestStatusRefreshIsTheLongerOfIntervalAndTheOption(t *testing.T) {
	q := &dlcv1alpha1.JobQuery{}
	for _, c := range []struct{ option, interval, want time.Duration }{
		{0, time.Minute, DefaultStatusRefreshInterval},
		{0, time.Hour, 54 * time.Minute}, // every sync of a jittered hourly interval refreshes
		{20 * time.Second, 10 * time.Second, 20 * time.Second},
		{20 * time.Second, time.Minute, 54 * time.Second},
		{5 * time.Minute, 5 * time.Minute, 5 * time.Minute},
	} {
		q.Spec.Interval.Duration = c.interval
		if got := (&JobQueryReconciler{StatusRefreshInterval: c.option}).statusRefresh(q); got != c.want {
			t.Errorf("option %v interval %v: %v, want %v", c.option, c.interval, got, c.want)
		}
	}
}

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

// A query whose syncs find nothing new writes no snapshot and no event, and writes its own
// status only to keep its freshness readable: once lastSyncTime is testStatusRefresh old, with
// the stats of that very sync. A query whose syncs then fail keeps its last success, which is
// what makes it look stuck.
func TestAQuietQueryShowsItsFreshnessWithoutSnapshotWrites(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcfresh", 120, "ElasticBatchJob")
	for _, id := range ids {
		g.Expect(sim.Patch(id, func(j *dlcsim.Job) { j.Status = dlc.StatusSucceeded })).To(BeTrue())
	}
	q := query(ns, "fresh")
	q.Spec.Filter.DisplayName, q.Spec.Filter.JobType, q.Spec.Filter.ShowOwn = "dlcfresh", "ElasticBatchJob", dlc.Ptr(true)
	q.Spec.Interval = metav1.Duration{Duration: 10 * time.Second}
	q = createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Created).To(Equal(int32(120)))
	first, firstVersion := q.Status.LastSyncTime.Time, q.ResourceVersion
	snapshotVersions, eventCount := resourceVersions(g, ns), len(events(g, ns))
	for _, s := range snapshots(g, ns) {
		g.Expect(s.Status.RequestID).NotTo(BeEmpty(), "the snapshot names the answer it was written from")
		g.Expect(s.Status.Username).To(Equal("admin"))
		g.Expect(s.Status.UserID).To(Equal("1001"))
		g.Expect(s.Labels).To(HaveKeyWithValue(dlcv1alpha1.LabelUser, "admin"))
	}

	// Count every version of the JobQuery while quiet syncs run.
	versions := map[string]bool{firstVersion: true}
	var refreshed *dlcv1alpha1.JobQuery
	NewWithT(t).Eventually(func(g Gomega) {
		cur := getQuery(g, ns, "fresh")
		versions[cur.ResourceVersion] = true
		g.Expect(cur.Status.LastSyncTime.Time).To(BeTemporally(">", first))
		refreshed = cur
	}).WithTimeout(3 * testStatusRefresh).WithPolling(100 * time.Millisecond).Should(Succeed())

	st := refreshed.Status
	g.Expect(versions).To(HaveLen(2), "one JobQuery write for freshness, none per quiet sync")
	g.Expect(st.LastSyncTime.Sub(first)).To(BeNumerically(">=", testStatusRefresh))
	g.Expect(st.LastSuccessfulSyncTime.Time).To(Equal(st.LastSyncTime.Time))
	g.Expect(st.NextSyncTime.Time).To(BeTemporally(">", st.LastSyncTime.Time))
	// The stats are those of the sync that started at lastSyncTime, not of the first one.
	g.Expect(st.LastSyncStats.Mode).To(Equal(dlcv1alpha1.SyncModeIncremental))
	g.Expect([]int32{st.LastSyncStats.Created, st.LastSyncStats.Updated, st.LastSyncStats.Unchanged}).To(Equal([]int32{0, 0, 120}))
	g.Expect(resourceVersions(g, ns)).To(Equal(snapshotVersions), "a quiet sync wrote a snapshot")
	g.Expect(events(g, ns)).To(HaveLen(eventCount))

	// Syncs fail from now on: attempts go on, the last success stays where it was.
	fail := make([]int, 1000)
	for i := range fail {
		fail[i] = i + 1
	}
	sim.SetFaults(dlcsim.Faults{FailRequests: fail, FailCode: "InternalError", FailStatus: 500})
	defer sim.SetFaults(dlcsim.Faults{})
	stuck := resync(t, ns, "fresh", dlcv1alpha1.ReasonServerError)
	g.Expect(stuck.Status.LastSuccessfulSyncTime.Time).To(Equal(st.LastSuccessfulSyncTime.Time))
	g.Expect(stuck.Status.ConsecutiveFailures).To(BeNumerically(">=", 1), "the failed attempt is written")
	g.Expect(stuck.Status.LastSyncTime.Time).To(BeTemporally(">=", st.LastSyncTime.Time))
	g.Expect(meta.IsStatusConditionFalse(stuck.Status.Conditions, dlcv1alpha1.ConditionReady)).To(BeTrue())
}
