package controllers

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

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

// Malformed API data: the good jobs are mirrored exactly, each bad one is cut, sanitised or
// skipped with a condition that names it, and a body that cannot be read changes nothing.
func TestMalformedAPIDataIsMirroredSafelyOrReported(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	longID := "dlc" + strings.Repeat("x", 300)
	jobs := []string{
		jobJSON("dlcgood1", ""),
		jobJSON("", ""), // no ID
		// A failed job with a 1 MiB message and a 1 MiB command.
		strings.Replace(jobJSON("dlcbig1", `,"ReasonMessage":"`+strings.Repeat("m", 1<<20)+`","UserCommand":"`+strings.Repeat("a", 1<<20)+`"`),
			`"Status":"Running"`, `"Status":"Failed"`, 1),
		jobJSON("dlcutf1", `,"ReasonMessage":"bad `+"\xff\xfe"+` bytes"`),     // not UTF-8
		jobJSON("Job_ID/Not A Name", ""),                                      // not an object name
		jobJSON(longID, ""),                                                   // longer than spec.jobId allows
		jobJSON("dlctypes1", `,"Priority":"7","Duration":"12","NodeCount":3`), // numbers as strings and back
	}
	var mode atomic.Int32
	url := fixedAPI(t, func() string {
		switch mode.Load() {
		case 1: // a type no lenient decoder can read
			return `{"TotalCount":1,"RequestId":"r","Jobs":[{"JobId":"dlcgood1","Priority":"high"}]}`
		case 2: // the same ID twice with different data: the listing moved
			return `{"TotalCount":2,"RequestId":"r","Jobs":[` + jobJSON("dlcgood1", "") + `,` +
				jobJSON("dlcgood1", `,"Status":"Failed"`) + `]}`
		}
		return fmt.Sprintf(`{"TotalCount":%d,"RequestId":"r","Jobs":[%s]}`, len(jobs), strings.Join(jobs, ","))
	})
	q := query(ns, "odd")
	q.Spec.Endpoint = url
	q = createReady(t, q, dlcv1alpha1.ReasonJobsSkipped)
	ready := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(ready.Message).To(ContainSubstring("skipped 1 job(s) the API sent without a JobId"))
	g.Expect(ready.Message).To(ContainSubstring("could not write the snapshot of 1 job(s): " + longID[:20]))

	snaps := snapshots(g, ns)
	g.Expect(snaps).To(HaveLen(5))
	g.Expect(q.Status.Snapshots).To(Equal(int32(5)), "status.snapshots counts the jobs mirrored")
	g.Expect(snaps["dlcgood1"].Status.Job.DisplayName).To(Equal("odd-dlcgood1"))
	// Every job is mirrored: the long message is cut to what the CRD accepts, visibly, and the
	// phase and conditions say Failed; the command is redacted by default.
	big := snaps["dlcbig1"].Status
	g.Expect(big.Phase).To(Equal("Failed"))
	g.Expect(meta.IsStatusConditionTrue(big.Conditions, dlcv1alpha1.ConditionFailed)).To(BeTrue())
	g.Expect(len(big.Job.ReasonMessage)).To(BeNumerically("<=", snapshot.MaxStringBytes))
	g.Expect(big.Job.ReasonMessage).To(HaveSuffix("[cut by dlcsync: 1048576 bytes]"))
	g.Expect(big.Job.UserCommand).NotTo(ContainSubstring("aaaa"))
	// Invalid bytes are replaced (a run of them by one U+FFFD); what reaches the snapshot is valid UTF-8.
	g.Expect(snaps["dlcutf1"].Status.Job.ReasonMessage).To(Equal("bad \uFFFD bytes"))
	odd := snaps[snapshot.Name("Job_ID/Not A Name")]
	g.Expect(odd.Spec.JobID).To(Equal("Job_ID/Not A Name"))
	g.Expect(validation.IsDNS1123Subdomain(odd.Name)).To(BeEmpty())
	g.Expect(*snaps["dlctypes1"].Status.Job.Priority).To(Equal(int32(7)))
	g.Expect(snaps["dlctypes1"].Status.Job.NodeCount).To(Equal("3"))
	NewWithT(t).Eventually(func() []string {
		evs := events(g, ns)
		reasons := make([]string, 0, len(evs))
		for _, e := range evs {
			reasons = append(reasons, e.Reason)
		}
		return reasons
	}).WithTimeout(10 * time.Second).Should(ContainElement(dlcv1alpha1.ReasonJobsSkipped))

	// A body with a type that cannot be read: nothing written, nothing pruned, a clear reason.
	before := resourceVersions(g, ns)
	mode.Store(1)
	q = resync(t, ns, "odd", dlcv1alpha1.ReasonBadResponse)
	g.Expect(meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady).Message).To(ContainSubstring("Priority"))
	g.Expect(resourceVersions(g, ns)).To(Equal(before))

	// One ID twice with different data: the listing is inconsistent, nothing changes.
	mode.Store(2)
	resync(t, ns, "odd", dlcv1alpha1.ReasonInconsistentListing)
	g.Expect(resourceVersions(g, ns)).To(Equal(before))
}

// A skipped list longer than the 1 KiB a condition message keeps is reported once: the next
// syncs, which skip the same jobs, compare it with what the condition could store of it.
func TestASkippedListLongerThanTheConditionIsReportedOnce(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	// Three IDs longer than spec.jobId allows: the apiserver refuses their snapshots, and the
	// message naming them is longer than 1 KiB.
	jobs := []string{jobJSON("dlcskipok", "")}
	for i := range 3 {
		jobs = append(jobs, jobJSON(fmt.Sprintf("dlcskip%d%s", i, strings.Repeat("x", 300)), ""))
	}
	q := query(ns, "skipping")
	q.Spec.Endpoint = fixedAPI(t, func() string {
		return fmt.Sprintf(`{"TotalCount":%d,"RequestId":"r","Jobs":[%s]}`, len(jobs), strings.Join(jobs, ","))
	})
	got := createReady(t, q, dlcv1alpha1.ReasonJobsSkipped)
	g.Expect(meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady).Message).
		To(ContainSubstring("could not write the snapshot of 3 job(s): dlcskip0"))
	// Note: the event recorder turns a repeat of an event into a series on it (count 2 and up)
	// or, once the query's resourceVersion changed, into another Event: the emissions are the
	// sum of both.
	skippedEmissions := func(g Gomega) int32 {
		var n int32
		for _, e := range events(g, ns) {
			if e.Reason != dlcv1alpha1.ReasonJobsSkipped || e.Regarding.Name != "skipping" {
				continue
			}
			if e.Series != nil {
				n += e.Series.Count
			} else {
				n++
			}
		}
		return n
	}
	g.Eventually(skippedEmissions).WithTimeout(10 * time.Second).Should(BeEquivalentTo(1))

	resync(t, ns, "skipping", dlcv1alpha1.ReasonJobsSkipped)
	resync(t, ns, "skipping", dlcv1alpha1.ReasonJobsSkipped)
	g.Consistently(skippedEmissions).WithTimeout(3*time.Second).WithPolling(200*time.Millisecond).
		Should(BeEquivalentTo(1), "JobsSkipped emitted again by syncs that skipped the same jobs")
}
