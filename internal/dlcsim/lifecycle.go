package dlcsim

import (
	"context"
	"slices"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// Lifecycle makes jobs move over time and new jobs arrive. Step applies everything due by the
// server's clock, so tests drive it with a fake clock and the binary with a ticker.
type Lifecycle struct {
	// SubmitPerMinute is the rate of new jobs (created by random users).
	SubmitPerMinute float64 `json:"submitPerMinute"`
	// Pace scales every dwell time: 1 keeps jobs in each state for seconds to a couple of minutes
	// (a demo), 60 for minutes to hours.
	Pace float64 `json:"pace"`
	// UpdatesPerMinute is the rate of UpdateJob-like changes to jobs that are not finished: one
	// of accessibility, images, spot settings, node assignment or priority (see JobUpdate).
	UpdatesPerMinute float64 `json:"updatesPerMinute"`
	// UpdateFinished lets those changes hit finished jobs too. Whether UpdateJob accepts a
	// finished job is not documented; by default dlcsim assumes it does not.
	UpdateFinished bool `json:"updateFinished"`
}

// dwell is the time range (seconds, at pace 1) a job stays in a state before its next step.
var dwell = map[string][2]int{
	dlc.StatusCreating: {2, 6}, dlc.StatusQueuing: {3, 20}, dlc.StatusEnvPreparing: {3, 10}, dlc.StatusSanityChecking: {3, 8},
	dlc.StatusRunning: {20, 120}, dlc.StatusRestarting: {3, 8}, dlc.StatusStopping: {2, 5},
	dlc.StatusSucceededReserving: {5, 15}, dlc.StatusFailedReserving: {5, 15},
}

// lifecycleState is the schedule of the lifecycle.
type lifecycleState struct {
	cfg        Lifecycle
	nextAt     map[string]time.Time
	lastSubmit time.Time
	lastUpdate time.Time
	carry      float64
	// updateCarry accumulates UpdatesPerMinute between steps.
	updateCarry float64
}

// EnableLifecycle starts moving jobs on each Step.
func (s *Server) EnableLifecycle(cfg Lifecycle) {
	if cfg.Pace <= 0 {
		cfg.Pace = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.life = &lifecycleState{cfg: cfg, nextAt: map[string]time.Time{}, lastSubmit: s.clock.Now(), lastUpdate: s.clock.Now()}
}

// Step applies every transition due by now and submits the jobs due since the last Step. It
// returns the number of jobs changed or added.
func (s *Server) Step() int {
	s.stepMu.Lock()
	defer s.stepMu.Unlock()
	s.mu.Lock()
	life := s.life
	s.mu.Unlock()
	if life == nil {
		return 0
	}
	now := s.clock.Now()
	changed := 0
	var updates []Job
	for _, j := range s.store.all() {
		if dlc.IsTerminal(j.Status) {
			delete(life.nextAt, j.JobID)
			continue
		}
		next, ok := life.nextAt[j.JobID]
		if !ok {
			since := parseTime(j.GmtModifiedTime, now)
			next = since.Add(s.gen.dwellFor(j.Status, life.cfg.Pace))
			life.nextAt[j.JobID] = next
		}
		// A long Step (or a large clock jump) may pass several transitions at once.
		// The history is shared with the stored job; setStatus writes into it.
		j.StatusHistory = slices.Clone(j.StatusHistory)
		moved := false
		for !dlc.IsTerminal(j.Status) && !next.After(now) {
			s.gen.transition(&j.JobItem, next)
			next = next.Add(s.gen.dwellFor(j.Status, life.cfg.Pace))
			moved = true
		}
		life.nextAt[j.JobID] = next
		if moved {
			updates = append(updates, j)
			changed++
		}
	}
	if life.cfg.SubmitPerMinute > 0 {
		life.carry += now.Sub(life.lastSubmit).Minutes() * life.cfg.SubmitPerMinute
		life.lastSubmit = now
		for ; life.carry >= 1; life.carry-- {
			updates = append(updates, s.gen.newJob(now, ""))
			changed++
		}
	}
	if changed > 0 {
		s.store.upsert(updates...)
	}
	return changed + s.stepUpdates(life, now)
}

// stepUpdates applies the UpdateJob-like changes due since the last Step, each to a job picked
// at random (deterministically) among those it may change.
func (s *Server) stepUpdates(life *lifecycleState, now time.Time) int {
	if life.cfg.UpdatesPerMinute <= 0 {
		return 0
	}
	life.updateCarry += now.Sub(life.lastUpdate).Minutes() * life.cfg.UpdatesPerMinute
	life.lastUpdate = now
	n := 0
	var candidates []string
	if life.updateCarry >= 1 {
		candidates = s.store.ids(func(j *Job) bool { return life.cfg.UpdateFinished || !dlc.IsTerminal(j.Status) })
	}
	for ; life.updateCarry >= 1; life.updateCarry-- {
		if len(candidates) == 0 {
			continue
		}
		s.gen.mu.Lock()
		id := candidates[s.gen.pick(len(candidates))]
		s.gen.mu.Unlock()
		j, ok := s.store.get(id)
		if !ok {
			continue
		}
		u := s.gen.randomUpdate(&j)
		if _, ok, err := s.UpdateJob(j.JobID, u); ok && err == nil {
			n++
		}
	}
	return n
}

// RunLifecycle calls Step every tick until ctx ends.
func (s *Server) RunLifecycle(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Step()
		}
	}
}

func parseTime(v string, fallback time.Time) time.Time {
	if t, err := time.Parse(dlc.TimeLayout, v); err == nil {
		return t
	}
	return fallback
}

func (g *generator) dwellFor(status string, pace float64) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := dwell[status]
	if !ok {
		r = [2]int{5, 10}
	}
	secs := float64(r[0]+g.pick(r[1]-r[0]+1)) * pace
	return time.Duration(secs * float64(time.Second))
}

// transition moves a job one plausible step on at time t.
func (g *generator) transition(it *dlc.JobItem, t time.Time) {
	g.mu.Lock()
	roll := g.pick(100)
	failure := failures[g.pick(len(failures))]
	g.mu.Unlock()
	switch it.Status {
	case dlc.StatusCreating:
		setStatus(it, dlc.StatusQueuing, "", "", t)
	case dlc.StatusQueuing, dlc.StatusBidding:
		// Leaving the queue is when the scheduler decides about idle resources.
		g.schedule(it)
		setStatus(it, dlc.StatusEnvPreparing, "", "", t)
	case dlc.StatusEnvPreparing:
		if roll < 10 {
			setStatus(it, dlc.StatusSanityChecking, "", "", t)
		} else {
			setStatus(it, dlc.StatusRunning, "", "", t)
		}
	case dlc.StatusSanityChecking, dlc.StatusRestarting:
		setStatus(it, dlc.StatusRunning, "", "", t)
	case dlc.StatusRunning:
		switch {
		case roll < 60:
			setStatus(it, dlc.StatusSucceeded, "JobSucceeded", "Job has succeeded.", t)
		case roll < 68:
			setStatus(it, dlc.StatusSucceededReserving, "JobSucceeded", "Job has succeeded; resources are reserved.", t)
		case roll < 82:
			setStatus(it, dlc.StatusFailed, failure.code, failure.message, t)
		case roll < 86:
			setStatus(it, dlc.StatusFailedReserving, failure.code, failure.message, t)
		case roll < 93:
			setStatus(it, dlc.StatusStopping, "JobStoppedByUser", "Job is being stopped by user.", t)
		default:
			setStatus(it, dlc.StatusRestarting, "JobRestarting", "Worker-0 was preempted; the job restarts.", t)
		}
	case dlc.StatusSucceededReserving:
		setStatus(it, dlc.StatusSucceeded, it.ReasonCode, "Job has succeeded.", t)
	case dlc.StatusFailedReserving:
		setStatus(it, dlc.StatusFailed, it.ReasonCode, it.ReasonMessage, t)
	case dlc.StatusStopping:
		setStatus(it, dlc.StatusStopped, "JobStoppedByUser", "Job is stopped by user.", t)
	}
}
