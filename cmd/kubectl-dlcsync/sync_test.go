package main

import (
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
