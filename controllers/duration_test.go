package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// A running job whose Duration the API reports live (growing at every call) costs no write per
// sync: its snapshot is written once, then left alone while it runs; when the job ends, one
// write brings its final Duration.
func TestARunningJobsGrowingDurationCostsNoWritePerSync(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ids := addJobs("dlclive", 2, "PyTorchJob")
	running, done := ids[0], ids[1]
	started := dlc.FormatTime(time.Now().Add(-10 * time.Minute))
	sim.Patch(running, func(j *dlcsim.Job) { j.GmtRunningTime = started })
	sim.Patch(done, func(j *dlcsim.Job) {
		j.Status, j.GmtRunningTime, j.GmtFinishTime, j.Duration = dlc.StatusSucceeded, started, dlc.FormatTime(time.Now()), dlc.Ptr(int64(243))
	})
	sim.SetFaults(dlcsim.Faults{LiveDuration: true})
	defer sim.SetFaults(dlcsim.Faults{})
	writes := func() float64 {
		total := 0.0
		for _, op := range []string{"create", "patch", "delete"} {
			total += testutil.ToFloat64(snapshotWritesTotal.WithLabelValues(op))
		}
		return total
	}

	q := query(ns, "live")
	q.Spec.Filter.DisplayName = "dlclive"
	createReady(t, q, dlcv1alpha1.ReasonSynced)
	snaps := snapshots(g, ns)
	g.Expect(snaps).To(HaveLen(2))
	g.Expect(snaps[snapshot.Name(running)].Status.Duration).To(BeZero(), "a running job's duration is not mirrored")
	g.Expect(snaps[snapshot.Name(running)].Status.Job.GmtRunningTime).To(Equal(started))
	g.Expect(snaps[snapshot.Name(done)].Status.Duration).To(Equal(int64(243)))

	before := writes()
	for range 3 {
		// Durations count seconds: each sync sees the running job's grow.
		time.Sleep(1100 * time.Millisecond)
		q = resync(t, ns, "live", dlcv1alpha1.ReasonSynced)
		g.Expect(q.Status.LastSyncStats.Unchanged).To(Equal(int32(2)))
	}
	g.Expect(writes()-before).To(BeZero(), "a running job's growing duration was written")

	// The job ends: one write brings its phase label, phase and final duration.
	sim.Patch(running, func(j *dlcsim.Job) {
		j.Status, j.GmtFinishTime, j.Duration = dlc.StatusSucceeded, dlc.FormatTime(time.Now()), dlc.Ptr(int64(612))
	})
	before = writes()
	q = resync(t, ns, "live", dlcv1alpha1.ReasonSynced)
	g.Expect(q.Status.LastSyncStats.Updated).To(Equal(int32(1)))
	g.Expect(writes()-before).To(Equal(1.0), "one patch: the status label and the status together")
	s := snapshots(g, ns)[snapshot.Name(running)]
	g.Expect(s.Status.Phase).To(Equal(dlc.StatusSucceeded))
	g.Expect(s.Status.Duration).To(Equal(int64(612)))
}
