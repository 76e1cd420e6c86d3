package controllers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/snapshot/snapshottest"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

func TestAQueryMirrorsExactlyTheMatchingJobs(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	pt := addJobs("dlcmirrorpt", 12, "PyTorchJob")
	addJobs("dlcmirrortf", 5, "TFJob")
	q := query(ns, "pytorch")
	q.Spec.Filter.JobType = "PyTorchJob"
	q.Spec.Filter.DisplayName = "dlcmirrorpt"
	g.Expect(k8s.Create(testCtx, q)).To(Succeed())

	q = waitReady(t, ns, "pytorch", dlcv1alpha1.ReasonSynced)
	snaps := snapshots(g, ns)
	g.Expect(snaps).To(HaveLen(12))
	g.Expect(q.Status.MatchedJobs).To(Equal(int64(12)))
	g.Expect(q.Status.Snapshots).To(Equal(int32(12)))
	g.Expect(q.Status.JobStatusCounts).To(Equal(map[string]int32{"Running": 12}))
	g.Expect(q.Status.LastSyncStats.Created).To(Equal(int32(12)))
	g.Expect(q.Status.LastSyncStats.APICalls).To(Equal(int32(1)))
	g.Expect(q.Status.NextSyncTime.Sub(q.Status.LastSyncTime.Time)).To(BeNumerically("~", time.Hour, 6*time.Minute+time.Second))
	for _, c := range []string{dlcv1alpha1.ConditionReconciling, dlcv1alpha1.ConditionStalled} {
		g.Expect(meta.IsStatusConditionFalse(q.Status.Conditions, c)).To(BeTrue(), c)
	}

	s := snaps[pt[3]]
	g.Expect(s.Spec.JobID).To(Equal(pt[3]))
	g.Expect(s.Spec.RegionID).To(Equal("cn-hangzhou"))
	g.Expect(s.Labels).To(Equal(map[string]string{dlcv1alpha1.LabelStatus: "Running", dlcv1alpha1.LabelJobType: "PyTorchJob",
		dlcv1alpha1.LabelWorkspaceID: "268", dlcv1alpha1.LabelRegion: "cn-hangzhou", dlcv1alpha1.LabelUser: "admin"}))
	g.Expect([]string{s.Status.Username, s.Status.UserID}).To(Equal([]string{"admin", "1001"}))
	g.Expect(s.Status.RequestID).To(MatchRegexp(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`),
		"the RequestId of the answer, in the reference's format")
	g.Expect(s.OwnerReferences).To(HaveLen(1))
	g.Expect(s.OwnerReferences[0].UID).To(Equal(q.UID))
	g.Expect(s.OwnerReferences[0].Controller).To(BeNil())
	g.Expect(s.Status.Phase).To(Equal("Running"))
	g.Expect(s.Status.JobType).To(Equal("PyTorchJob"))
	g.Expect(s.Status.RequestGPU).To(Equal("3"))
	g.Expect(s.Status.MatchedBy).To(Equal([]string{"pytorch"}))
	g.Expect(s.Status.Matching).To(BeTrue())
	g.Expect(s.Status.CreatedAt).NotTo(BeNil())
	g.Expect(s.Status.Job.DisplayName).To(Equal("dlcmirrorpt-job-3"))
	g.Expect(s.Status.Job.Envs).To(Equal(map[string]string{"API_TOKEN": snapshot.Redacted}), "env values must be redacted")
	g.Expect(meta.IsStatusConditionFalse(s.Status.Conditions, dlcv1alpha1.ConditionFailed)).To(BeTrue())
}

func TestAJobChangeFlowsThroughWithOneEventAndANoChangeSyncWritesNothing(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcflow", 6, "TFJob")
	q := queryFor(ns, "flow", "dlcflow")
	createReady(t, q, dlcv1alpha1.ReasonSynced)

	// A sync with no change in the API writes no snapshot and emits no event.
	before := resourceVersions(g, ns)
	eventsBefore := len(events(g, ns))
	q = resync(t, ns, "flow", dlcv1alpha1.ReasonSynced)
	g.Expect(resourceVersions(g, ns)).To(Equal(before))
	g.Expect(q.Status.LastSyncStats.Unchanged).To(Equal(int32(6)))
	g.Expect(q.Status.LastSyncStats.Created + q.Status.LastSyncStats.Updated + q.Status.LastSyncStats.Deleted).To(BeZero())
	NewWithT(t).Consistently(func() int { return len(events(g, ns)) }).WithTimeout(time.Second).Should(Equal(eventsBefore))

	// A job fails: its snapshot follows within one sync, with one Warning event.
	g.Expect(sim.Patch(ids[2], func(j *dlcsim.Job) {
		j.Status, j.ReasonCode, j.ReasonMessage = dlc.StatusFailed, "JobFailed", "OOMKilled"
		j.GmtFinishTime = dlc.FormatTime(time.Now())
	})).To(BeTrue())
	q = resync(t, ns, "flow", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Updated).To(Equal(int32(1)))
	g.Expect(q.Status.LastSyncStats.Unchanged).To(Equal(int32(5)))
	snap := snapshots(g, ns)[ids[2]]
	g.Expect(snap.Status.Phase).To(Equal("Failed"))
	g.Expect(snap.Labels[dlcv1alpha1.LabelStatus]).To(Equal("Failed"))
	failed := meta.FindStatusCondition(snap.Status.Conditions, dlcv1alpha1.ConditionFailed)
	g.Expect(failed.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(failed.Message).To(Equal("OOMKilled"))
	after := resourceVersions(g, ns)
	for id, rv := range before {
		if id != ids[2] {
			g.Expect(after[id]).To(Equal(rv), "unchanged snapshot %s was written", id)
		}
	}
	NewWithT(t).Eventually(func(g Gomega) {
		var jobEvents []string
		for _, e := range events(g, ns) {
			if e.Regarding.Name == ids[2] {
				jobEvents = append(jobEvents, e.Type+"/"+e.Reason)
			}
		}
		g.Expect(jobEvents).To(Equal([]string{"Warning/JobFailed"}))
	}).WithTimeout(10 * time.Second).Should(Succeed())

	// And again nothing changes: no write, no further event.
	before = resourceVersions(g, ns)
	resync(t, ns, "flow", dlcv1alpha1.ReasonSynced)
	g.Expect(resourceVersions(g, ns)).To(Equal(before))
}

func TestSuspendAndResume(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcsuspend", 3, "TFJob")
	q := queryFor(ns, "s", "dlcsuspend")
	q.Spec.Suspend = true
	createReady(t, q, dlcv1alpha1.ReasonSuspended)
	g.Expect(snapshots(g, ns)).To(BeEmpty())

	q = getQuery(g, ns, "s")
	q.Spec.Suspend = false
	g.Expect(k8s.Update(testCtx, q)).To(Succeed())
	waitReady(t, ns, "s", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveLen(3))
	g.Expect(hasSeries(lastSyncTimestamp, ns, "s")).To(BeTrue())

	// Suspended again: no last-sync series, so no staleness alert fires for a chosen pause.
	q = getQuery(g, ns, "s")
	q.Spec.Suspend = true
	g.Expect(k8s.Update(testCtx, q)).To(Succeed())
	waitReady(t, ns, "s", dlcv1alpha1.ReasonSuspended)
	g.Expect(hasSeries(lastSyncTimestamp, ns, "s")).To(BeFalse())
}

// hasSeries reports whether a metric vector has a series for the query.
func hasSeries(vec prometheus.Collector, namespace, query string) bool {
	ch := make(chan prometheus.Metric, 1024)
	go func() {
		vec.Collect(ch)
		close(ch)
	}()
	found := false
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range pb.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		found = found || (labels[labelNamespace] == namespace && labels[labelQuery] == query)
	}
	return found
}

func TestDeletionPolicies(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcdelete", 3, "TFJob")
	orphan := queryFor(ns, "orphan", "dlcdelete")
	orphan.Spec.Snapshot.DeletionPolicy = dlcv1alpha1.DeletionPolicyOrphan
	g.Expect(k8s.Create(testCtx, orphan)).To(Succeed())
	waitReady(t, ns, "orphan", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveLen(3))

	g.Expect(k8s.Delete(testCtx, getQuery(g, ns, "orphan"))).To(Succeed())
	NewWithT(t).Eventually(func(g Gomega) {
		var q dlcv1alpha1.JobQuery
		err := k8s.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "orphan"}, &q)
		g.Expect(err).To(HaveOccurred())
		for _, s := range snapshots(g, ns) {
			g.Expect(s.OwnerReferences).To(BeEmpty())
			g.Expect(s.Status.MatchedBy).To(BeEmpty())
		}
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(snapshots(g, ns)).To(HaveLen(3), "Orphan keeps the snapshots")

	// With Delete, the snapshots carry the query as owner, so garbage collection removes them
	// (envtest runs no garbage collector: the owner reference is what this test can prove).
	del := queryFor(ns, "delete", "dlcdelete")
	g.Expect(k8s.Create(testCtx, del)).To(Succeed())
	del = waitReady(t, ns, "delete", dlcv1alpha1.ReasonSynced)
	for _, s := range snapshots(g, ns) {
		g.Expect(s.OwnerReferences).To(ContainElement(HaveField("UID", del.UID)))
	}
	g.Expect(del.Finalizers).To(Equal([]string{snapshotsFinalizer}), "every query is held until its deletion policy is applied")
}

// TestAThousandJobs measures the first sync of 1,000 jobs and a resync with no change: API calls
// and Kubernetes writes (counted by the controller's own write metric).
func TestAThousandJobs(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcthousand", 1000, "PyTorchJob")
	writes := func() float64 {
		total := 0.0
		for _, op := range []string{"create", "patch", "delete"} {
			total += testutil.ToFloat64(snapshotWritesTotal.WithLabelValues(op))
		}
		return total
	}
	before := writes()
	q := queryFor(ns, "thousand", "dlcthousand")
	q = createReady(t, q, dlcv1alpha1.ReasonSynced)
	first := q.Status.LastSyncStats
	firstWrites := writes() - before
	g.Expect(first.APICalls).To(Equal(int32(10)))
	g.Expect(first.Created).To(Equal(int32(1000)))
	g.Expect(firstWrites).To(Equal(1000.0), "one create per new job, its status in it")

	before = writes()
	q = resync(t, ns, "thousand", dlcv1alpha1.ReasonSynced)
	again := q.Status.LastSyncStats
	g.Expect(again.APICalls).To(Equal(int32(10)))
	g.Expect(again.Unchanged).To(Equal(int32(1000)))
	g.Expect(writes() - before).To(BeZero())
	t.Logf("1,000 jobs: first sync %d API calls, %.0f snapshot writes, %v; no-change resync %d API calls, 0 snapshot writes, %v",
		first.APICalls, firstWrites, first.Duration.Duration, again.APICalls, again.Duration.Duration)
}

func TestDueSpreadsOverdueQueriesAfterARestartAndPutsNewOnesFirst(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	past, future := metav1.NewTime(now.Add(-time.Hour)), metav1.NewTime(now.Add(30*time.Second))
	q := func(name string, mutate func(*dlcv1alpha1.JobQuery)) *dlcv1alpha1.JobQuery {
		jq := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Generation: 1}}
		jq.Spec.Interval = metav1.Duration{Duration: 5 * time.Minute}
		jq.Status = dlcv1alpha1.JobQueryStatus{ObservedGeneration: 1, LastSyncTime: &past, NextSyncTime: &past}
		mutate(jq)
		return jq
	}
	r := &JobQueryReconciler{}
	check := func(jq *dlcv1alpha1.JobQuery, credVersion string) (time.Duration, bool) {
		state, seen := r.state(types.NamespacedName{Namespace: jq.Namespace, Name: jq.Name})
		if !seen {
			// As reconcileSync: a query this process sees for the first time is restored.
			restoreState(state, jq, now)
		}
		return due(jq, state, seen, credVersion, now)
	}
	if _, due := check(q("new", func(j *dlcv1alpha1.JobQuery) { j.Status = dlcv1alpha1.JobQueryStatus{} }), ""); !due {
		t.Error("a never-synced query must sync at once")
	}
	wait, due := check(q("overdue", func(*dlcv1alpha1.JobQuery) {}), "")
	if due || wait < time.Second || wait > time.Minute+time.Second {
		t.Errorf("an overdue query right after a restart: due %v, wait %v; want a spread wait", due, wait)
	}
	if _, due := check(q("overdue", func(*dlcv1alpha1.JobQuery) {}), ""); !due {
		t.Error("the same overdue query must sync on its next reconcile")
	}
	if wait, due := check(q("scheduled", func(j *dlcv1alpha1.JobQuery) { j.Status.NextSyncTime = &future }), ""); due || wait != 30*time.Second {
		t.Errorf("a scheduled query: due %v wait %v", due, wait)
	}
	// A sync that changed nothing did not write the status: the schedule in memory wins over
	// the stale one of the status.
	state, _ := r.state(types.NamespacedName{Namespace: "ns", Name: "quiet"})
	state.nextSync = now.Add(40 * time.Second)
	if wait, due := check(q("quiet", func(j *dlcv1alpha1.JobQuery) {}), ""); due || wait != 40*time.Second {
		t.Errorf("a query whose last sync wrote nothing: due %v wait %v; want the remembered 40s", due, wait)
	}
	if _, due := check(q("edited", func(j *dlcv1alpha1.JobQuery) { j.Generation = 2; j.Status.NextSyncTime = &future }), ""); !due {
		t.Error("a spec change must sync at once")
	}
	if _, due := check(q("asked", func(j *dlcv1alpha1.JobQuery) {
		j.Annotations = map[string]string{dlcv1alpha1.AnnotationRequestedAt: "1"}
		j.Status.NextSyncTime = &future
	}), ""); !due {
		t.Error("a requestedAt annotation must sync at once")
	}
	if _, due := check(q("rotated", func(j *dlcv1alpha1.JobQuery) {
		j.Status.ObservedCredentialsVersion = "1"
		j.Status.NextSyncTime = &future
	}), "2"); !due {
		t.Error("a new Secret version must sync at once")
	}
	stalled := q("stalled", func(j *dlcv1alpha1.JobQuery) {
		j.Status.NextSyncTime = nil
		setConditions(&j.Status.Conditions, 1, outcomeStalled, dlcv1alpha1.ReasonInvalidFilter, "bad filter")
	})
	if _, due := check(stalled, ""); !due {
		t.Error("a stalled query must be looked at once by a new process, which may run with other flags")
	}
	if wait, due := check(stalled, ""); due || wait != 0 {
		t.Errorf("a stalled query without a change: due %v wait %v; want to wait for a change", due, wait)
	}
	// A RAM denial is fixed in Alibaba Cloud, out of sight of any watch: looked at every 10 minutes.
	denied := func(lastSync time.Duration) *dlcv1alpha1.JobQuery {
		return q("denied", func(j *dlcv1alpha1.JobQuery) {
			last := metav1.NewTime(now.Add(-lastSync))
			j.Status.LastSyncTime, j.Status.NextSyncTime = &last, nil
			setConditions(&j.Status.Conditions, 1, outcomeStalled, dlcv1alpha1.ReasonForbidden, "denied")
		})
	}
	r.state(types.NamespacedName{Namespace: "ns", Name: "denied"})
	if wait, due := check(denied(time.Minute), ""); due || wait != stalledRecheck-time.Minute {
		t.Errorf("a query denied a minute ago: due %v wait %v; want a wait of 9m", due, wait)
	}
	if _, due := check(denied(11*time.Minute), ""); !due {
		t.Error("a query denied 11 minutes ago must be tried again")
	}
}

// TestTheGeneratedRoleIsLeastPrivilege reads config/rbac/role.yaml, generated from the
// +kubebuilder:rbac markers, and checks it grants only what the reconciler uses.
func TestTheGeneratedRoleIsLeastPrivilege(t *testing.T) {
	data, err := os.ReadFile(testenv.RepoRoot() + "/config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	granted := map[string][]string{}
	for _, rule := range role.Rules {
		for _, group := range rule.APIGroups {
			for _, res := range rule.Resources {
				if slices.Contains(rule.Verbs, "*") || res == "*" || group == "*" {
					t.Errorf("wildcard in rule %+v", rule)
				}
				key := group + "/" + res
				granted[key] = append(granted[key], rule.Verbs...)
			}
		}
	}
	want := map[string][]string{
		"/secrets":                             {"get", "list", "watch"},
		"events.k8s.io/events":                 {"create", "patch"},
		"dlc.dlcsync.io/jobqueries":            {"get", "list", "patch", "update", "watch"},
		"dlc.dlcsync.io/jobqueries/status":     {"get", "patch", "update"},
		"dlc.dlcsync.io/jobqueries/finalizers": {"update"},
		"dlc.dlcsync.io/dlcjobsnapshots":       {"create", "delete", "get", "list", "patch", "update", "watch"},
	}
	for key, verbs := range granted {
		slices.Sort(verbs)
		if !slices.Equal(verbs, want[key]) {
			t.Errorf("%s: granted %v, want %v", key, verbs, want[key])
		}
	}
	for key := range want {
		if _, ok := granted[key]; !ok {
			t.Errorf("%s: not granted", key)
		}
	}
}

// userinfo matches the password of the URLs seeded into every field that is not a secret field.
var userinfo = regexp.MustCompile(`alice|pw\d{3}z`)

// leakJob is a job whose every string field holds something secret-looking: the fields that can
// carry a secret a distinct marker each (returned by path), every other field a URL with a
// password in its userinfo; only the fields the simulator and the snapshot name need are valid.
func leakJob(id, displayName string) (dlcsim.Job, map[string]string) {
	job := dlc.JobItem{}
	markers := map[string]string{}
	n := 0
	snapshottest.Seed(&job, func(path string) string {
		n++
		if _, secret := snapshottest.SecretFields[path]; secret {
			markers[path] = fmt.Sprintf("s3cr3t%03dx", n)
			return markers[path]
		}
		return fmt.Sprintf("see https://alice:pw%03dz@example.com/p", n)
	})
	job.JobID, job.JobType, job.Status = id, "PyTorchJob", dlc.StatusRunning
	// The filter's prefix, then a URL with a password, as a careless user names a job.
	job.DisplayName = displayName + " from https://alice:pw999z@example.com/data"
	job.UserID, job.WorkspaceID, job.Accessibility = simAdmin.UserID, "268", "PUBLIC"
	// Every top-level timestamp valid, so the simulator orders and filters the job.
	v := reflect.ValueOf(&job).Elem()
	for i := 0; i < v.NumField(); i++ {
		if strings.HasPrefix(v.Type().Field(i).Name, "Gmt") && v.Field(i).Kind() == reflect.String {
			v.Field(i).SetString(dlc.FormatTime(time.Now().Add(-2 * time.Hour)))
		}
	}
	return dlcsim.Job{JobItem: job}, markers
}

// Every secret-looking value of a job, in every string field, reaches no log line, event, metric,
// JobQuery status or snapshot, through the real manager; the revealed groups show up in the
// snapshot of a query that reveals them, in a namespace where that is allowed, and nowhere else.
func TestNoSecretOfAJobReachesLogsEventsMetricsOrStatusUnlessRevealed(t *testing.T) {
	g := NewWithT(t)
	own := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{simAdmin}, Seed: 17})
	srv := httptest.NewServer(own.Handler())
	t.Cleanup(srv.Close)
	job, markers := leakJob("dlcleake2e0001", "leake2e")
	own.Upsert(job)
	g.Expect(markers).To(HaveLen(len(snapshottest.SecretFields)), "a secret field was not seeded")

	plain := newNamespace(t)
	reveal := newNamedNamespace(t, revealAllowed)
	for ns, groups := range map[string][]dlcv1alpha1.RevealGroup{plain: nil, reveal: dlcv1alpha1.RevealGroups} {
		q := query(ns, "leak")
		q.Spec.Endpoint = srv.URL
		q.Spec.Filter.DisplayName = "leake2e"
		q.Spec.Snapshot.Reveal = groups
		createReady(t, q, dlcv1alpha1.ReasonSynced)
	}
	// The job fails (a phase change: an event that names the job and its reason), and the next
	// request fails with a made-up code: counted, but never a label of its own.
	own.Patch(job.JobID, func(j *dlcsim.Job) { j.Status = dlc.StatusFailed })
	own.SetFaults(dlcsim.Faults{FailRequests: []int{1}, FailCode: "s3cr3tCODEx", FailStatus: 500})
	g.Expect(resync(t, plain, "leak", dlcv1alpha1.ReasonSynced).Status.LastSyncStats.Retries).To(BeNumerically(">=", 1),
		"the failing request was not sent")
	resync(t, reveal, "leak", dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) {
		g.Expect(events(g, plain)).To(ContainElement(HaveField("Note", ContainSubstring("changed from Running to Failed"))))
	}).WithTimeout(10 * time.Second).Should(Succeed())

	shown := map[string]string{}
	for _, ns := range []string{plain, reveal} {
		snaps := snapshots(g, ns)
		g.Expect(snaps).To(HaveKey(job.JobID), ns)
		// The whole object: labels and annotations as well as the status.
		shown["snapshot in "+ns] = marshal(g, snaps[job.JobID])
		shown["JobQuery in "+ns] = marshal(g, getQuery(g, ns, "leak").Status)
		shown["events in "+ns] = marshal(g, events(g, ns))
	}
	shown["logs"] = capturedLogs.String()
	shown["metrics"] = gatheredMetrics(g)
	g.Expect(shown["metrics"]).To(ContainSubstring(`dlcsync_dlc_api_requests_total{code="other"}`))

	revealed := 0
	for path, marker := range markers {
		group := snapshottest.SecretFields[path]
		for where, text := range shown {
			want := where == "snapshot in "+reveal && group != snapshottest.Always
			if want {
				revealed++
			}
			g.Expect(strings.Contains(text, marker)).To(Equal(want), "%s (%s) in the %s", path, group, where)
		}
	}
	g.Expect(revealed).To(BeNumerically(">=", 15), "the revealing query showed too little to prove anything")
	for where, text := range shown {
		g.Expect(userinfo.FindString(text)).To(BeEmpty(), "URL userinfo in the %s", where)
	}
	g.Expect(shown["metrics"]).NotTo(ContainSubstring("s3cr3tCODEx"), "a made-up code became a label")
}

func marshal(g Gomega, v any) string {
	data, err := json.Marshal(v)
	g.Expect(err).NotTo(HaveOccurred())
	return string(data)
}

// gatheredMetrics is the manager's metrics registry in the text exposition format.
func gatheredMetrics(g Gomega) string {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	var out bytes.Buffer
	for _, f := range families {
		_, err := expfmt.MetricFamilyToText(&out, f)
		g.Expect(err).NotTo(HaveOccurred())
	}
	return out.String()
}
