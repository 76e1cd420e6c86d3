package controllers

// Helpers shared by the tests of several files: namespaces, queries, simulator jobs, waits, reads and fake clusters.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/endpoints"
	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// newNamespace creates a fresh namespace with a Secret holding the simulator's admin key.
func newNamespace(t *testing.T) string {
	t.Helper()
	return newNamedNamespace(t, fmt.Sprintf("t%d", nsSeq.Add(1)))
}

// newNamedNamespace creates a namespace of a given name with the simulator's admin key; several
// tests use the namespaces the manager treats specially, in any order, so an existing one is kept.
func newNamedNamespace(t *testing.T, name string) string {
	t.Helper()
	g := NewWithT(t)
	g.Expect(testenv.CreateTenant(testCtx, k8s, name, simAdmin.AccessKeyID, simAdmin.AccessKeySecret)).To(Succeed())
	return name
}

func credentialsSecret(namespace, name string, id dlcsim.Identity) *corev1.Secret {
	return testenv.CredentialsSecret(namespace, name, id.AccessKeyID, id.AccessKeySecret)
}

// query returns a JobQuery against the simulator with a 31-day window; change it before creating.
func query(namespace, name string) *dlcv1alpha1.JobQuery {
	q := testenv.JobQuery(namespace, name, simURL)
	q.Spec.Filter.TimeRange = &dlcv1alpha1.TimeRange{Within: &metav1.Duration{Duration: 31 * 24 * time.Hour}}
	return q
}

// queryFor is query filtered on a display name: the jobs addJobs added with that prefix.
func queryFor(namespace, name, displayName string) *dlcv1alpha1.JobQuery {
	q := query(namespace, name)
	q.Spec.Filter.DisplayName = displayName
	return q
}

// addJobs adds n jobs to the simulator with IDs prefix-0..n-1, created within the last hours,
// with the given type; it returns their IDs.
func addJobs(prefix string, n int, jobType string) []string {
	now := time.Now()
	ids := make([]string, n)
	jobs := make([]dlcsim.Job, n)
	for i := range jobs {
		ids[i] = fmt.Sprintf("%s%04d", prefix, i)
		gpu := strconv.Itoa(i % 4)
		jobs[i] = dlcsim.Job{JobItem: dlc.JobItem{
			JobID: ids[i], DisplayName: fmt.Sprintf("%s-job-%d", prefix, i), JobType: jobType, Status: dlc.StatusRunning,
			WorkspaceID: "268", WorkspaceName: "dlc-workspace", UserID: "1001", Username: "admin", Accessibility: "PUBLIC",
			RequestGPU: gpu, GmtCreateTime: dlc.FormatTime(now.Add(-time.Duration(i+1) * time.Minute)),
			Envs: map[string]string{"API_TOKEN": "very-secret-value"},
		}}
	}
	sim.Upsert(jobs...)
	return ids
}

func getQuery(g Gomega, namespace, name string) *dlcv1alpha1.JobQuery {
	q := &dlcv1alpha1.JobQuery{}
	g.Expect(k8s.Get(testCtx, types.NamespacedName{Namespace: namespace, Name: name}, q)).To(Succeed())
	return q
}

// createReady creates the JobQuery and waits until its Ready condition has the reason: the
// create-then-wait-for-the-first-sync preamble of most tests.
func createReady(t *testing.T, q *dlcv1alpha1.JobQuery, reason string) *dlcv1alpha1.JobQuery {
	t.Helper()
	NewWithT(t).Expect(k8s.Create(testCtx, q)).To(Succeed())
	return waitReady(t, q.Namespace, q.Name, reason)
}

// waitReady waits until the query's last sync handled the current generation and annotation
// and Ready has the given reason.
func waitReady(t *testing.T, namespace, name, reason string) *dlcv1alpha1.JobQuery {
	t.Helper()
	var q *dlcv1alpha1.JobQuery
	NewWithT(t).Eventually(func(g Gomega) {
		q = getQuery(g, namespace, name)
		g.Expect(q.Status.ObservedGeneration).To(Equal(q.Generation))
		g.Expect(q.Status.LastHandledReconcileAt).To(Equal(q.Annotations[dlcv1alpha1.AnnotationRequestedAt]))
		c := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(reason), c.Message)
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return q
}

// resync asks for an immediate sync through the requestedAt annotation and waits for it.
func resync(t *testing.T, namespace, name, reason string) *dlcv1alpha1.JobQuery {
	t.Helper()
	_, err := testenv.RequestSync(testCtx, k8s, namespace, name)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	// waitReady checks lastHandledReconcileAt: the sync for this very request has run.
	return waitReady(t, namespace, name, reason)
}

func snapshots(g Gomega, namespace string) map[string]dlcv1alpha1.DLCJobSnapshot {
	var list dlcv1alpha1.DLCJobSnapshotList
	g.Expect(k8s.List(testCtx, &list, client.InNamespace(namespace))).To(Succeed())
	out := map[string]dlcv1alpha1.DLCJobSnapshot{}
	for _, s := range list.Items {
		out[s.Name] = s
	}
	return out
}

func resourceVersions(g Gomega, namespace string) map[string]string {
	out := map[string]string{}
	for name, s := range snapshots(g, namespace) {
		out[name] = s.ResourceVersion
	}
	return out
}

// events returns the events of a namespace by reason.
func events(g Gomega, namespace string) []eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(k8s.List(testCtx, &list, client.InNamespace(namespace))).To(Succeed())
	return list.Items
}

func loopbackPolicy(t *testing.T) endpoints.Policy {
	t.Helper()
	policy, err := endpoints.ParsePatterns(testenv.LoopbackEndpoints)
	if err != nil {
		t.Fatal(err)
	}
	return policy
}

var allTransitionKinds = []string{snapshot.TransitionSucceeded, snapshot.TransitionFailed, snapshot.TransitionStopped,
	snapshot.TransitionRunning, snapshot.TransitionPhaseChanged}

// eventsQuery is a query of the jobs named prefix* that sends every kind of transition to
// sinkURI and lists every job at every sync (a full listing each time).
func eventsQuery(ns, name, prefix, sinkURI string) *dlcv1alpha1.JobQuery {
	q := query(ns, name)
	q.Spec.Filter.DisplayName = prefix
	q.Spec.FullResyncInterval = &metav1.Duration{}
	q.Spec.CloudEvents = &dlcv1alpha1.CloudEventsSpec{Sink: dlcv1alpha1.Sink{URI: sinkURI}, Types: allTransitionKinds}
	return q
}

// sinceOf waits for the query's sink to be configured and returns since, not before a second
// has passed after it: a sync lists the jobs created up to the second before it starts.
func sinceOf(t *testing.T, ns, name string) time.Time {
	var since time.Time
	NewWithT(t).Eventually(func(g Gomega) {
		st := getQuery(g, ns, name).Status.CloudEvents
		g.Expect(st).NotTo(BeNil())
		g.Expect(st.Since).NotTo(BeNil())
		since = st.Since.Time
	}).WithTimeout(10 * time.Second).Should(Succeed())
	time.Sleep(time.Until(since.Add(2 * time.Second)))
	return since
}

// addNewJob adds a job created (and, if ended, finished) at the given time, in the given phase.
func addNewJob(id, phase string, at time.Time) {
	j := dlcsim.Job{JobItem: dlc.JobItem{JobID: id, DisplayName: id, JobType: "PyTorchJob", Status: phase, WorkspaceID: "268",
		UserID: "1001", Username: "admin", GmtCreateTime: dlc.FormatTime(at)}}
	if dlc.IsTerminal(phase) { // as dlcsim does: a reservation period has no finish time yet
		j.GmtFinishTime = dlc.FormatTime(at)
	}
	sim.Upsert(j)
}

func setPhase(g Gomega, id, phase string) {
	g.Expect(sim.Patch(id, func(j *dlcsim.Job) {
		j.Status = phase
		if dlc.IsTerminal(phase) {
			j.GmtFinishTime = dlc.FormatTime(time.Now())
		}
	})).To(BeTrue())
}

func cloudEventsCondition(g Gomega, ns, name string) *metav1.Condition {
	c := meta.FindStatusCondition(getQuery(g, ns, name).Status.Conditions, dlcv1alpha1.ConditionCloudEventsDelivered)
	g.Expect(c).NotTo(BeNil())
	return c
}

// testSink registers a sink on e by hand (no worker, no apiserver), configured at since, with W
// at persisted.
func testSink(e *cloudEvents, query string, since, persisted time.Time) *sink {
	s := &sink{query: types.NamespacedName{Namespace: "ns", Name: query}, uri: "http://127.0.0.1:1/", source: querySource("ns", query),
		since: since, persisted: persisted, known: map[string]time.Time{}, signal: make(chan struct{}, 1), stop: func() {}}
	s.setKinds(allTransitionKinds)
	e.sinks[s.query] = s
	return s
}

func sharedSnapshot(seenAt time.Time, matchedBy ...string) *dlcv1alpha1.DLCJobSnapshot {
	s := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "dlc1"},
		Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: "dlc1"}}
	s.Status.Phase, s.Status.MatchedBy = "Failed", matchedBy
	s.Status.Transition = &dlcv1alpha1.PhaseTransition{Phase: "Failed", From: "Running", SeenAt: metav1.NewMicroTime(seenAt),
		Key: "dlc1/Failed/" + seenAt.Format(time.RFC3339Nano)}
	return s
}

// fixedListers hands every query the same lister: the phase and deadline tests' lister factory.
type fixedListers struct{ lister dlc.Lister }

func (f fixedListers) Lister(dlc.Config) (dlc.Lister, error) { return f.lister, nil }

// fakeCluster is a fake client holding a query of namespace team and its credentials Secret,
// with the index a sync reads its snapshots by: for tests that run Reconcile with a lister of
// their own.
func fakeCluster(name string) (*dlcv1alpha1.JobQuery, client.WithWatch) {
	const namespace = "team"
	q := testenv.JobQuery(namespace, name, "http://127.0.0.1:1")
	q.Generation = 1
	secret := testenv.CredentialsSecret(namespace, testenv.CredentialsSecretName, "id", "secret")
	// The fake client does not turn stringData into data as the apiserver does.
	secret.Data = map[string][]byte{"accessKeyId": []byte("id"), "accessKeySecret": []byte("secret")}
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).
		WithObjects(q, secret).
		WithStatusSubresource(q).
		WithIndex(&dlcv1alpha1.DLCJobSnapshot{}, ownerIndexKey, ownerUIDsOf).
		Build()
	return q, c
}

// fixedAPI answers every ListJobs request with the body that body() returns at that moment,
// bypassing the simulator: it can send what no well-behaved server would.
func fixedAPI(t *testing.T, body func() string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body()))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func jobJSON(id, extra string) string {
	return fmt.Sprintf(`{"JobId":%q,"DisplayName":"odd-%s","JobType":"PyTorchJob","Status":"Running","GmtCreateTime":%q%s}`,
		id, id, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), extra)
}

// snapshotOf is the snapshot of a job, read from the apiserver.
func snapshotOf(g Gomega, namespace, jobID string) *dlcv1alpha1.DLCJobSnapshot {
	var s dlcv1alpha1.DLCJobSnapshot
	g.Expect(k8s.Get(testCtx, client.ObjectKey{Namespace: namespace, Name: snapshot.Name(jobID)}, &s)).To(Succeed())
	return &s
}

// incrementalQuery is a query whose status.incremental was written at lastFull for jobs known.
func incrementalQuery(lastFull time.Time, known []dlc.KnownJob) *dlcv1alpha1.JobQuery {
	q := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "q", Generation: 1}}
	q.Spec.Filter.ShowOwn = dlc.Ptr(true)
	watermark, running, digest := summarize(known)
	q.Status.Incremental = &dlcv1alpha1.IncrementalState{Fingerprint: fullKey(q), LastFullListingTime: metav1.NewTime(lastFull),
		Watermark: watermark, RunningJobs: running, RunningDigest: digest, PendingPrune: []string{"dlcgone"}}
	return q
}

// recordingServer counts the requests an endpoint receives and the credentials they carry.
func recordingServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}
