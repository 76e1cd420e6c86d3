package main

import (
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

// setSimPhase moves a simulator job to a phase (ended phases with a finish time and, for Failed
// and Stopped, a reason).
func setSimPhase(g Gomega, id, phase, reason string) {
	g.Expect(sim.Patch(id, func(j *dlcsim.Job) {
		j.Status, j.ReasonCode = phase, reason
		if dlc.IsTerminal(phase) {
			j.GmtFinishTime = dlc.FormatTime(time.Now())
		}
	})).To(BeTrue())
}

// wait's exit codes tell a CI script how a job ended: 0 succeeded (SucceededReserving counts),
// 2 failed with the job's reason, 3 stopped, 4 timed out; a job failing while it is waited for
// ends the wait; --query takes the worst of its jobs; --for waits for a phase.
func TestWaitExitsWithHowTheJobEnded(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "wait" + strconv.FormatInt(time.Now().UnixNano(), 36)
	base := time.Now()
	jobs := map[string]string{}
	for _, suffix := range []string{"ok", "bad", "halt", "slow"} {
		j := job(prefix, suffix, "PyTorchJob", dlc.StatusRunning, base, -time.Hour, 0)
		sim.Upsert(j)
		jobs[suffix] = j.JobID
	}
	createSynced(t, newQuery(ns, "waited", prefix))
	resync := func() {
		_, _, err := runCLI(testCtx, "sync", "waited", "-n", ns, "--wait", "--timeout", "30s")
		g.Expect(err).NotTo(HaveOccurred())
	}

	// A failure seen while waiting.
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, _, err := runCLI(testCtx, "wait", jobs["bad"], "-n", ns, "--timeout", "60s")
		done <- result{out, err}
	}()
	time.Sleep(2 * waitPollInterval)
	setSimPhase(g, jobs["bad"], dlc.StatusFailed, "JobFailed")
	resync()
	var r result
	g.Eventually(done).WithTimeout(10 * time.Second).Should(Receive(&r))
	g.Expect(exitCode(r.err)).To(Equal(exitFailed), "%v", r.err)
	g.Expect(r.err.Error()).To(ContainSubstring("Failed: JobFailed"))
	g.Expect(r.out).To(ContainSubstring("Job " + prefix + "-bad (" + jobs["bad"] + ") Failed: JobFailed"))

	setSimPhase(g, jobs["ok"], dlc.StatusSucceededReserving, "")
	setSimPhase(g, jobs["halt"], dlc.StatusStopped, "JobStoppedByUser")
	resync()
	_, _, err := runCLI(testCtx, "wait", jobs["ok"], "-n", ns, "--timeout", "10s")
	g.Expect(err).NotTo(HaveOccurred(), "SucceededReserving has ended")
	// Waiting for Succeeded itself goes on through the reservation period.
	_, _, err = runCLI(testCtx, "wait", jobs["ok"], "-n", ns, "--for", "Succeeded", "--timeout", "2s")
	g.Expect(exitCode(err)).To(Equal(exitTimedOut), "%v", err)
	_, _, err = runCLI(testCtx, "wait", jobs["halt"], "-n", ns, "--timeout", "10s")
	g.Expect(exitCode(err)).To(Equal(exitStopped), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("Stopped: JobStoppedByUser"))

	// Still running: a timeout; but waiting for Running is over at once.
	_, _, err = runCLI(testCtx, "wait", jobs["slow"], "-n", ns, "--timeout", "2s")
	g.Expect(exitCode(err)).To(Equal(exitTimedOut), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("1 Running"))
	_, _, err = runCLI(testCtx, "wait", jobs["slow"], "-n", ns, "--for", "Running", "--timeout", "10s")
	g.Expect(err).NotTo(HaveOccurred())
	// A job not mirrored (yet): a timeout that says so.
	_, _, err = runCLI(testCtx, "wait", "dlcnosuchjob", "-n", ns, "--timeout", "2s")
	g.Expect(exitCode(err)).To(Equal(exitTimedOut), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("no snapshot yet"))

	// The query: one job failed, so 2, once the last one ends.
	setSimPhase(g, jobs["slow"], dlc.StatusSucceeded, "")
	resync()
	out, _, err := runCLI(testCtx, "wait", "--query", "waited", "-n", ns, "--timeout", "10s")
	g.Expect(exitCode(err)).To(Equal(exitFailed), "%v", err)
	g.Expect(out).To(ContainSubstring(prefix + "-slow (" + jobs["slow"] + ") Succeeded"))

	// Usage errors are 1: no job, an unknown phase, a query that does not exist.
	_, _, err = runCLI(testCtx, "wait", "-n", ns)
	g.Expect(exitCode(err)).To(Equal(1))
	// A phase misspelt on purpose, as a user would.
	_, _, err = runCLI(testCtx, "wait", jobs["slow"], "-n", ns, "--for", "Runing") //nolint:misspell // the typo is the test
	g.Expect(exitCode(err)).To(Equal(1))
	g.Expect(err.Error()).To(ContainSubstring(`--for "Runing"`)) //nolint:misspell // the typo is the test
	_, _, err = runCLI(testCtx, "wait", "--query", "nosuchquery", "-n", ns, "--timeout", "10s")
	g.Expect(exitCode(err)).To(Equal(1), "%v", err)
}
