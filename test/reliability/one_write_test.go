package reliability

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/controllers"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// snapshotWrites is the manager's snapshot writes since before, by verb and response code.
func snapshotWrites(m *manager, before testenv.RequestCount) map[string]int {
	return m.requests.Snapshot().Since(before).WritesBy("dlcjobsnapshots")
}

// finish moves a running job to Succeeded.
func finish(id string) {
	sim.Patch(id, func(j *dlcsim.Job) {
		j.Status, j.SubStatus, j.ReasonCode, j.ReasonMessage = dlc.StatusSucceeded, "", "", ""
		j.GmtFinishTime = dlc.FormatTime(time.Now())
	})
}

// TestOneWritePerNewJobAndPerChange counts, at the apiserver, what the manager sends for
// snapshots: one create per new job (labels and status in it), one patch per changed job (the
// phase label and the status together), nothing for a quiet sync.
func TestOneWritePerNewJobAndPerChange(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("onew", 40)
	m := startManager(t, "one-write", false)
	g.Expect(k8s.Create(context.Background(), newQuery(ns, "one", "onew-job"))).To(Succeed())
	waitSynced(t, ns, "one", 40)
	g.Expect(snapshotWrites(m, nil)).To(Equal(map[string]int{"POST 201": 40}))

	before := m.requests.Snapshot()
	for _, id := range ids[:10] {
		finish(id)
	}
	syncNow(t, ns, "one", 40)
	g.Expect(snapshotWrites(m, before)).To(Equal(map[string]int{"PATCH(json-patch) 200": 10}))
	for id, s := range snapshotsOf(g, ns) {
		g.Expect(s.Labels[dlcv1alpha1.LabelStatus]).To(Equal(s.Status.Phase), id)
	}
	expectRight(g, ns, ids)

	before = m.requests.Snapshot()
	syncNow(t, ns, "one", 40)
	g.Expect(snapshotWrites(m, before)).To(BeEmpty())
}

// setSnapshotCRD replaces the DLCJobSnapshot CRD's spec with the one in file and waits until
// the apiserver serves (or stops serving) the status subresource accordingly.
func setSnapshotCRD(t *testing.T, file string) {
	t.Helper()
	g := NewWithT(t)
	data, err := os.ReadFile(file)
	g.Expect(err).NotTo(HaveOccurred())
	var want apiextensionsv1.CustomResourceDefinition
	g.Expect(sigsyaml.Unmarshal(data, &want)).To(Succeed())
	scheme := testenv.Scheme()
	g.Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	crds, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	var crd apiextensionsv1.CustomResourceDefinition
	g.Expect(crds.Get(context.Background(), types.NamespacedName{Name: want.Name}, &crd)).To(Succeed())
	crd.Spec = want.Spec
	g.Expect(crds.Update(context.Background(), &crd)).To(Succeed())
	withStatus := want.Spec.Versions[0].Subresources != nil && want.Spec.Versions[0].Subresources.Status != nil
	probe := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "crd-probe"},
		Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: "crd-probe", RegionID: "cn-hangzhou"}}
	g.Expect(client.IgnoreAlreadyExists(k8s.Create(context.Background(), probe))).To(Succeed())
	g.Eventually(func() bool {
		err := k8s.Status().Patch(context.Background(), probe, client.RawPatch(types.MergePatchType, []byte(`{}`)))
		return apierrors.IsNotFound(err) != withStatus
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(BeTrue())
}

// writeTheOldWay writes a job's snapshot as the release with the status subresource did: a
// create with labels, annotations and owner (field manager dlcsync), then a server-side apply of
// the whole status through /status, forced, on the created version.
func writeTheOldWay(g Gomega, q *dlcv1alpha1.JobQuery, job *dlc.JobItem) {
	ctx := context.Background()
	name := snapshot.Name(job.JobID)
	obj := &dlcv1alpha1.DLCJobSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: q.Namespace, Name: name, Labels: snapshot.Labels(job, q.Spec.RegionID),
			Annotations:     map[string]string{dlcv1alpha1.AnnotationEndpoint: q.Spec.Endpoint},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: q.Name, UID: q.UID}}},
		Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: job.JobID, RegionID: q.Spec.RegionID},
	}
	g.Expect(k8s.Create(ctx, obj, client.FieldOwner(controllers.FieldOwner))).To(Succeed())
	converted, err := snapshot.ConvertJob(job, snapshot.OptionsFor(q.Spec.Snapshot))
	g.Expect(err).NotTo(HaveOccurred())
	now := metav1.NewTime(time.Now())
	status := snapshot.Status(converted, snapshot.Hash(converted), nil, now)
	status.MatchedBy, status.Matching, status.ObservedAt, status.RequestID = []string{q.Name}, true, &now, "old-release"
	body, err := json.Marshal(map[string]any{"apiVersion": dlcv1alpha1.GroupVersion.String(), "kind": "DLCJobSnapshot",
		"metadata": map[string]any{"name": name, "namespace": q.Namespace, "resourceVersion": obj.ResourceVersion}, "status": &status})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k8s.Status().Patch(ctx, obj, client.RawPatch(types.ApplyPatchType, body), client.FieldOwner(controllers.FieldOwner),
		client.ForceOwnership)).To(Succeed())
}

// TestSnapshotsOfTheStatusSubresourceReleaseUpgradeInPlace: snapshots written by the release
// with the status subresource (status owned through /status by server-side apply), the CRD
// replaced, then today's manager: a quiet sync writes nothing, a changed job is one patch with
// no conflict and no field of its old status left behind, and the next quiet sync writes nothing.
func TestSnapshotsOfTheStatusSubresourceReleaseUpgradeInPlace(t *testing.T) {
	g := NewWithT(t)
	root := testenv.RepoRoot()
	setSnapshotCRD(t, filepath.Join(root, "test", "reliability", "testdata", "dlcjobsnapshots-subresource-status.yaml"))
	t.Cleanup(func() {
		setSnapshotCRD(t, filepath.Join(root, "config", "crd", "bases", "dlc.dlcsync.io_dlcjobsnapshots.yaml"))
	})

	ns := newNamespace(t)
	ids := addJobs("upgr", 20)
	// A job restarting (sub-status, reason) that later succeeds: its old status has fields the
	// new one must not keep.
	sim.Patch(ids[0], func(j *dlcsim.Job) {
		j.SubStatus, j.ReasonCode, j.ReasonMessage = "Restarting", "JobRestarting", "worker 0 restarted"
	})
	q := newQuery(ns, "upgraded", "upgr-job")
	g.Expect(k8s.Create(context.Background(), q)).To(Succeed())
	for _, id := range ids {
		job := mustJob(g, id)
		writeTheOldWay(g, q, &job.JobItem)
	}
	setSnapshotCRD(t, filepath.Join(root, "config", "crd", "bases", "dlc.dlcsync.io_dlcjobsnapshots.yaml"))

	m := startManager(t, "upgraded", false)
	waitSynced(t, ns, "upgraded", 20)
	g.Expect(snapshotWrites(m, nil)).To(BeEmpty(), "the first sync over unchanged snapshots")

	before := m.requests.Snapshot()
	finish(ids[0])
	finish(ids[1])
	syncNow(t, ns, "upgraded", 20)
	g.Expect(snapshotWrites(m, before)).To(Equal(map[string]int{"PATCH(json-patch) 200": 2}))
	s := snapshotsOf(g, ns)[ids[0]]
	g.Expect(s.Status.Phase).To(Equal(dlc.StatusSucceeded))
	g.Expect(s.Status.SubStatus).To(BeEmpty())
	g.Expect(s.Status.ReasonCode).To(BeEmpty())
	g.Expect(s.Status.ReasonMessage).To(BeEmpty())
	g.Expect(s.Status.Job.SubStatus).To(BeEmpty())
	g.Expect(s.Labels[dlcv1alpha1.LabelStatus]).To(Equal(dlc.StatusSucceeded))
	expectRight(g, ns, ids)

	before = m.requests.Snapshot()
	syncNow(t, ns, "upgraded", 20)
	g.Expect(snapshotWrites(m, before)).To(BeEmpty(), "a quiet sync after the upgrade")
}

// TestAManagerOnTheOldSnapshotCRDSaysSo: helm does not upgrade CRDs, so a new manager may meet
// the CRD of the release with the status subresource, which drops the status of a create and
// keeps the old one on a patch. The query says so (SnapshotCRDOutdated, naming the fix) instead
// of writing snapshots without a phase at every sync, and recovers once the CRD is replaced.
func TestAManagerOnTheOldSnapshotCRDSaysSo(t *testing.T) {
	g := NewWithT(t)
	root := testenv.RepoRoot()
	current := filepath.Join(root, "config", "crd", "bases", "dlc.dlcsync.io_dlcjobsnapshots.yaml")
	setSnapshotCRD(t, filepath.Join(root, "test", "reliability", "testdata", "dlcjobsnapshots-subresource-status.yaml"))
	t.Cleanup(func() { setSnapshotCRD(t, current) })

	ns := newNamespace(t)
	ids := addJobs("oldcrd", 5)
	startManager(t, "old-crd", false)
	g.Expect(k8s.Create(context.Background(), newQuery(ns, "oldcrd", "oldcrd-job"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		var q dlcv1alpha1.JobQuery
		g.Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "oldcrd"}, &q)).To(Succeed())
		c := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(dlcv1alpha1.ReasonSnapshotCRDOutdated))
		g.Expect(c.Message).To(ContainSubstring("status subresource"))
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())

	setSnapshotCRD(t, current)
	syncNow(t, ns, "oldcrd", 5)
	expectRight(g, ns, ids)
}
