package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
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
	q := query(ns, "flow")
	q.Spec.Filter.DisplayName = "dlcflow"
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

func TestInjectedAPIFailuresSetTheirReasonAndKeepSnapshots(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcpartial", 450, "XGBoostJob")
	q := query(ns, "partial")
	q.Spec.Filter.DisplayName = "dlcpartial"
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

func TestPruneRetainAndOverlappingQueries(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcprune", 6, "PyTorchJob")
	broad := query(ns, "broad")
	broad.Spec.Filter.DisplayName = "dlcprune"
	narrow := query(ns, "narrow")
	narrow.Spec.Filter.DisplayName = "dlcprune"
	narrow.Spec.Filter.NumericRange = &dlcv1alpha1.NumericRange{Field: "RequestGPU", Min: dlc.Ptr(int64(2))}
	narrow.Spec.Snapshot.PrunePolicy = dlcv1alpha1.PrunePolicyRetain
	g.Expect(k8s.Create(testCtx, broad)).To(Succeed())
	g.Expect(k8s.Create(testCtx, narrow)).To(Succeed())
	waitReady(t, ns, "broad", dlcv1alpha1.ReasonSynced)
	waitReady(t, ns, "narrow", dlcv1alpha1.ReasonSynced)
	// Both matches are one snapshot, owned by both queries. RequestGPU is i%4: jobs 2,3 match narrow.
	NewWithT(t).Eventually(func(g Gomega) {
		snaps := snapshots(g, ns)
		g.Expect(snaps).To(HaveLen(6))
		for i, id := range ids {
			want := []string{"broad"}
			if i == 2 || i == 3 {
				want = []string{"broad", "narrow"}
			}
			g.Expect(snaps[id].Status.MatchedBy).To(Equal(want), id)
			g.Expect(snaps[id].OwnerReferences).To(HaveLen(len(want)), id)
		}
		for _, name := range []string{"broad", "narrow"} {
			q := getQuery(g, ns, name)
			g.Expect(meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady).Reason).To(Equal(dlcv1alpha1.ReasonSynced))
		}
	}).WithTimeout(20 * time.Second).Should(Succeed())
	// No flapping: resyncing both changes nothing.
	before := resourceVersions(g, ns)
	resync(t, ns, "broad", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "narrow", dlcv1alpha1.ReasonSynced)
	g.Expect(resourceVersions(g, ns)).To(Equal(before))

	// Job 2 no longer matches narrow (GPU 0): narrow releases it, broad keeps it.
	// Every release or prune waits for a second listing that confirms it.
	sim.Patch(ids[2], func(j *dlcsim.Job) { j.RequestGPU = "0" })
	resync(t, ns, "narrow", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)[ids[2]].Status.MatchedBy).To(Equal([]string{"broad", "narrow"}))
	resync(t, ns, "narrow", dlcv1alpha1.ReasonSynced)
	s := snapshots(g, ns)[ids[2]]
	g.Expect(s.Status.MatchedBy).To(Equal([]string{"broad"}))
	g.Expect(s.OwnerReferences).To(HaveLen(1))

	// Job 3 stops matching both. broad (Delete) releases it; narrow (Retain) keeps it, marked.
	sim.Patch(ids[3], func(j *dlcsim.Job) { j.DisplayName = "renamed" })
	for range 2 {
		resync(t, ns, "broad", dlcv1alpha1.ReasonSynced)
		resync(t, ns, "narrow", dlcv1alpha1.ReasonSynced)
	}
	s = snapshots(g, ns)[ids[3]]
	g.Expect(s.Status.Matching).To(BeFalse())
	g.Expect(s.Status.MatchedBy).To(BeEmpty())
	g.Expect(s.OwnerReferences).To(HaveLen(1))
	g.Expect(s.OwnerReferences[0].Name).To(Equal("narrow"))

	// Job 0 is deleted in the API: broad is its only owner and deletes the snapshot.
	sim.Delete(ids[0])
	resync(t, ns, "broad", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveKey(ids[0]))
	resync(t, ns, "broad", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).NotTo(HaveKey(ids[0]))
}

func TestMaxJobsKeepsTheNewestAndSaysSo(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlcmax", 30, "PyTorchJob")
	q := query(ns, "max")
	q.Spec.Filter.DisplayName = "dlcmax"
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

func TestSuspendAndResume(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcsuspend", 3, "TFJob")
	q := query(ns, "s")
	q.Spec.Filter.DisplayName = "dlcsuspend"
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

func TestSecretRotationTriggersASync(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcrotate", 2, "TFJob")
	g.Expect(k8s.Create(testCtx, credentialsSecret(ns, "rotating", dlcsim.Identity{AccessKeyID: simAdmin.AccessKeyID, AccessKeySecret: "old-wrong"}))).To(Succeed())
	q := query(ns, "r")
	q.Spec.Filter.DisplayName = "dlcrotate"
	q.Spec.Credentials.SecretRef.Name = "rotating"
	createReady(t, q, dlcv1alpha1.ReasonUnauthorized)

	var secret corev1.Secret
	g.Expect(k8s.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "rotating"}, &secret)).To(Succeed())
	secret.Data["accessKeySecret"] = []byte(simAdmin.AccessKeySecret)
	g.Expect(k8s.Update(testCtx, &secret)).To(Succeed())
	waitReady(t, ns, "r", dlcv1alpha1.ReasonSynced)
	g.Expect(snapshots(g, ns)).To(HaveLen(2))
}

func TestDeletionPolicies(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	addJobs("dlcdelete", 3, "TFJob")
	orphan := query(ns, "orphan")
	orphan.Spec.Filter.DisplayName = "dlcdelete"
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
	del := query(ns, "delete")
	del.Spec.Filter.DisplayName = "dlcdelete"
	g.Expect(k8s.Create(testCtx, del)).To(Succeed())
	del = waitReady(t, ns, "delete", dlcv1alpha1.ReasonSynced)
	for _, s := range snapshots(g, ns) {
		g.Expect(s.OwnerReferences).To(ContainElement(HaveField("UID", del.UID)))
	}
	g.Expect(del.Finalizers).To(Equal([]string{snapshotsFinalizer}), "every query is held until its deletion policy is applied")
}

func TestAJobIDThatIsNotAValidNameGetsASanitisedName(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	sim.Upsert(dlcsim.Job{JobItem: dlc.JobItem{JobID: "DLC_Odd/ID", DisplayName: "dlcoddname", JobType: "TFJob", Status: "Running",
		UserID: "1001", Accessibility: "PUBLIC", GmtCreateTime: dlc.FormatTime(time.Now().Add(-time.Minute))}})
	q := query(ns, "odd")
	q.Spec.Filter.DisplayName = "dlcoddname"
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	snaps := snapshots(g, ns)
	g.Expect(snaps).To(HaveLen(1))
	s := snaps[snapshot.Name("DLC_Odd/ID")]
	g.Expect(s.Spec.JobID).To(Equal("DLC_Odd/ID"))
	g.Expect(s.Name).To(MatchRegexp(`^dlc-odd-id-[0-9a-f]{8}$`))
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
	q := query(ns, "thousand")
	q.Spec.Filter.DisplayName = "dlcthousand"
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
	q := query(ns, "storm")
	q.Spec.Filter.DisplayName = "dlcstorm"
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
