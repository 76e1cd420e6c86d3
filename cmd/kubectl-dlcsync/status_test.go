package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
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
	g.Expect(lines[1]).To(Equal("├── Spec: region cn-hangzhou, every 1h0m0s, full listing every 1h0m0s, endpoint " + simURL))
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
