package memory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// failedJobs and messageBytes size the workspace of TestACachedSnapshotCostsTheSameWhateverItsJobSays:
// failed jobs whose reasonMessage is as long as a condition message may be, each its own.
const (
	failedJobs   = 2000
	messageBytes = 32 << 10
	// maxCachedBytesPerSnapshot is what the manager's resident set may grow by per cached
	// snapshot. The cache itself keeps about 1.3 KiB of one; the rest is the garbage collector's
	// headroom after decoding 2,000 objects of about 100 KiB (measured: 11.4 KiB per snapshot, and
	// 64.3 KiB while the cache kept the messages).
	maxCachedBytesPerSnapshot = 24 << 10
)

// The manager's cache keeps of a snapshot only what a sync decides with, so a workspace of failed
// jobs with long messages costs it no more than one of short messages. It once kept every
// condition message: 10,000 failed jobs with 32 KiB messages took the manager past the chart's
// 256 MiB limit, and a restarted manager died again loading the same cache. Measured on a
// restarted manager, which loads every snapshot and syncs nothing.
func TestACachedSnapshotCostsTheSameWhateverItsJobSays(t *testing.T) {
	g := NewWithT(t)
	env, k8s := testenv.StartWithClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)

	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{admin}, Seed: 5})
	rng := rand.New(rand.NewPCG(5, 5))
	for i, job := range sim.Generate(failedJobs) {
		sim.Patch(job.JobID, func(j *dlcsim.Job) {
			j.Status, j.ReasonCode, j.ReasonMessage = dlc.StatusFailed, "JobFailed", longMessage(i, rng)
		})
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)

	first := startManager(t, env)
	g.Eventually(first.Log).WithTimeout(time.Minute).Should(ContainSubstring(`"msg":"Starting workers","controller":"jobquery"`))
	idle := settledResident(t, first)
	q := testenv.JobQuery("long-messages", "failed", srv.URL)
	q.Spec.MaxJobs = failedJobs
	q.Spec.Filter.TimeRange = &dlcv1alpha1.TimeRange{Within: &metav1.Duration{Duration: 8760 * time.Hour}}
	g.Expect(testenv.CreateTenant(ctx, k8s, q.Namespace, admin.AccessKeyID, admin.AccessKeySecret)).To(Succeed())
	g.Expect(k8s.Create(ctx, q)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(first.Exited()).To(BeFalse(), "the manager exited")
		g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: q.Namespace, Name: q.Name}, q)).To(Succeed())
		ready := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(dlcv1alpha1.ReasonSynced), ready.Message)
		g.Expect(q.Status.Snapshots).To(BeEquivalentTo(failedJobs))
	}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(Succeed(), func() string { return first.Tail(40) })
	first.stop(t)

	restarted := startManager(t, env)
	g.Eventually(restarted.Log).WithTimeout(time.Minute).Should(ContainSubstring(`"msg":"Starting workers","controller":"jobquery"`))
	loaded := settledResident(t, restarted)
	g.Expect(restarted.Exited()).To(BeFalse(), "the manager exited")
	perSnapshot := (int64(loaded) - int64(idle)) / failedJobs
	t.Logf("resident set: %.1f MiB idle, %.1f MiB with %d snapshots of failed jobs with %d KiB messages cached (%.1f KiB each; peak %.1f MiB)",
		mib(idle), mib(loaded), failedJobs, messageBytes>>10, float64(perSnapshot)/1024, mib(restarted.peakResident(t)))
	g.Expect(perSnapshot).To(BeNumerically("<", maxCachedBytesPerSnapshot),
		"each cached snapshot costs the manager %d bytes: its job's message is cached", perSnapshot)
}

// longMessage is a failure message of messageBytes, different for every job, made of words as a
// real stack trace is (so that it compresses as text does).
func longMessage(i int, rng *rand.Rand) string {
	words := []string{"Traceback", "File", "line", "in", "torch", "cuda", "out", "of", "memory", "tried", "to", "allocate",
		"GiB", "worker", "rank", "exited", "with", "code", "RuntimeError", "NCCL", "timeout", "collective", "operation"}
	var b strings.Builder
	fmt.Fprintf(&b, "job %d failed: ", i)
	for b.Len() < messageBytes-32 {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
		if rng.IntN(9) == 0 {
			fmt.Fprintf(&b, "%d ", rng.Int64())
		}
	}
	return b.String()
}

// settledResident is the manager's resident set once it has stopped changing by more than 1 MiB
// over two seconds (at most 20 seconds).
func settledResident(t *testing.T, m *manager) uint64 {
	t.Helper()
	last := m.resident(t)
	for range 10 {
		time.Sleep(2 * time.Second)
		now := m.resident(t)
		if diff := int64(now) - int64(last); diff < 1<<20 && diff > -(1<<20) {
			return now
		}
		last = now
	}
	return last
}

func mib(bytes uint64) float64 { return float64(bytes) / (1 << 20) }
