package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

func TestStatusShowsTheQueryAsATree(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "status" + strconv.FormatInt(time.Now().UnixNano(), 36)
	base := seedJobs(prefix)
	sim.Upsert(job(prefix, "running2", "PyTorchJob", dlc.StatusRunning, base, -3*time.Minute, 0))
	createSynced(t, newQuery(ns, "mine", prefix))

	out, _, err := runCLI(testCtx, "status", "mine", "-n", ns)
	g.Expect(err).NotTo(HaveOccurred())
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	g.Expect(lines[0]).To(Equal("JobQuery " + ns + "/mine"))
	g.Expect(lines[1]).To(Equal("├── Spec: region cn-hangzhou, every 1h0m0s, full listing every 1h0m0s (default), endpoint " + simURL))
	g.Expect(out).To(ContainSubstring("├── Conditions\n"))
	g.Expect(out).To(MatchRegexp(`│   [├└]── Ready +True +Synced +\d+s +\S`))
	g.Expect(out).To(MatchRegexp(`│   [├└]── Stalled +False `))
	// Counts by status, sorted, from the snapshots themselves.
	g.Expect(out).To(ContainSubstring("├── Snapshots: 4 (status.snapshots 4, the API matched 4)\n" +
		"│   ├── Failed: 1\n│   ├── Running: 2\n│   └── Succeeded: 1\n"))
	g.Expect(out).To(MatchRegexp(`├── Last sync that changed the status: \d+s ago\n│   ├── Full sync in \S+: \d+ API calls, \d+ pages, 0 retries; created 4, updated 0, deleted 0, unchanged 0\n│   └── next sync: in \d+m\n`))
	g.Expect(out).To(MatchRegexp(`└── Failed jobs: 1\n    └── dlc` + prefix + `failed  ` + prefix +
		`-failed  PyTorchJob, finished \d+s ago  JobFailed: worker-0 exited with code 137 \(OOMKilled\)\n$`))
}

func TestStatusTreeBoundsTheFailedJobs(t *testing.T) {
	g := NewWithT(t)
	now := time.Now()
	q := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "q"}}
	sum := &snapshotSummary{byPhase: map[string]int{"Failed": maxFailedShown + 2}, total: maxFailedShown + 2}
	for i := range maxFailedShown + 2 {
		s := dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "job" + strconv.Itoa(i)}}
		finished := metav1.NewTime(now.Add(-time.Duration(i+1) * time.Minute))
		s.Status.FinishedAt, s.Status.Phase = &finished, "Failed"
		s.Status.ReasonMessage = strings.Repeat("x", 300) + "\nsecond line"
		sum.failed = append(sum.failed, s)
	}
	out := statusTree(client.ObjectKeyFromObject(q), q, sum, now)
	g.Expect(out).To(ContainSubstring("Last sync: none yet"))
	g.Expect(out).To(ContainSubstring("none yet: the controller has not synced this query"))
	g.Expect(strings.Count(out, "finished ")).To(Equal(maxFailedShown))
	// Newest first, and the rest named by the command that lists them.
	g.Expect(out).To(ContainSubstring("├── job0  <none>  <none>, finished 60s ago  " + strings.Repeat("x", maxMessage-3) + "...\n"))
	g.Expect(out).To(ContainSubstring("... and 2 more: kubectl dlcsync get jobs --query q -l dlc.dlcsync.io/status=Failed"))
	g.Expect(out).NotTo(ContainSubstring("second line"))
}

// TestStatusCountsRetainedSnapshots: a snapshot retained after its job stopped matching has no
// status.matchedBy, but still belongs to its query, by owner reference (deletionPolicy Delete) or
// as a holder (deletionPolicy Orphan); each query counts its own and no other's.
func TestStatusCountsRetainedSnapshots(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	base := time.Now().UnixNano()
	owned, held := "stown"+strconv.FormatInt(base, 36), "sthold"+strconv.FormatInt(base, 36)
	seedJobs(owned)
	seedJobs(held)
	for name, prefix := range map[string]string{"owner": owned, "holder": held} {
		q := newQuery(ns, name, prefix)
		q.Spec.Snapshot.PrunePolicy = dlcv1alpha1.PrunePolicyRetain
		if name == "holder" {
			q.Spec.Snapshot.DeletionPolicy = dlcv1alpha1.DeletionPolicyOrphan
		}
		createSynced(t, q)
		// The succeeded job stops matching; two listings confirm it, and the snapshot is retained.
		sim.Patch("dlc"+prefix+"done", func(j *dlcsim.Job) { j.DisplayName = "renamed" })
		for range 2 {
			_, _, err := runCLI(testCtx, "sync", name, "-n", ns, "--wait", "--timeout", "30s")
			g.Expect(err).NotTo(HaveOccurred())
		}
	}
	uid := func(name string) string { return string(getQuery(g, ns, name).UID) }
	var retained dlcv1alpha1.DLCJobSnapshot
	g.Expect(k8s.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "dlc" + owned + "done"}, &retained)).To(Succeed())
	g.Expect(retained.Status.Matching).To(BeFalse())
	g.Expect(retained.Status.MatchedBy).To(BeEmpty())
	g.Expect(retained.OwnerReferences).To(ConsistOf(HaveField("UID", types.UID(uid("owner")))))
	g.Expect(k8s.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "dlc" + held + "done"}, &retained)).To(Succeed())
	g.Expect(retained.Status.MatchedBy).To(BeEmpty())
	g.Expect(retained.OwnerReferences).To(BeEmpty())
	g.Expect(retained.Annotations).To(HaveKeyWithValue(dlcv1alpha1.AnnotationHolders, "holder/"+uid("holder")))

	for _, name := range []string{"owner", "holder"} {
		out, _, err := runCLI(testCtx, "status", name, "-n", ns)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(MatchRegexp(`├── Snapshots: 3 \(status.snapshots 2, the API matched 2\)\n`+
			`│   ├── Failed: 1\n│   ├── Running: 1\n│   ├── Succeeded: 1\n│   └── retained, no longer matching: 1\n`), name)
	}
}

func TestClaimedByReadsOwnerReferencesAndHolders(t *testing.T) {
	s := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{
		OwnerReferences: []metav1.OwnerReference{{Kind: "JobQuery", Name: "a", UID: "uid-a"}},
		Annotations:     map[string]string{dlcv1alpha1.AnnotationHolders: "b/uid-b, c/uid-c,broken,d/"},
	}}
	for uid, want := range map[types.UID]bool{"uid-a": true, "uid-b": true, "uid-c": true, "broken": false, "uid-d": false, "": false} {
		if got := claimedBy(s, uid); got != want {
			t.Errorf("claimedBy(%q) = %v, want %v", uid, got, want)
		}
	}
}
