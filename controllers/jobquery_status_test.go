package controllers

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

func TestSetConditionsIsKstatusCompatible(t *testing.T) {
	cases := []struct {
		outcome                     outcome
		ready, reconciling, stalled metav1.ConditionStatus
		reason                      string
	}{
		{outcomeSynced, "True", "False", "False", dlcv1alpha1.ReasonSynced},
		{outcomeRetrying, "False", "True", "False", dlcv1alpha1.ReasonThrottled},
		{outcomeStalled, "False", "False", "True", dlcv1alpha1.ReasonUnauthorized},
		{outcomeSuspended, "False", "False", "False", dlcv1alpha1.ReasonSuspended},
	}
	for _, c := range cases {
		var conds []metav1.Condition
		setConditions(&conds, 3, c.outcome, c.reason, "message")
		for typ, want := range map[string]metav1.ConditionStatus{dlcv1alpha1.ConditionReady: c.ready,
			dlcv1alpha1.ConditionReconciling: c.reconciling, dlcv1alpha1.ConditionStalled: c.stalled} {
			got := meta.FindStatusCondition(conds, typ)
			if got == nil || got.Status != want || got.ObservedGeneration != 3 {
				t.Errorf("outcome %d: %s = %+v, want %s", c.outcome, typ, got, want)
			}
		}
		if readyReason(conds) != c.reason {
			t.Errorf("outcome %d: Ready reason %s, want %s", c.outcome, readyReason(conds), c.reason)
		}
	}
}

func TestConditionsKeepTheirTransitionTimeWithoutATransition(t *testing.T) {
	var conds []metav1.Condition
	setConditions(&conds, 1, outcomeSynced, "", "Keeping 3 matching jobs")
	first := meta.FindStatusCondition(conds, dlcv1alpha1.ConditionReady).LastTransitionTime
	time.Sleep(1100 * time.Millisecond) // condition times have a resolution of one second
	setConditions(&conds, 2, outcomeSynced, "", "Keeping 4 matching jobs")
	if got := meta.FindStatusCondition(conds, dlcv1alpha1.ConditionReady).LastTransitionTime; !got.Equal(&first) {
		t.Fatalf("lastTransitionTime moved from %v to %v without a transition", first, got)
	}
	setConditions(&conds, 2, outcomeRetrying, dlcv1alpha1.ReasonThrottled, "slow down")
	if got := meta.FindStatusCondition(conds, dlcv1alpha1.ConditionReady).LastTransitionTime; got.Equal(&first) {
		t.Fatal("lastTransitionTime did not move on a real transition")
	}
}

func TestRetryDelayBacksOffToACap(t *testing.T) {
	for n, want := range map[int32]time.Duration{0: 5 * time.Second, 1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second,
		8: 10 * time.Minute, 100: 10 * time.Minute} {
		if got := retryDelay(n); got != want {
			t.Errorf("retryDelay(%d) = %v, want %v", n, got, want)
		}
	}
	for n, want := range map[int32]time.Duration{1: time.Second, 2: 2 * time.Second, 6: 32 * time.Second, 7: time.Minute, 100: time.Minute} {
		if got := conflictDelay(n); got != want {
			t.Errorf("conflictDelay(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestCutKeepsValidUTF8WithinTheBound(t *testing.T) {
	long := strings.Repeat("显存不足", 200) // 3-byte runes
	for _, n := range []int{1, 200, 1021} {
		got := cut(long, n)
		if len(got) > n+len("...") || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
			t.Errorf("cut(%d): %d bytes, valid %v", n, len(got), utf8.ValidString(got))
		}
	}
	if got := truncateMessage(long); len(got) > 1024 || !utf8.ValidString(got) {
		t.Errorf("truncateMessage: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if short := strings.Repeat("a", 1024); truncateMessage(short) != short {
		t.Error("a message of 1 KiB was cut")
	}
}

// The skipped jobs' text fits whole in the Ready message after the longest text a Synced message
// puts before it: the next sync finds it there and emits no second JobsSkipped event.
func TestASkippedListAlwaysFitsWholeInTheReadyMessage(t *testing.T) {
	var refused []string
	for i := range 5 {
		refused = append(refused, fmt.Sprintf("dlc%d%s: creating snapshot: %s", i, strings.Repeat("x", 300), strings.Repeat("invalid ", 40)))
	}
	skipped := skippedMessage(1_000_000, refused)
	if len(skipped) > maxSkippedBytes || !utf8.ValidString(skipped) {
		t.Fatalf("the skipped text has %d bytes (at most %d) or is not UTF-8", len(skipped), maxSkippedBytes)
	}
	longest := syncedMessage(10000, 1<<62, true) + pendingMessage(1<<62)
	message := truncateMessage(longest + "; " + skipped)
	if !strings.Contains(message, skipped) {
		t.Errorf("the Ready message (%d bytes) cut the skipped text of %d bytes", len(message), len(skipped))
	}
}

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

// A periodic sync that finds nothing new makes no Kubernetes write at all: no snapshot, no
// event, and not the JobQuery status either; the sync shows in the metric instead.
func TestAPeriodicSyncWithoutChangeWritesNothing(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcquiet", 120, "MPIJob")
	q := queryFor(ns, "quiet", "dlcquiet")
	q.Spec.Interval = metav1.Duration{Duration: 10 * time.Second}
	q = createReady(t, q, dlcv1alpha1.ReasonSynced)
	synced := func() float64 { return testutil.ToFloat64(lastSyncTimestamp.WithLabelValues(ns, "quiet")) }
	firstSync, queryVersion, snapshotVersions := synced(), q.ResourceVersion, resourceVersions(g, ns)
	eventCount := len(events(g, ns))

	NewWithT(t).Eventually(synced).WithTimeout(20*time.Second).WithPolling(200*time.Millisecond).Should(BeNumerically(">", firstSync),
		"the periodic sync ran")
	g.Expect(getQuery(g, ns, "quiet").ResourceVersion).To(Equal(queryVersion), "the JobQuery was written")
	g.Expect(resourceVersions(g, ns)).To(Equal(snapshotVersions))
	g.Expect(events(g, ns)).To(HaveLen(eventCount))
}

func TestConditionReasonsOfFailures(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(ns string, q *dlcv1alpha1.JobQuery)
		reason  string
		stalled bool
	}{
		{"wrong secret", func(ns string, q *dlcv1alpha1.JobQuery) {
			NewWithT(t).Expect(k8s.Create(testCtx, credentialsSecret(ns, "bad", dlcsim.Identity{AccessKeyID: simAdmin.AccessKeyID, AccessKeySecret: "wrong-secret"}))).To(Succeed())
			q.Spec.Credentials.SecretRef.Name = "bad"
		}, dlcv1alpha1.ReasonUnauthorized, true},
		{"unknown key", func(ns string, q *dlcv1alpha1.JobQuery) {
			NewWithT(t).Expect(k8s.Create(testCtx, credentialsSecret(ns, "unknown", dlcsim.Identity{AccessKeyID: "nobody", AccessKeySecret: "x-secret"}))).To(Succeed())
			q.Spec.Credentials.SecretRef.Name = "unknown"
		}, dlcv1alpha1.ReasonUnauthorized, true},
		{"missing secret", func(_ string, q *dlcv1alpha1.JobQuery) { q.Spec.Credentials.SecretRef.Name = "absent" },
			dlcv1alpha1.ReasonSecretNotFound, true},
		{"secret without the keys", func(ns string, q *dlcv1alpha1.JobQuery) {
			NewWithT(t).Expect(k8s.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "empty",
				Labels: map[string]string{dlcv1alpha1.LabelCredentials: "true"}},
				StringData: map[string]string{"other": "x"}})).To(Succeed())
			q.Spec.Credentials.SecretRef.Name = "empty"
		}, dlcv1alpha1.ReasonInvalidSecret, true},
		{"secret without the credentials label", func(ns string, q *dlcv1alpha1.JobQuery) {
			NewWithT(t).Expect(k8s.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"},
				StringData: map[string]string{"accessKeyId": simAdmin.AccessKeyID, "accessKeySecret": simAdmin.AccessKeySecret}})).To(Succeed())
			q.Spec.Credentials.SecretRef.Name = "plain"
		}, dlcv1alpha1.ReasonSecretNotLabelled, true},
		{"endpoint outside the allow-list", func(_ string, q *dlcv1alpha1.JobQuery) { q.Spec.Endpoint = "https://dlc.example.com" },
			dlcv1alpha1.ReasonEndpointNotAllowed, true},
		{"env values outside the reveal namespaces", func(_ string, q *dlcv1alpha1.JobQuery) { q.Spec.Snapshot.IncludeEnvValues = true },
			dlcv1alpha1.ReasonRevealNotAllowed, true},
		{"RAM denial", func(ns string, q *dlcv1alpha1.JobQuery) {
			NewWithT(t).Expect(k8s.Create(testCtx, credentialsSecret(ns, "denied", simDeny))).To(Succeed())
			q.Spec.Credentials.SecretRef.Name = "denied"
		}, dlcv1alpha1.ReasonForbidden, true},
		{"ambient outside the allowed namespaces", func(_ string, q *dlcv1alpha1.JobQuery) {
			q.Spec.Credentials = dlcv1alpha1.Credentials{Ambient: &dlcv1alpha1.AmbientCredentials{}}
		}, dlcv1alpha1.ReasonAmbientCredentialsNotAllowed, true},
		{"unreachable endpoint", func(_ string, q *dlcv1alpha1.JobQuery) { q.Spec.Endpoint = "http://127.0.0.1:1" },
			dlcv1alpha1.ReasonEndpointUnreachable, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := newNamespace(t)
			q := query(ns, "q")
			tc.setup(ns, q)
			g.Expect(k8s.Create(testCtx, q)).To(Succeed())
			q = waitReady(t, ns, "q", tc.reason)
			g.Expect(meta.IsStatusConditionTrue(q.Status.Conditions, dlcv1alpha1.ConditionStalled)).To(Equal(tc.stalled))
			g.Expect(meta.IsStatusConditionTrue(q.Status.Conditions, dlcv1alpha1.ConditionReconciling)).To(Equal(!tc.stalled))
			if tc.stalled && !recheckedWhenStalled(tc.reason) {
				g.Expect(q.Status.NextSyncTime).To(BeNil())
			} else if tc.stalled {
				// Fixed in Alibaba Cloud, where no watch sees it: looked at again later.
				g.Expect(q.Status.NextSyncTime.Sub(q.Status.LastSyncTime.Time)).To(BeNumerically("~", stalledRecheck, time.Second))
			} else {
				g.Expect(q.Status.NextSyncTime).NotTo(BeNil())
			}
			NewWithT(t).Eventually(func(g Gomega) {
				var reasons []string
				for _, e := range events(g, ns) {
					if e.Regarding.Name == "q" {
						reasons = append(reasons, e.Reason)
					}
				}
				g.Expect(reasons).To(ConsistOf(tc.reason))
			}).WithTimeout(10 * time.Second).Should(Succeed())
		})
	}
}

// A skipped list longer than the 1 KiB a condition message keeps is reported once: the next
// syncs, which skip the same jobs, compare it with what the condition could store of it.
func TestASkippedListLongerThanTheConditionIsReportedOnce(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	// Three IDs longer than spec.jobId allows: the apiserver refuses their snapshots, and the
	// message naming them is longer than 1 KiB.
	jobs := []string{jobJSON("dlcskipok", "")}
	for i := range 3 {
		jobs = append(jobs, jobJSON(fmt.Sprintf("dlcskip%d%s", i, strings.Repeat("x", 300)), ""))
	}
	q := query(ns, "skipping")
	q.Spec.Endpoint = fixedAPI(t, func() string {
		return fmt.Sprintf(`{"TotalCount":%d,"RequestId":"r","Jobs":[%s]}`, len(jobs), strings.Join(jobs, ","))
	})
	got := createReady(t, q, dlcv1alpha1.ReasonJobsSkipped)
	g.Expect(meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady).Message).
		To(ContainSubstring("could not write the snapshot of 3 job(s): dlcskip0"))
	// Note: the event recorder turns a repeat of an event into a series on it (count 2 and up)
	// or, once the query's resourceVersion changed, into another Event: the emissions are the
	// sum of both.
	skippedEmissions := func(g Gomega) int32 {
		var n int32
		for _, e := range events(g, ns) {
			if e.Reason != dlcv1alpha1.ReasonJobsSkipped || e.Regarding.Name != "skipping" {
				continue
			}
			if e.Series != nil {
				n += e.Series.Count
			} else {
				n++
			}
		}
		return n
	}
	g.Eventually(skippedEmissions).WithTimeout(10 * time.Second).Should(BeEquivalentTo(1))

	resync(t, ns, "skipping", dlcv1alpha1.ReasonJobsSkipped)
	resync(t, ns, "skipping", dlcv1alpha1.ReasonJobsSkipped)
	g.Consistently(skippedEmissions).WithTimeout(3*time.Second).WithPolling(200*time.Millisecond).
		Should(BeEquivalentTo(1), "JobsSkipped emitted again by syncs that skipped the same jobs")
}

// A query pointed at the wrong region (here: another region's endpoint, a simulator without the
// team's jobs) syncs fine and keeps 0 jobs; its Ready message says what to check, and a Warning
// says it once, not at every sync (issue 25, point 4).
func TestAQueryThatMatchesNoJobSaysWhatToCheck(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	otherRegion := httptest.NewServer(dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{simAdmin}, Seed: 1}).Handler())
	t.Cleanup(otherRegion.Close)
	q := query(ns, "elsewhere")
	q.Spec.RegionID = "cn-beijing"
	q.Spec.Endpoint = otherRegion.URL
	q.Spec.Filter.DisplayName = "dlcnowhere"
	q = createReady(t, q, dlcv1alpha1.ReasonSynced)
	c := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(c.Message).To(ContainSubstring("Keeping 0 matching jobs: the complete listing of region cn-beijing at " + otherRegion.URL))
	g.Expect(c.Message).To(ContainSubstring("spec.regionId"))
	g.Expect(c.Message).To(ContainSubstring("showOwn"))
	resync(t, ns, "elsewhere", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "elsewhere", dlcv1alpha1.ReasonSynced)
	noJobsWarnings := func(g Gomega) {
		var warnings int
		for _, e := range events(g, ns) {
			if e.Reason == "NoJobsMatched" {
				warnings++
				g.Expect(e.Type).To(Equal("Warning"))
			}
		}
		g.Expect(warnings).To(Equal(1))
	}
	NewWithT(t).Eventually(noJobsWarnings).WithTimeout(10 * time.Second).Should(Succeed())
	NewWithT(t).Consistently(noJobsWarnings).WithTimeout(2 * time.Second).Should(Succeed())
}
