package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// v1List is kubectl's v1 List, its items decoded later by kind.
type v1List struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

// decodeList parses a v1 List in JSON and checks its envelope.
func decodeList(g Gomega, out string) v1List {
	var list v1List
	g.Expect(json.Unmarshal([]byte(out), &list)).To(Succeed(), out)
	g.Expect(list.APIVersion).To(Equal("v1"))
	g.Expect(list.Kind).To(Equal("List"))
	return list
}

// decodeSnapshot parses a DLCJobSnapshot strictly (a field the CRD lacks is an error).
func decodeSnapshot(g Gomega, raw []byte) dlcv1alpha1.DLCJobSnapshot {
	var s dlcv1alpha1.DLCJobSnapshot
	g.Expect(yaml.UnmarshalStrict(raw, &s)).To(Succeed(), string(raw))
	g.Expect(s.Kind).To(Equal("DLCJobSnapshot"))
	g.Expect(s.APIVersion).To(Equal(dlcv1alpha1.GroupVersion.String()))
	return s
}

func TestStatusPrintsTheQueryAndItsSnapshotsAsAList(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "statusjson" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix)
	createSynced(t, newQuery(ns, "mine", prefix))

	out, _, err := runCLI(testCtx, "status", "mine", "-n", ns, "-o", "json")
	g.Expect(err).NotTo(HaveOccurred())
	list := decodeList(g, out)
	g.Expect(list.Items).To(HaveLen(4))
	var q dlcv1alpha1.JobQuery
	g.Expect(yaml.UnmarshalStrict(list.Items[0], &q)).To(Succeed())
	g.Expect(q.Kind).To(Equal("JobQuery"))
	g.Expect(q.Name).To(Equal("mine"))
	g.Expect(q.Status.Snapshots).To(BeEquivalentTo(3))
	g.Expect(q.ManagedFields).To(BeEmpty())
	phases := map[string]string{}
	for _, raw := range list.Items[1:] {
		s := decodeSnapshot(g, raw)
		phases[s.Spec.JobID] = s.Status.Phase
	}
	g.Expect(phases).To(Equal(map[string]string{"dlc" + prefix + "failed": "Failed", "dlc" + prefix + "running": "Running",
		"dlc" + prefix + "done": "Succeeded"}))

	out, _, err = runCLI(testCtx, "status", "mine", "-n", ns, "-o", "yaml")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(yaml.Unmarshal([]byte(out), &list)).To(Succeed())
	g.Expect(list.Items).To(HaveLen(4))
}

func TestPreviewPrintsTheSnapshotsASyncWouldWrite(t *testing.T) {
	g := NewWithT(t)
	prefix := "previewjson" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix) // two PyTorchJobs and a TFJob
	manifest := previewManifest(t, strings.NewReplacer("%ENDPOINT%", simURL, "%PREFIX%", prefix).Replace(previewYAML))
	t.Setenv(envAccessKeySecret, simAdmin.AccessKeySecret)

	out, errOut, err := runCLI(testCtx, "preview", "-f", manifest, "--local", "--endpoint", simURL, "-o", "json",
		"--access-key-id", simAdmin.AccessKeyID, "--server", "https://127.0.0.1:1")
	g.Expect(err).NotTo(HaveOccurred())
	list := decodeList(g, out)
	g.Expect(list.Items).To(HaveLen(2))
	byName := map[string]dlcv1alpha1.DLCJobSnapshot{}
	for _, raw := range list.Items {
		s := decodeSnapshot(g, raw)
		byName[s.Name] = s
	}
	failed, ok := byName["dlc"+prefix+"failed"]
	g.Expect(ok).To(BeTrue(), out)
	// As the controller writes it: spec, labels, the summary fields, the job and the query.
	g.Expect(failed.Spec).To(Equal(dlcv1alpha1.DLCJobSnapshotSpec{JobID: "dlc" + prefix + "failed", RegionID: "cn-hangzhou"}))
	g.Expect(failed.Labels).To(HaveKeyWithValue(dlcv1alpha1.LabelStatus, "Failed"))
	g.Expect(failed.Status.Phase).To(Equal("Failed"))
	g.Expect(failed.Status.Username).To(Equal("alice"))
	g.Expect(failed.Status.ReasonCode).To(Equal("JobFailed"))
	g.Expect(failed.Status.MatchedBy).To(Equal([]string{"pytorch-only"}))
	g.Expect(failed.Status.Job).NotTo(BeNil())
	g.Expect(failed.Status.ContentHash).NotTo(BeEmpty())
	g.Expect(byName).To(HaveKey("dlc" + prefix + "running"))
	// The summary goes to stderr, so that stdout is only the List.
	g.Expect(errOut).To(HavePrefix("2 jobs would be mirrored as DLCJobSnapshots by JobQuery pytorch-only"))

	_, _, err = runCLI(testCtx, "preview", "-f", manifest, "--local", "-o", "table")
	g.Expect(err).To(MatchError(ContainSubstring("-o table")))
}

func TestSyncSuspendAndWaitPrintObjects(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "syncjson" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix)
	createSynced(t, newQuery(ns, "mine", prefix))

	// sync --wait -o json: the JobQuery after the sync it asked for; the progress on stderr.
	out, errOut, err := runCLI(testCtx, "sync", "mine", "-n", ns, "--wait", "--timeout", "30s", "-o", "json")
	g.Expect(err).NotTo(HaveOccurred())
	var q dlcv1alpha1.JobQuery
	g.Expect(yaml.UnmarshalStrict([]byte(out), &q)).To(Succeed(), out)
	g.Expect(q.Kind).To(Equal("JobQuery"))
	g.Expect(q.Status.LastHandledReconcileAt).NotTo(BeEmpty())
	g.Expect(q.Status.LastHandledReconcileAt).To(Equal(q.Annotations[dlcv1alpha1.AnnotationRequestedAt]))
	g.Expect(errOut).To(ContainSubstring("Sync of JobQuery " + ns + "/mine requested"))
	g.Expect(errOut).To(ContainSubstring("Ready=True Synced"))

	// A misspelt -o fails before anything is written.
	_, _, err = runCLI(testCtx, "sync", "mine", "-n", ns, "-o", "jsn")
	g.Expect(err).To(MatchError(ContainSubstring("-o jsn")))
	g.Expect(getQuery(g, ns, "mine").Annotations[dlcv1alpha1.AnnotationRequestedAt]).To(Equal(q.Status.LastHandledReconcileAt))

	// wait -o json: the job's snapshot as the wait ended, and the exit code of its end.
	out, _, err = runCLI(testCtx, "wait", "dlc"+prefix+"failed", "-n", ns, "-o", "json")
	g.Expect(exitCode(err)).To(Equal(exitFailed), "%v", err)
	s := decodeSnapshot(g, []byte(out))
	g.Expect(s.Status.Phase).To(Equal("Failed"))
	out, _, err = runCLI(testCtx, "wait", "--query", "mine", "-n", ns, "--for", "Running", "-o", "json")
	g.Expect(exitCode(err)).To(Equal(exitFailed), "%v", err)
	g.Expect(decodeList(g, out).Items).To(HaveLen(3))

	out, _, err = runCLI(testCtx, "suspend", "mine", "-n", ns, "-o", "name")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal("jobquery.dlc.dlcsync.io/mine\n"))
	g.Expect(getQuery(g, ns, "mine").Spec.Suspend).To(BeTrue())
	out, _, err = runCLI(testCtx, "resume", "mine", "-n", ns, "-o", "jsonpath={.metadata.annotations.dlc\\.dlcsync\\.io/requestedAt}")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).NotTo(BeEmpty())
	g.Expect(out).To(Equal(getQuery(g, ns, "mine").Annotations[dlcv1alpha1.AnnotationRequestedAt]))
}
