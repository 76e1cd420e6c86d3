package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/testenv"
	"github.com/dlcsync/dlcsync/internal/version"
)

// seedJobs adds a failed job that ran 3h30m and ended a minute ago, a running one and a succeeded
// one, all named prefix-* and created 5h5m ago.
func seedJobs(prefix string) time.Time {
	base := time.Now().UTC().Truncate(time.Second)
	sim.Upsert(
		job(prefix, "failed", "PyTorchJob", dlc.StatusFailed, base, -211*time.Minute, -time.Minute),
		job(prefix, "running", "PyTorchJob", dlc.StatusRunning, base, -20*time.Minute, 0),
		job(prefix, "done", "TFJob", dlc.StatusSucceeded, base, -50*time.Minute, -5*time.Minute),
	)
	return base
}

func TestGetJobsShowsUserDurationAndTheWideColumns(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "getjobs" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix)
	createSynced(t, newQuery(ns, "mine", prefix))

	out, _, err := runCLI(testCtx, "get", "jobs", "-n", ns)
	g.Expect(err).NotTo(HaveOccurred())
	header, rows := tableRows(t, out)
	g.Expect(header).To(Equal([]string{"NAME", "DISPLAY NAME", "USER", "TYPE", "PHASE", "GPU", "DURATION", "CREATED"}))
	g.Expect(rows).To(HaveLen(3))
	failed := rows["dlc"+prefix+"failed"]
	g.Expect(failed).NotTo(BeNil(), out)
	g.Expect(cell(t, header, failed, "DISPLAY NAME")).To(Equal(prefix + "-failed"))
	g.Expect(cell(t, header, failed, "USER")).To(Equal("alice"))
	g.Expect(cell(t, header, failed, "PHASE")).To(Equal("Failed"))
	g.Expect(cell(t, header, failed, "GPU")).To(Equal("8"))
	// From GmtRunningTime to GmtFinishTime, rendered as kubectl renders durations.
	g.Expect(cell(t, header, failed, "DURATION")).To(Equal("3h30m"))
	g.Expect(cell(t, header, failed, "CREATED")).To(MatchRegexp(`^5h[56]m$`))
	g.Expect(cell(t, header, rows["dlc"+prefix+"done"], "DURATION")).To(Equal("45m"))
	// Running: up to now, so at least the 20 minutes since it started.
	g.Expect(cell(t, header, rows["dlc"+prefix+"running"], "DURATION")).To(MatchRegexp(`^2\dm$`))

	out, _, err = runCLI(testCtx, "get", "jobs", "-n", ns, "-o", "wide")
	g.Expect(err).NotTo(HaveOccurred())
	header, rows = tableRows(t, out)
	g.Expect(header).To(ContainElements("STARTED", "FINISHED", "WORKSPACE", "REASON", "QUERY"))
	failed = rows["dlc"+prefix+"failed"]
	g.Expect(cell(t, header, failed, "STARTED")).To(MatchRegexp(`^3h3[12]m$`))
	g.Expect(cell(t, header, failed, "WORKSPACE")).To(Equal("team-ws"))
	g.Expect(cell(t, header, failed, "REASON")).To(Equal("JobFailed"))
	g.Expect(cell(t, header, failed, "QUERY")).To(Equal("mine"))
	g.Expect(cell(t, header, rows["dlc"+prefix+"running"], "FINISHED")).To(Equal("<none>"))
}

func TestGetJobsSelectsByLabelAcrossNamespaces(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "getsel" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix)
	createSynced(t, newQuery(ns, "mine", prefix))

	out, _, err := runCLI(testCtx, "get", "jobs", "-A", "-l", dlcv1alpha1.LabelStatus+"=Failed")
	g.Expect(err).NotTo(HaveOccurred())
	header, _ := tableRows(t, out)
	g.Expect(header[0]).To(Equal("NAMESPACE"))
	var mine []string
	for _, l := range strings.Split(out, "\n")[1:] {
		cells := splitCells(l)
		if len(cells) > 0 && cells[0] == ns {
			mine = append(mine, cells[1])
		}
		if len(cells) > 0 {
			g.Expect(cell(t, header, cells, "PHASE")).To(Equal("Failed"), l)
		}
	}
	g.Expect(mine).To(Equal([]string{"dlc" + prefix + "failed"}))

	// A namespace with nothing says so on stderr, as kubectl does.
	empty := newNamespace(t)
	out, errOut, err := runCLI(testCtx, "get", "jobs", "-n", empty)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(BeEmpty())
	g.Expect(errOut).To(Equal("No DLCJobSnapshot found in namespace " + empty + ".\n"))
}

func TestGetPrintsYAMLAndJSONThatParse(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "getyaml" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix)
	createSynced(t, newQuery(ns, "mine", prefix))

	out, _, err := runCLI(testCtx, "get", "jobs", "-n", ns, "-o", "yaml")
	g.Expect(err).NotTo(HaveOccurred())
	var list dlcv1alpha1.DLCJobSnapshotList
	g.Expect(yaml.UnmarshalStrict([]byte(out), &list)).To(Succeed())
	g.Expect(list.Kind).To(Equal("List"))
	g.Expect(list.Items).To(HaveLen(3))
	for _, s := range list.Items {
		g.Expect(s.Kind).To(Equal("DLCJobSnapshot"))
		g.Expect(s.APIVersion).To(Equal(dlcv1alpha1.GroupVersion.String()))
		g.Expect(s.Status.Job).NotTo(BeNil())
		g.Expect(s.ManagedFields).To(BeEmpty())
	}

	out, _, err = runCLI(testCtx, "get", "jobs", "dlc"+prefix+"failed", "-n", ns, "-o", "json")
	g.Expect(err).NotTo(HaveOccurred())
	var one dlcv1alpha1.DLCJobSnapshot
	g.Expect(yaml.UnmarshalStrict([]byte(out), &one)).To(Succeed())
	g.Expect(one.Spec.JobID).To(Equal("dlc" + prefix + "failed"))
	g.Expect(one.Status.Phase).To(Equal("Failed"))

	out, _, err = runCLI(testCtx, "get", "djs", "-n", ns, "-l", dlcv1alpha1.LabelStatus+"=Running", "-o", "name")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal("dlcjobsnapshot.dlc.dlcsync.io/dlc" + prefix + "running\n"))

	_, _, err = runCLI(testCtx, "get", "jobs", "nope", "-n", ns)
	g.Expect(err).To(MatchError(ContainSubstring("DLCJobSnapshot " + ns + "/nope not found")))
}

func TestGetQueriesShowsReadinessAndCounts(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "getq" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix)
	createSynced(t, newQuery(ns, "mine", prefix))

	out, _, err := runCLI(testCtx, "get", "queries", "-n", ns)
	g.Expect(err).NotTo(HaveOccurred())
	header, rows := tableRows(t, out)
	g.Expect(header).To(Equal([]string{"NAME", "READY", "REASON", "SNAPSHOTS", "MATCHED", "LAST SYNC", "INTERVAL", "AGE"}))
	row := rows["mine"]
	g.Expect(cell(t, header, row, "READY")).To(Equal("True"))
	g.Expect(cell(t, header, row, "REASON")).To(Equal(dlcv1alpha1.ReasonSynced))
	g.Expect(cell(t, header, row, "SNAPSHOTS")).To(Equal("3"))
	g.Expect(cell(t, header, row, "MATCHED")).To(Equal("3"))
	g.Expect(cell(t, header, row, "INTERVAL")).To(Equal("1h0m0s"))
	g.Expect(cell(t, header, row, "LAST SYNC")).To(MatchRegexp(`^\d+s$`))

	out, _, err = runCLI(testCtx, "get", "jq", "-n", ns, "-o", "wide")
	g.Expect(err).NotTo(HaveOccurred())
	header, rows = tableRows(t, out)
	g.Expect(cell(t, header, rows["mine"], "MODE")).To(Equal(dlcv1alpha1.SyncModeFull))
	g.Expect(cell(t, header, rows["mine"], "SUSPENDED")).To(Equal("false"))
	g.Expect(cell(t, header, rows["mine"], "REGION")).To(Equal("cn-hangzhou"))
}

func TestGetWatchPrintsNewSnapshots(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "getw" + strconv.FormatInt(time.Now().UnixNano(), 36)
	base := seedJobs(prefix)
	q := createSynced(t, newQuery(ns, "mine", prefix))

	ctx, cancel := context.WithCancel(testCtx)
	defer cancel()
	out := &testenv.LockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- runCLITo(ctx, out, &testenv.LockedBuffer{}, "get", "jobs", "-n", ns, "--watch") }()
	g.Eventually(func() int { return strings.Count(out.String(), "\n") }).WithTimeout(10 * time.Second).Should(Equal(4))

	sim.Upsert(job(prefix, "late", "PyTorchJob", dlc.StatusQueuing, base, 0, 0))
	patch := client.MergeFrom(q.DeepCopy())
	q.Annotations = map[string]string{dlcv1alpha1.AnnotationRequestedAt: "watch-test"}
	g.Expect(k8s.Patch(testCtx, q, patch)).To(Succeed())
	g.Eventually(out.String).WithTimeout(30 * time.Second).Should(MatchRegexp(`\ndlc` + prefix + `late +` + prefix + `-late +alice +PyTorchJob +Queuing`))
	// The header is printed once, not again for each change.
	g.Expect(strings.Count(out.String(), "DISPLAY NAME")).To(Equal(1))
	cancel()
	g.Eventually(done).WithTimeout(5 * time.Second).Should(Receive(BeNil()))
}

func TestVersionPrintsTheStampedVersion(t *testing.T) {
	g := NewWithT(t)
	out := &testenv.LockedBuffer{}
	cmd := newRootCommand(genericiooptions.IOStreams{Out: out, ErrOut: out})
	cmd.SetArgs([]string{"--version"})
	g.Expect(cmd.Execute()).To(Succeed())
	g.Expect(out.String()).To(Equal("kubectl dlcsync version " + version.Version + "\n"))
}

func TestGetRefusesUnknownResources(t *testing.T) {
	g := NewWithT(t)
	_, _, err := runCLI(testCtx, "get", "pods")
	g.Expect(err).To(MatchError(ContainSubstring(`unknown resource "pods"`)))
	_, _, err = runCLI(testCtx, "get", "queries", "--query", "x")
	g.Expect(err).To(MatchError("--query applies to jobs only"))
}
