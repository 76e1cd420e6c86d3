package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlc/dlcfake"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// A job whose held data does not restore (dlc.ErrUnpack: its packed JSON is another job's) is
// skipped and named, as a job the apiserver refuses is; the other jobs of the sync are mirrored.
func TestAJobWhoseHeldDataDoesNotRestoreIsSkippedAndTheOthersMirrored(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q, c := fakeCluster("unpack")
	created := dlc.FormatTime(time.Now().Add(-time.Hour))
	var jobs []dlc.JobItem
	for i := range 3 {
		jobs = append(jobs, dlc.JobItem{JobID: fmt.Sprintf("dlcunpack%d", i), GmtCreateTime: created, Status: dlc.StatusRunning})
	}
	lister := &dlcfake.Lister{Jobs: jobs, JSON: func(job *dlc.JobItem) []byte {
		if job.JobID == "dlcunpack1" {
			return []byte(`{"JobId":"dlcunpack0","Status":"Running"}`)
		}
		data, err := json.Marshal(job)
		g.Expect(err).NotTo(HaveOccurred())
		return data
	}}
	r := &JobQueryReconciler{Client: c, APIReader: c, Recorder: clientevents.NewFakeRecorder(10), Listers: fixedListers{lister},
		Endpoints: loopbackPolicy(t)}
	_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(q)})
	g.Expect(err).NotTo(HaveOccurred())

	got := &dlcv1alpha1.JobQuery{}
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(q), got)).To(Succeed())
	ready := meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Reason).To(Equal(dlcv1alpha1.ReasonJobsSkipped))
	g.Expect(ready.Message).To(ContainSubstring("dlcunpack1: " + dlc.ErrUnpack.Error()))
	var list dlcv1alpha1.DLCJobSnapshotList
	g.Expect(c.List(ctx, &list, client.InNamespace("team"))).To(Succeed())
	var mirrored []string
	for _, s := range list.Items {
		mirrored = append(mirrored, s.Spec.JobID)
	}
	g.Expect(mirrored).To(ConsistOf("dlcunpack0", "dlcunpack2"))
	g.Expect(got.Status.Snapshots).To(BeEquivalentTo(2))
}

// A running job whose Duration the API reports live (growing at every call) costs no write per
// sync: its snapshot is written once, then left alone while it runs; when the job ends, one
// write brings its final Duration.
func TestARunningJobsGrowingDurationCostsNoWritePerSync(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlclive", 2, "PyTorchJob")
	running, done := ids[0], ids[1]
	started := dlc.FormatTime(time.Now().Add(-10 * time.Minute))
	sim.Patch(running, func(j *dlcsim.Job) { j.GmtRunningTime = started })
	sim.Patch(done, func(j *dlcsim.Job) {
		j.Status, j.GmtRunningTime, j.GmtFinishTime, j.Duration = dlc.StatusSucceeded, started, dlc.FormatTime(time.Now()), dlc.Ptr(int64(243))
	})
	sim.SetFaults(dlcsim.Faults{LiveDuration: true})
	defer sim.SetFaults(dlcsim.Faults{})
	writes := func() float64 {
		total := 0.0
		for _, op := range []string{"create", "patch", "delete"} {
			total += testutil.ToFloat64(snapshotWritesTotal.WithLabelValues(op))
		}
		return total
	}

	q := queryFor(ns, "live", "dlclive")
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	snaps := snapshots(g, ns)
	g.Expect(snaps).To(HaveLen(2))
	g.Expect(snaps[snapshot.Name(running)].Status.Duration).To(BeZero(), "a running job's duration is not mirrored")
	g.Expect(snaps[snapshot.Name(running)].Status.Job.GmtRunningTime).To(Equal(started))
	g.Expect(snaps[snapshot.Name(done)].Status.Duration).To(Equal(int64(243)))

	before := writes()
	for range 3 {
		// Durations count seconds: each sync sees the running job's grow.
		time.Sleep(1100 * time.Millisecond)
		q = resync(t, ns, "live", dlcv1alpha1.ReasonSynced)
		g.Expect(q.Status.LastSyncStats.Unchanged).To(Equal(int32(2)))
	}
	g.Expect(writes()-before).To(BeZero(), "a running job's growing duration was written")

	// The job ends: one write brings its phase label, phase and final duration.
	sim.Patch(running, func(j *dlcsim.Job) {
		j.Status, j.GmtFinishTime, j.Duration = dlc.StatusSucceeded, dlc.FormatTime(time.Now()), dlc.Ptr(int64(612))
	})
	before = writes()
	q = resync(t, ns, "live", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Updated).To(Equal(int32(1)))
	g.Expect(writes()-before).To(Equal(1.0), "one patch: the status label and the status together")
	s := snapshots(g, ns)[snapshot.Name(running)]
	g.Expect(s.Status.Phase).To(Equal(dlc.StatusSucceeded))
	g.Expect(s.Status.Duration).To(Equal(int64(612)))
}

// setEndpoint changes a query's spec.endpoint and waits for the sync of the new generation.
func setEndpoint(t *testing.T, ns, name, endpoint string) {
	t.Helper()
	g := NewWithT(t)
	q := getQuery(g, ns, name)
	patch := client.MergeFrom(q.DeepCopy())
	q.Spec.Endpoint = endpoint
	g.Expect(k8s.Patch(testCtx, q, patch)).To(Succeed())
	waitReady(t, ns, name, dlcv1alpha1.ReasonSynced)
}

// Changing a query's endpoint keeps its snapshots in step (issue 23, finding 3): the same
// endpoint written differently (a trailing "/") is the same source, so nothing is written and
// changes go on flowing; another endpoint moves the snapshots only this query holds, recording
// the new one; a snapshot another query still holds from the old endpoint stays foreign.
func TestAQueryMovesItsOwnSnapshotsToItsNewEndpoint(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcmove", 3, "PyTorchJob")
	q := queryFor(ns, "mover", "dlcmove")
	createReady(t, q, dlcv1alpha1.ReasonSynced)

	before := resourceVersions(g, ns)
	setEndpoint(t, ns, "mover", simURL+"/")
	g.Expect(resourceVersions(g, ns)).To(Equal(before), "a cosmetic endpoint change rewrote snapshots")
	g.Expect(sim.Patch(ids[0], func(j *dlcsim.Job) { j.Status = dlc.StatusStopped })).To(BeTrue())
	q = resync(t, ns, "mover", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Updated).To(Equal(int32(1)))
	g.Expect(snapshots(g, ns)[ids[0]].Status.Phase).To(Equal(dlc.StatusStopped))

	// Another endpoint (the same jobs, served on another port): the snapshots move.
	other := httptest.NewServer(sim.Handler())
	t.Cleanup(other.Close)
	setEndpoint(t, ns, "mover", other.URL)
	for id, s := range snapshots(g, ns) {
		g.Expect(s.Annotations).To(HaveKeyWithValue(dlcv1alpha1.AnnotationEndpoint, other.URL), id)
	}
	g.Expect(sim.Patch(ids[1], func(j *dlcsim.Job) { j.Status = dlc.StatusStopped })).To(BeTrue())
	resync(t, ns, "mover", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)[ids[1]].Status.Phase).To(Equal(dlc.StatusStopped))

	// Shared with a query that stays on that endpoint: moving back leaves them foreign.
	stay := query(ns, "stay")
	stay.Spec.Endpoint = other.URL
	stay.Spec.Filter.DisplayName = "dlcmove"
	g.Expect(k8s.Create(testCtx, stay)).To(Succeed())
	waitReady(t, ns, "stay", dlcv1alpha1.ReasonSynced)
	q = getQuery(g, ns, "mover")
	patch := client.MergeFrom(q.DeepCopy())
	q.Spec.Endpoint = simURL
	g.Expect(k8s.Patch(testCtx, q, patch)).To(Succeed())
	q = waitReady(t, ns, "mover", dlcv1alpha1.ReasonJobsSkipped)
	c := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(strings.Contains(c.Message, "from endpoint")).To(BeTrue(), c.Message)
	for id, s := range snapshots(g, ns) {
		g.Expect(s.Annotations).To(HaveKeyWithValue(dlcv1alpha1.AnnotationEndpoint, other.URL), id)
	}

	// stay goes (the garbage collector removes its owner references, as this does by hand; its
	// name stays in matchedBy until mover writes): mover is the only claimant again and moves
	// the snapshots back to its endpoint.
	stay = getQuery(g, ns, "stay")
	g.Expect(k8s.Delete(testCtx, stay)).To(Succeed())
	g.Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(testCtx, client.ObjectKeyFromObject(stay), stay)) }).
		WithTimeout(20 * time.Second).Should(BeTrue())
	for _, s := range snapshots(g, ns) {
		patch := client.MergeFrom(s.DeepCopy())
		s.OwnerReferences = slices.DeleteFunc(s.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == stay.UID })
		g.Expect(k8s.Patch(testCtx, &s, patch)).To(Succeed())
	}
	resync(t, ns, "mover", dlcv1alpha1.ReasonSynced)
	for id, s := range snapshots(g, ns) {
		g.Expect(s.Annotations).To(HaveKeyWithValue(dlcv1alpha1.AnnotationEndpoint, simURL), id)
		g.Expect(s.Status.MatchedBy).To(Equal([]string{"mover"}), id)
	}
}

// Two queries over the same jobs that disagree on what to reveal, and a third whose endpoint
// returns the same IDs: one rule (the most redacting query wins; a snapshot's source is fixed by
// its first writer) makes them converge, so their quiet syncs write nothing, in either order.
func TestOverlappingQueriesThatDisagreeConverge(t *testing.T) {
	g := NewWithT(t)
	ns := newNamedNamespace(t, revealAllowed)
	ids := addJobs("dlcoverlap", 3, "TFJob")
	revealing := queryFor(ns, "revealing", "dlcoverlap")
	revealing.Spec.Snapshot.Reveal = []dlcv1alpha1.RevealGroup{dlcv1alpha1.RevealEnvValues}
	g.Expect(k8s.Create(testCtx, revealing)).To(Succeed())
	waitReady(t, ns, "revealing", dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) {
		g.Expect(snapshots(g, ns)[ids[0]].Status.Job.Envs).To(HaveKeyWithValue("API_TOKEN", "very-secret-value"))
	}).WithTimeout(10 * time.Second).Should(Succeed())

	redacting := queryFor(ns, "redacting", "dlcoverlap")
	g.Expect(k8s.Create(testCtx, redacting)).To(Succeed())
	waitReady(t, ns, "redacting", dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) {
		s := snapshots(g, ns)[ids[0]]
		g.Expect(s.Status.MatchedBy).To(Equal([]string{"redacting", "revealing"}))
		g.Expect(s.Status.Job.Envs["API_TOKEN"]).NotTo(Equal("very-secret-value"))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	before := resourceVersions(g, ns)
	for _, order := range [][]string{{"revealing", "redacting"}, {"redacting", "revealing"}} {
		for _, name := range order {
			resync(t, ns, name, dlcv1alpha1.ReasonSynced)
		}
		g.Expect(resourceVersions(g, ns)).To(Equal(before), "quiet syncs of overlapping queries in the order %v", order)
	}

	// Another endpoint that lists the same IDs (with other data) cannot overwrite them.
	other := httptest.NewServer(sim.Handler())
	defer other.Close()
	impostor := queryFor(ns, "impostor", "dlcoverlap")
	impostor.Spec.Endpoint = other.URL + "/"
	g.Expect(k8s.Create(testCtx, impostor)).To(Succeed())
	got := waitReady(t, ns, "impostor", dlcv1alpha1.ReasonJobsSkipped)
	g.Expect(meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady).Message).To(ContainSubstring("from endpoint"))
	g.Expect(resourceVersions(g, ns)).To(Equal(before))
}

func TestAJobIDThatIsNotAValidNameGetsASanitisedName(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	sim.Upsert(dlcsim.Job{JobItem: dlc.JobItem{JobID: "DLC_Odd/ID", DisplayName: "dlcoddname", JobType: "TFJob", Status: "Running",
		UserID: "1001", Accessibility: "PUBLIC", GmtCreateTime: dlc.FormatTime(time.Now().Add(-time.Minute))}})
	q := queryFor(ns, "odd", "dlcoddname")
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	snaps := snapshots(g, ns)
	g.Expect(snaps).To(HaveLen(1))
	s := snaps[snapshot.Name("DLC_Odd/ID")]
	g.Expect(s.Spec.JobID).To(Equal("DLC_Odd/ID"))
	g.Expect(s.Name).To(MatchRegexp(`^dlc-odd-id-[0-9a-f]{8}$`))
}

// Malformed API data: the good jobs are mirrored exactly, each bad one is cut, sanitised or
// skipped with a condition that names it, and a body that cannot be read changes nothing.
func TestMalformedAPIDataIsMirroredSafelyOrReported(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	longID := "dlc" + strings.Repeat("x", 300)
	jobs := []string{
		jobJSON("dlcgood1", ""),
		jobJSON("", ""), // no ID
		// A failed job with a 1 MiB message and a 1 MiB command.
		strings.Replace(jobJSON("dlcbig1", `,"ReasonMessage":"`+strings.Repeat("m", 1<<20)+`","UserCommand":"`+strings.Repeat("a", 1<<20)+`"`),
			`"Status":"Running"`, `"Status":"Failed"`, 1),
		jobJSON("dlcutf1", `,"ReasonMessage":"bad `+"\xff\xfe"+` bytes"`),     // not UTF-8
		jobJSON("Job_ID/Not A Name", ""),                                      // not an object name
		jobJSON(longID, ""),                                                   // longer than spec.jobId allows
		jobJSON("dlctypes1", `,"Priority":"7","Duration":"12","NodeCount":3`), // numbers as strings and back
	}
	var mode atomic.Int32
	url := fixedAPI(t, func() string {
		switch mode.Load() {
		case 1: // a type no lenient decoder can read
			return `{"TotalCount":1,"RequestId":"r","Jobs":[{"JobId":"dlcgood1","Priority":"high"}]}`
		case 2: // the same ID twice with different data: the listing moved
			return `{"TotalCount":2,"RequestId":"r","Jobs":[` + jobJSON("dlcgood1", "") + `,` +
				jobJSON("dlcgood1", `,"Status":"Failed"`) + `]}`
		}
		return fmt.Sprintf(`{"TotalCount":%d,"RequestId":"r","Jobs":[%s]}`, len(jobs), strings.Join(jobs, ","))
	})
	q := query(ns, "odd")
	q.Spec.Endpoint = url
	q = createReady(t, q, dlcv1alpha1.ReasonJobsSkipped)
	ready := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(ready.Message).To(ContainSubstring("skipped 1 job(s) the API sent without a JobId"))
	g.Expect(ready.Message).To(ContainSubstring("could not write the snapshot of 1 job(s): " + longID[:20]))

	snaps := snapshots(g, ns)
	g.Expect(snaps).To(HaveLen(5))
	g.Expect(q.Status.Snapshots).To(Equal(int32(5)), "status.snapshots counts the jobs mirrored")
	g.Expect(snaps["dlcgood1"].Status.Job.DisplayName).To(Equal("odd-dlcgood1"))
	// Every job is mirrored: the long message is cut to what the CRD accepts, visibly, and the
	// phase and conditions say Failed; the command is redacted by default.
	big := snaps["dlcbig1"].Status
	g.Expect(big.Phase).To(Equal("Failed"))
	g.Expect(meta.IsStatusConditionTrue(big.Conditions, dlcv1alpha1.ConditionFailed)).To(BeTrue())
	g.Expect(len(big.Job.ReasonMessage)).To(BeNumerically("<=", snapshot.MaxStringBytes))
	g.Expect(big.Job.ReasonMessage).To(HaveSuffix("[cut by dlcsync: 1048576 bytes]"))
	g.Expect(big.Job.UserCommand).NotTo(ContainSubstring("aaaa"))
	// Invalid bytes are replaced (a run of them by one U+FFFD); what reaches the snapshot is valid UTF-8.
	g.Expect(snaps["dlcutf1"].Status.Job.ReasonMessage).To(Equal("bad \uFFFD bytes"))
	odd := snaps[snapshot.Name("Job_ID/Not A Name")]
	g.Expect(odd.Spec.JobID).To(Equal("Job_ID/Not A Name"))
	g.Expect(validation.IsDNS1123Subdomain(odd.Name)).To(BeEmpty())
	g.Expect(*snaps["dlctypes1"].Status.Job.Priority).To(Equal(int32(7)))
	g.Expect(snaps["dlctypes1"].Status.Job.NodeCount).To(Equal("3"))
	NewWithT(t).Eventually(func() []string {
		evs := events(g, ns)
		reasons := make([]string, 0, len(evs))
		for _, e := range evs {
			reasons = append(reasons, e.Reason)
		}
		return reasons
	}).WithTimeout(10 * time.Second).Should(ContainElement(dlcv1alpha1.ReasonJobsSkipped))

	// A body with a type that cannot be read: nothing written, nothing pruned, a clear reason.
	before := resourceVersions(g, ns)
	mode.Store(1)
	q = resync(t, ns, "odd", dlcv1alpha1.ReasonBadResponse)
	g.Expect(meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady).Message).To(ContainSubstring("Priority"))
	g.Expect(resourceVersions(g, ns)).To(Equal(before))

	// One ID twice with different data: the listing is inconsistent, nothing changes.
	mode.Store(2)
	resync(t, ns, "odd", dlcv1alpha1.ReasonInconsistentListing)
	g.Expect(resourceVersions(g, ns)).To(Equal(before))
}

// Two overlapping queries' first syncs race to create a shared job's snapshot: the one whose
// cache has not seen the other's create gets AlreadyExists. It joins the snapshot within its
// sync, read from the apiserver, instead of failing the whole sync with SnapshotConflict (a
// Warning event and every job listed again a second later: what make demo showed first).
func TestACreateThatMeetsAnOverlappingQuerysSnapshotJoinsIt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q, stored := fakeCluster("joiner")
	first := testenv.JobQuery("team", "first", q.Spec.Endpoint)
	first.UID = "uid-first"
	g.Expect(stored.Create(ctx, first)).To(Succeed())
	created := dlc.FormatTime(time.Now().Add(-time.Hour))
	job := dlc.JobItem{JobID: "dlcjoin0", GmtCreateTime: created, Status: dlc.StatusRunning}
	name := snapshot.Name(job.JobID)
	theirs := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name,
		Annotations:     map[string]string{dlcv1alpha1.AnnotationEndpoint: q.Spec.Endpoint},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: "first", UID: "uid-first"}}},
		Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: job.JobID, RegionID: q.Spec.RegionID}}
	theirs.Status.MatchedBy, theirs.Status.Matching, theirs.Status.Phase = []string{"first"}, true, dlc.StatusRunning
	g.Expect(stored.Create(ctx, theirs)).To(Succeed())
	// The cache has not seen that create yet.
	cache := interceptor.NewClient(stored, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*dlcv1alpha1.DLCJobSnapshot); ok {
				return apierrors.NewNotFound(dlcv1alpha1.GroupVersion.WithResource("dlcjobsnapshots").GroupResource(), key.Name)
			}
			return c.Get(ctx, key, obj, opts...)
		},
	})
	r := &JobQueryReconciler{Client: cache, APIReader: stored, Recorder: clientevents.NewFakeRecorder(10),
		Listers: fixedListers{&dlcfake.Lister{Jobs: []dlc.JobItem{job}}}, Endpoints: loopbackPolicy(t)}
	_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(q)})
	g.Expect(err).NotTo(HaveOccurred())

	got := &dlcv1alpha1.JobQuery{}
	g.Expect(stored.Get(ctx, client.ObjectKeyFromObject(q), got)).To(Succeed())
	ready := meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Reason).To(Equal(dlcv1alpha1.ReasonSynced), ready.Message)
	joined := &dlcv1alpha1.DLCJobSnapshot{}
	g.Expect(stored.Get(ctx, types.NamespacedName{Namespace: "team", Name: name}, joined)).To(Succeed())
	g.Expect(joined.Status.MatchedBy).To(ConsistOf("first", "joiner"))
	g.Expect(got.Status.LastSyncStats.Updated).To(BeEquivalentTo(1))
}
