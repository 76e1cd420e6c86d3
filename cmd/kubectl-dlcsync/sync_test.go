package main

import (
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

func getQuery(g Gomega, namespace, name string) *dlcv1alpha1.JobQuery {
	q := &dlcv1alpha1.JobQuery{}
	g.Expect(k8s.Get(testCtx, client.ObjectKey{Namespace: namespace, Name: name}, q)).To(Succeed())
	return q
}

func TestSyncWaitReturnsOnceTheControllerHandledTheRequest(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "sync" + strconv.FormatInt(time.Now().UnixNano(), 36)
	base := seedJobs(prefix)
	createSynced(t, newQuery(ns, "mine", prefix))
	// A job the next sync finds: the hourly interval would not look before the test ends.
	sim.Upsert(job(prefix, "new", "PyTorchJob", dlc.StatusRunning, base, -time.Minute, 0))

	out, _, err := runCLI(testCtx, "sync", "mine", "-n", ns, "--wait", "--timeout", "30s")
	g.Expect(err).NotTo(HaveOccurred())
	q := getQuery(g, ns, "mine")
	requested := q.Annotations[dlcv1alpha1.AnnotationRequestedAt]
	_, perr := time.Parse(time.RFC3339Nano, requested)
	g.Expect(perr).NotTo(HaveOccurred())
	g.Expect(q.Status.LastHandledReconcileAt).To(Equal(requested))
	g.Expect(out).To(HavePrefix("Sync of JobQuery " + ns + "/mine requested (" + dlcv1alpha1.AnnotationRequestedAt + "=" + requested + ")\n"))
	g.Expect(out).To(ContainSubstring("Ready=True Synced: "))
	// The stats are those of the sync that found the new job.
	g.Expect(out).To(MatchRegexp(`Full sync in \S+: \d+ API calls, \d+ pages, 0 retries; created 1, updated 0, deleted 0, unchanged 3`))
	g.Expect(out).To(ContainSubstring("Snapshots: 4 (the API matched 4)"))
	var s dlcv1alpha1.DLCJobSnapshot
	g.Expect(k8s.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "dlc" + prefix + "new"}, &s)).To(Succeed())
}

func TestSyncWithoutWaitOnlyAnnotates(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	q := newQuery(ns, "idle", "sync-nowait-none")
	g.Expect(k8s.Create(testCtx, q)).To(Succeed())

	before := time.Now().UTC()
	out, _, err := runCLI(testCtx, "sync", "idle", "-n", ns)
	g.Expect(err).NotTo(HaveOccurred())
	got := getQuery(g, ns, "idle")
	at, perr := time.Parse(time.RFC3339Nano, got.Annotations[dlcv1alpha1.AnnotationRequestedAt])
	g.Expect(perr).NotTo(HaveOccurred())
	g.Expect(at).To(BeTemporally(">=", before))
	g.Expect(out).NotTo(ContainSubstring("Ready="))
}

func TestSyncFailsWhenTheSyncFails(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	q := newQuery(ns, "broken", "sync-broken")
	q.Spec.Credentials.SecretRef.Name = "missing"
	g.Expect(k8s.Create(testCtx, q)).To(Succeed())

	out, _, err := runCLI(testCtx, "sync", "broken", "-n", ns, "--wait", "--timeout", "30s")
	g.Expect(err).To(MatchError("JobQuery " + ns + "/broken is not ready: " + dlcv1alpha1.ReasonSecretNotFound))
	g.Expect(out).To(ContainSubstring("Ready=False " + dlcv1alpha1.ReasonSecretNotFound + ": "))
}

func TestSuspendAndResume(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "susp" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix)
	createSynced(t, newQuery(ns, "mine", prefix))

	out, _, err := runCLI(testCtx, "suspend", "mine", "-n", ns)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal("JobQuery " + ns + "/mine suspended\n"))
	g.Expect(getQuery(g, ns, "mine").Spec.Suspend).To(BeTrue())

	// A suspended query never syncs: waiting for it would hang, so sync refuses.
	_, _, err = runCLI(testCtx, "sync", "mine", "-n", ns, "--wait")
	g.Expect(err).To(MatchError(ContainSubstring("JobQuery " + ns + "/mine is suspended: resume it")))

	out, _, err = runCLI(testCtx, "resume", "mine", "-n", ns, "--wait", "--timeout", "30s")
	g.Expect(err).NotTo(HaveOccurred())
	q := getQuery(g, ns, "mine")
	g.Expect(q.Spec.Suspend).To(BeFalse())
	g.Expect(q.Status.LastHandledReconcileAt).To(Equal(q.Annotations[dlcv1alpha1.AnnotationRequestedAt]))
	g.Expect(out).To(ContainSubstring("Ready=True Synced: "))

	_, _, err = runCLI(testCtx, "suspend", "nope", "-n", ns)
	g.Expect(err).To(MatchError(ContainSubstring("reading JobQuery " + ns + "/nope")))
}

// TestSyncWaitTimeoutSaysWhatTheReadyConditionSays: when the controller fails before it records
// the request (a reconcile error ahead of the sync), --wait times out; the error then tells the
// Ready condition's reason and message rather than suggesting the manager is not running.
func TestSyncWaitTimeoutSaysWhatTheReadyConditionSays(t *testing.T) {
	key := client.ObjectKey{Namespace: "ns", Name: "q"}
	// Whole seconds: what the apiserver keeps of a condition's time, and what --wait compares.
	now := time.Now().Truncate(time.Second)
	earlier, later := metav1.NewTime(now.Add(-time.Hour)), metav1.NewTime(now)
	ready := func(status metav1.ConditionStatus, reason, message string, generation int64, at metav1.Time) metav1.Condition {
		return metav1.Condition{Type: dlcv1alpha1.ConditionReady, Status: status, Reason: reason, Message: message,
			ObservedGeneration: generation, LastTransitionTime: at}
	}
	synced := ready(metav1.ConditionTrue, dlcv1alpha1.ReasonSynced, "Keeping 3 matching jobs", 1, earlier)
	for _, tc := range []struct {
		name    string
		before  *metav1.Condition
		current []metav1.Condition
		want    string
	}{
		{name: "failing", before: &synced,
			current: []metav1.Condition{ready(metav1.ConditionFalse, dlcv1alpha1.ReasonSecretNotFound, "Secret ns/creds not found", 1, later)},
			want:    "the controller did not handle the sync within 1s; its Ready condition says Ready=False SecretNotFound: Secret ns/creds not found"},
		{name: "already failing", before: &metav1.Condition{Status: metav1.ConditionFalse},
			current: []metav1.Condition{ready(metav1.ConditionFalse, dlcv1alpha1.ReasonSecretNotFound, "Secret ns/creds not found", 1, earlier)},
			want:    "its Ready condition says Ready=False SecretNotFound: Secret ns/creds not found"},
		{name: "moved to a new generation", before: &synced,
			current: []metav1.Condition{ready(metav1.ConditionTrue, dlcv1alpha1.ReasonSynced, "Keeping 2 matching jobs", 2, earlier)},
			want:    "its Ready condition says Ready=True Synced: Keeping 2 matching jobs"},
		{name: "untouched", before: &synced, current: []metav1.Condition{synced},
			want: "the controller did not handle the sync within 1s (is the manager running?)"},
		{name: "never synced", want: "the controller did not handle the sync within 1s (is the manager running?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			q := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Generation: 2}}
			q.Status.Conditions, q.Status.LastHandledReconcileAt = tc.current, "an earlier request"
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(q).WithStatusSubresource(q).Build()
			_, err := waitForSync(testCtx, c, key, "2026-05-01T12:00:00Z", tc.before, time.Second)
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
			g.Expect(err).To(MatchError(HavePrefix("JobQuery ns/q: ")))
		})
	}
}

func TestSyncWaitReturnsTheHandledQuery(t *testing.T) {
	g := NewWithT(t)
	q := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "q"}}
	q.Status.LastHandledReconcileAt, q.Status.Snapshots = "2026-05-01T12:00:00Z", 7
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(q).WithStatusSubresource(q).Build()
	got, err := waitForSync(testCtx, c, client.ObjectKeyFromObject(q), "2026-05-01T12:00:00Z", nil, time.Second)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Status.Snapshots).To(Equal(int32(7)))
}
