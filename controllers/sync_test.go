package controllers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlc/dlcfake"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// Two namespaces use one credential (one AccessKey, or the operator's ambient role) whose RAM
// policy covers one workspace only. A tenant that filters on another workspace opens the breaker
// for itself, never for the other tenant, which goes on syncing (issue 23, finding 9).
func TestOneTenantsRefusalsDoNotOpenAnothersBreaker(t *testing.T) {
	g := NewWithT(t)
	outside, inside := newNamespace(t), newNamespace(t)
	for _, ns := range []string{outside, inside} {
		g.Expect(k8s.Create(testCtx, testenv.CredentialsSecret(ns, "scoped", simScoped.AccessKeyID, simScoped.AccessKeySecret))).To(Succeed())
	}
	addJobs("dlcscoped", 2, "PyTorchJob")
	for ns, workspace := range map[string]string{outside: "999", inside: "268"} {
		q := query(ns, "team")
		q.Spec.Credentials.SecretRef.Name = "scoped"
		q.Spec.Filter.DisplayName, q.Spec.Filter.WorkspaceID = "dlcscoped", workspace
		g.Expect(k8s.Create(testCtx, q)).To(Succeed())
	}
	waitReady(t, outside, "team", dlcv1alpha1.ReasonForbidden)
	resync(t, outside, "team", dlcv1alpha1.ReasonForbidden)
	resync(t, outside, "team", dlcv1alpha1.ReasonForbidden)
	resync(t, outside, "team", dlcv1alpha1.ReasonCircuitOpen)

	waitReady(t, inside, "team", dlcv1alpha1.ReasonSynced)
	q := resync(t, inside, "team", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.Snapshots).To(Equal(int32(2)))
}

// hangingLister answers only when the caller gives up, as an endpoint that accepts the
// connection and never replies.
type hangingLister struct{ calls int }

func (h *hangingLister) ListJobs(ctx context.Context, _ *dlc.ListJobsRequest) (*dlc.ListJobsResponse, error) {
	h.calls++
	<-ctx.Done()
	return nil, ctx.Err()
}

// A sync whose endpoint never answers ends at its deadline, says so, and is retried later:
// it does not hold a sync worker for as long as the endpoint likes.
func TestASyncEndsAtItsDeadline(t *testing.T) {
	g := NewWithT(t)
	q, c := fakeCluster("slow")
	lister := &hangingLister{}
	r := &JobQueryReconciler{Client: c, APIReader: c, Recorder: clientevents.NewFakeRecorder(10), Listers: fixedListers{lister},
		Endpoints: loopbackPolicy(t), SyncTimeout: 200 * time.Millisecond}

	start := time.Now()
	result, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(q)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	g.Expect(lister.calls).To(Equal(1))
	g.Expect(result.RequeueAfter).To(Equal(retryDelay(1)))
	got := &dlcv1alpha1.JobQuery{}
	g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(q), got)).To(Succeed())
	g.Expect(readyReason(got.Status.Conditions)).To(Equal(dlcv1alpha1.ReasonSyncTimeout))
	g.Expect(isStalled(got.Status.Conditions)).To(BeFalse())
}

// Every lie the simulator can tell about a listing, through the real manager: the query says what
// is wrong, and no snapshot is written, deleted or misstated.
func TestHostileAnswersChangeNoSnapshot(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	// 250 jobs in groups of 30 created in the same second, so that ties straddle page boundaries.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	jobs := make([]dlcsim.Job, 250)
	for i := range jobs {
		jobs[i] = dlcsim.Job{JobItem: dlc.JobItem{JobID: fmt.Sprintf("dlchostile%03d", i), DisplayName: "dlchostile", JobType: "TFJob",
			Status: dlc.StatusRunning, WorkspaceID: "268", UserID: "1001", Username: "admin",
			GmtCreateTime: dlc.FormatTime(base.Add(-time.Duration(i/30) * time.Minute))}}
	}
	sim.Upsert(jobs...)
	defer sim.SetFaults(dlcsim.Faults{})
	q := queryFor(ns, "hostile", "dlchostile")
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) { g.Expect(snapshots(g, ns)).To(HaveLen(250)) }).WithTimeout(20 * time.Second).Should(Succeed())
	before := resourceVersions(g, ns)

	for _, tc := range []struct {
		name   string
		faults dlcsim.Faults
		reason string
	}{
		{"TotalCount 0", dlcsim.Faults{TotalCount: "zero"}, dlcv1alpha1.ReasonInconsistentListing},
		{"TotalCount omitted", dlcsim.Faults{TotalCount: "omit"}, dlcv1alpha1.ReasonInconsistentListing},
		{"TotalCount negative", dlcsim.Faults{TotalCount: "negative"}, dlcv1alpha1.ReasonInconsistentListing},
		{"TotalCount too small", dlcsim.Faults{TotalCount: "less", TotalCountBy: 100}, dlcv1alpha1.ReasonInconsistentListing},
		{"TotalCount too large", dlcsim.Faults{TotalCount: "more", TotalCountBy: 1}, dlcv1alpha1.ReasonInconsistentListing},
		{"pages larger than asked", dlcsim.Faults{OversizePage: 5}, dlcv1alpha1.ReasonBadResponse},
		{"a 20 MiB body", dlcsim.Faults{PadMB: 20}, dlcv1alpha1.ReasonBadResponse},
		{"200,000 jobs on a page", dlcsim.Faults{TinyJobs: 200000}, dlcv1alpha1.ReasonBadResponse},
		// Slow pages: the sync takes longer and is exact.
		{"every page 300 ms late", dlcsim.Faults{PageDelay: dlcsim.Duration(300 * time.Millisecond)}, dlcv1alpha1.ReasonSynced},
		// Ties ordered differently on every request: the walk re-reads the straddling seconds
		// and the listing is exact.
		{"ties in a new order on every request", dlcsim.Faults{ShuffleTies: true}, dlcv1alpha1.ReasonSynced},
	} {
		sim.SetFaults(tc.faults)
		got := resync(t, ns, "hostile", tc.reason)
		g.Expect(resourceVersions(g, ns)).To(Equal(before), tc.name)
		if tc.reason != dlcv1alpha1.ReasonSynced {
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, dlcv1alpha1.ConditionReconciling)).To(BeTrue(), tc.name)
		}
		t.Logf("%s: %s", tc.name, meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady).Message)
	}
	sim.SetFaults(dlcsim.Faults{})
	resync(t, ns, "hostile", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "hostile", dlcv1alpha1.ReasonSynced)
	g.Expect(resourceVersions(g, ns)).To(Equal(before))
}

func TestInjectedAPIFailuresSetTheirReasonAndKeepSnapshots(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcpartial", 450, "XGBoostJob")
	q := queryFor(ns, "partial", "dlcpartial")
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	before := resourceVersions(g, ns)
	g.Expect(before).To(HaveLen(450))

	// Page 3 of 5 fails on every attempt, and the jobs of pages 1-2 changed meanwhile: nothing
	// may be written, nothing pruned.
	for _, j := range sim.Jobs() {
		if len(j.JobID) > 10 && j.JobID[:10] == "dlcpartial" {
			sim.Patch(j.JobID, func(j *dlcsim.Job) { j.Status = dlc.StatusSucceeded })
		}
	}
	fail := make([]int, 0, 60)
	for i := 3; i < 60; i++ {
		fail = append(fail, i)
	}
	sim.SetFaults(dlcsim.Faults{FailRequests: fail, FailCode: "ServiceUnavailable"})
	q = resync(t, ns, "partial", dlcv1alpha1.ReasonServerError)
	g.Expect(resourceVersions(g, ns)).To(Equal(before))
	g.Expect(meta.IsStatusConditionTrue(q.Status.Conditions, dlcv1alpha1.ConditionReconciling)).To(BeTrue())
	g.Expect(q.Status.ConsecutiveFailures).To(Equal(int32(1)))

	sim.SetFaults(dlcsim.Faults{FailRequests: []int{1, 2, 3}, FailCode: "Throttling.User", FailStatus: 400})
	resync(t, ns, "partial", dlcv1alpha1.ReasonThrottled)
	g.Expect(resourceVersions(g, ns)).To(Equal(before))

	sim.SetFaults(dlcsim.Faults{FailRequests: []int{1}, FailCode: "InvalidParameter", FailStatus: 400})
	q = resync(t, ns, "partial", dlcv1alpha1.ReasonInvalidFilter)
	g.Expect(meta.IsStatusConditionTrue(q.Status.Conditions, dlcv1alpha1.ConditionStalled)).To(BeTrue())

	sim.SetFaults(dlcsim.Faults{Mutate: &dlcsim.Mutation{AfterPage: 1, Delete: 1, Times: 100}})
	resync(t, ns, "partial", dlcv1alpha1.ReasonInconsistentListing)
	g.Expect(resourceVersions(g, ns)).To(HaveLen(450), "an inconsistent listing must not prune")

	sim.SetFaults(dlcsim.Faults{})
	q = resync(t, ns, "partial", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.ConsecutiveFailures).To(BeZero())
	g.Expect(snapshots(g, ns)).To(HaveLen(450), "one listing without the three deleted jobs is not enough to prune")
	resync(t, ns, "partial", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveLen(450-3), "the three jobs deleted by the mutation are pruned by the second listing")
}

func TestMaxJobsKeepsTheNewestAndSaysSo(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcmax", 30, "PyTorchJob")
	q := queryFor(ns, "max", "dlcmax")
	q.Spec.MaxJobs = 10
	q = createReady(t, q, dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.Truncated).To(BeTrue())
	g.Expect(q.Status.MatchedJobs).To(Equal(int64(30)))
	snaps := snapshots(g, ns)
	g.Expect(snaps).To(HaveLen(10))
	for _, id := range ids[:10] { // addJobs creates job i at now-(i+1)m: the first ten are newest
		g.Expect(snaps).To(HaveKey(id))
	}
	NewWithT(t).Eventually(func(g Gomega) {
		found := false
		for _, e := range events(g, ns) {
			found = found || (e.Regarding.Name == "max" && e.Reason == "Truncated")
		}
		g.Expect(found).To(BeTrue())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

func TestRepeatedAuthFailuresOpenTheCircuitBreaker(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	// Note: a key of its own, so that the requests of other tests' queries (the simulator is
	// shared) are not counted below.
	breakerKey := "breaker-" + ns
	g.Expect(k8s.Create(testCtx, credentialsSecret(ns, "breaker", dlcsim.Identity{AccessKeyID: breakerKey,
		AccessKeySecret: "breaker-wrong-secret"}))).To(Succeed())
	q := query(ns, "b")
	q.Spec.Credentials.SecretRef.Name = "breaker"
	createReady(t, q, dlcv1alpha1.ReasonUnauthorized)
	resync(t, ns, "b", dlcv1alpha1.ReasonUnauthorized)
	resync(t, ns, "b", dlcv1alpha1.ReasonUnauthorized)
	before := sim.Stats().ByAccessKey[breakerKey]
	g.Expect(before).To(BeNumerically(">", 0))
	q = resync(t, ns, "b", dlcv1alpha1.ReasonCircuitOpen)
	g.Expect(sim.Stats().ByAccessKey[breakerKey]).To(Equal(before), "an open breaker sends nothing")
	g.Expect(meta.IsStatusConditionTrue(q.Status.Conditions, dlcv1alpha1.ConditionReconciling)).To(BeTrue())
}

// During a throttling storm the query backs off: a failed sync is retried after 5 s, then 10 s,
// so the API sees a bounded number of calls, and the snapshots stay as they were.
func TestAThrottlingStormIsMetWithBackoff(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcstorm", 30, "TFJob")
	q := queryFor(ns, "storm", "dlcstorm")
	q.Spec.Interval = metav1.Duration{Duration: 10 * time.Second}
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	before := resourceVersions(g, ns)

	fail := make([]int, 1000)
	for i := range fail {
		fail[i] = i + 1
	}
	sim.SetFaults(dlcsim.Faults{FailRequests: fail, FailCode: "Throttling.User", FailStatus: 400})
	defer sim.SetFaults(dlcsim.Faults{})
	// A sync fails; then retries follow after 5 s and 10 s more, whatever the 10 s interval
	// says. (The simulator is shared, so the query's own syncs are counted.)
	resync(t, ns, "storm", dlcv1alpha1.ReasonThrottled)
	time.Sleep(12 * time.Second)
	q = getQuery(g, ns, "storm")
	g.Expect(q.Status.ConsecutiveFailures).To(Equal(int32(2)), "syncs in the first 12 s of the storm")
	g.Expect(q.Status.LastSyncStats.APICalls).To(BeNumerically("<=", 2), "calls per failed sync (the client's attempts)")
	g.Expect(q.Status.NextSyncTime.Sub(q.Status.LastSyncTime.Time)).To(BeNumerically("~", 10*time.Second, time.Second))
	g.Expect(resourceVersions(g, ns)).To(Equal(before))
}

func TestOnlyTheSyncTimesChangingIsNotWorthAWrite(t *testing.T) {
	t1, t2 := metav1.NewTime(time.Unix(100, 0)), metav1.NewTime(time.Unix(200, 0))
	before := dlcv1alpha1.JobQueryStatus{Snapshots: 3, LastSyncTime: &t1, NextSyncTime: &t1,
		LastSyncStats: &dlcv1alpha1.SyncStats{APICalls: 1, Unchanged: 3}}
	setConditions(&before.Conditions, 1, outcomeSynced, "", "Keeping 3 matching jobs")
	after := before.DeepCopy()
	after.LastSyncTime, after.LastSuccessfulSyncTime, after.NextSyncTime = &t2, &t2, &t2
	after.LastSyncStats = &dlcv1alpha1.SyncStats{APICalls: 2, Unchanged: 3, Mode: dlcv1alpha1.SyncModeIncremental}
	if !onlySyncTimesChanged(&before, after) {
		t.Error("a sync that changed only times and stats must not write")
	}
	for name, change := range map[string]func(*dlcv1alpha1.JobQueryStatus){
		"snapshots": func(s *dlcv1alpha1.JobQueryStatus) { s.Snapshots = 4 },
		"counts":    func(s *dlcv1alpha1.JobQueryStatus) { s.JobStatusCounts = map[string]int32{"Running": 1} },
		"condition": func(s *dlcv1alpha1.JobQueryStatus) {
			setConditions(&s.Conditions, 1, outcomeRetrying, dlcv1alpha1.ReasonThrottled, "slow down")
		},
		"failures": func(s *dlcv1alpha1.JobQueryStatus) { s.ConsecutiveFailures = 1 },
	} {
		changed := after.DeepCopy()
		change(changed)
		if onlySyncTimesChanged(&before, changed) {
			t.Errorf("a change of %s must be written", name)
		}
	}
}

// The listing phase after a restart: a restored state the snapshots agree with lists
// incrementally and keeps its pending prunes; one they disagree with lists in full and is
// forgotten whole, its pending prunes too, so that a stale absence never counts as the first of
// the two listings a prune needs.
func TestTheListingPhaseForgetsARestoredStateTheSnapshotsDisagreeWith(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	created := dlc.FormatTime(now.Add(-2 * time.Hour))
	var known []dlc.KnownJob
	var jobs []dlc.JobItem
	for i := range 300 {
		status := dlc.StatusSucceeded
		if i == 0 {
			status = dlc.StatusRunning
		}
		id := fmt.Sprintf("dlc%04d", i)
		known = append(known, dlc.KnownJob{JobID: id, GmtCreateTime: created, Status: status})
		jobs = append(jobs, dlc.JobItem{JobID: id, GmtCreateTime: created, Status: status})
	}
	owned := func(known []dlc.KnownJob) map[string]*dlcv1alpha1.DLCJobSnapshot {
		out := map[string]*dlcv1alpha1.DLCJobSnapshot{}
		for _, k := range known {
			at, _ := time.Parse(dlc.TimeLayout, k.GmtCreateTime)
			s := &dlcv1alpha1.DLCJobSnapshot{Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: k.JobID}}
			s.Status.Matching, s.Status.Phase, s.Status.CreatedAt = true, k.Status, &metav1.Time{Time: at}
			out[snapshot.Name(k.JobID)] = s
		}
		return out
	}
	// The running job finished while no process watched.
	finished := slices.Clone(known)
	finished[0].Status = dlc.StatusSucceeded

	for name, tc := range map[string]struct {
		snapshots   []dlc.KnownJob
		mode        string
		keepsPrunes bool
	}{
		"agreeing":    {snapshots: known, mode: dlcv1alpha1.SyncModeIncremental, keepsPrunes: true},
		"disagreeing": {snapshots: finished, mode: dlcv1alpha1.SyncModeFull},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			q := incrementalQuery(now.Add(-time.Minute), known)
			q.Status.Snapshots = int32(len(known))
			state := &queryState{}
			restoreState(state, q, now)
			r := &JobQueryReconciler{Listers: fixedListers{&dlcfake.Lister{Jobs: jobs}}, Now: func() time.Time { return now }}
			l, err := r.list(context.Background(), &syncScope{query: q, state: state, started: now, owned: owned(tc.snapshots)})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(l.mode).To(Equal(tc.mode))
			if tc.keepsPrunes {
				g.Expect(state.absent).To(HaveKey("dlcgone"))
				g.Expect(state.restored).NotTo(BeNil())
			} else {
				g.Expect(state.absent).To(BeEmpty(), "a pending prune of a stale state counted as the first absence")
				g.Expect(state.restored).To(BeNil())
				g.Expect(state.lastFull.IsZero()).To(BeTrue())
			}
		})
	}
}

// An allowed endpoint that answers with a redirect does not move the signed requests elsewhere:
// the host it names receives nothing, and the condition says why the sync failed.
func TestARedirectFromAnAllowedEndpointIsNotFollowed(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	elsewhere, hits := recordingServer(t)
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirecting.Close)
	q := query(ns, "redirected")
	q.Spec.Endpoint = redirecting.URL
	got := createReady(t, q, dlcv1alpha1.ReasonBadResponse)
	g.Expect(hits.Load()).To(BeZero(), "the redirect was followed with the query's credentials")
	ready := meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(ready.Message).To(ContainSubstring("the endpoint redirected to " + elsewhere.URL + "; dlcsync follows no redirects"))
	g.Expect(snapshots(g, ns)).To(BeEmpty())
}
