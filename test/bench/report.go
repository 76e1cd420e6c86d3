package bench

import (
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Phase is what one measured step cost.
type Phase struct {
	Duration time.Duration
	// APICalls are ListJobs requests the simulator answered.
	APICalls int
	// Writes are apiserver requests other than GET, of any resource (snapshots, JobQuery status,
	// events); SnapshotWrites, QueryWrites and Events are their parts.
	Writes, SnapshotWrites, QueryWrites, Events int
	// Changed is the number of jobs that changed before a churn sync.
	Changed int
	// Mode is how the sync listed (Full or Incremental).
	Mode string
	// SnapshotAnswers are the snapshot writes by verb and response code ("POST 201").
	SnapshotAnswers map[string]int
}

// Memory is the manager process with every snapshot cached.
type Memory struct {
	RSSBytes, HeapBytes float64
	// LiveHeapBytes is the heap the last GC found reachable.
	LiveHeapBytes float64
	// PeakRSSBytes is the largest resident set seen during the first sync (sampled every 100
	// ms); the others are read once it is over.
	PeakRSSBytes float64
	// InitialSync is the time from creating the JobQuery to its status counting every job.
	InitialSync time.Duration
	// RSS is the resident set during the first sync, sampled every 100 ms.
	RSS []Point
}

// SizeResult holds every run of one job count.
type SizeResult struct {
	Jobs, Active, Runs, BaselineRuns int
	// Raw is the wall time of the bare client writing every snapshot in one request each, per
	// run: the limit; RawTwoWrites the same for the two-write reference (create, then status).
	Raw, RawTwoWrites                  []time.Duration
	Initial, Steady, SteadyFull, Churn []Phase
	BaselineFirst, BaselineNext        []Phase
	Memory                             *Memory
	// Answers are the bare clients' snapshot writes by writer, then verb and response code.
	Answers map[string]map[string]int
	// Series are the snapshots written over time by each writer during the first run (the
	// bare clients' count, dlcsync's as its cache saw them).
	Series map[string][]Point
}

// Report is a whole benchmark run.
type Report struct {
	Options Options
	Machine string
	Sizes   []SizeResult
	Fleet   *FleetResult
	Methods *MethodResult
	Took    time.Duration
}

// addAnswers adds the answers of one phase to those of a writer.
func addAnswers(all map[string]map[string]int, writer string, answers map[string]int) map[string]map[string]int {
	if all == nil {
		all = map[string]map[string]int{}
	}
	if all[writer] == nil {
		all[writer] = map[string]int{}
	}
	for k, v := range answers {
		all[writer][k] += v
	}
	return all
}

// syncsByMode counts dlcsync's syncs by listing mode, from its metrics.
func syncsByMode() map[string]uint64 {
	out := map[string]uint64{}
	families, err := metrics.Registry.Gather()
	if err != nil {
		return out
	}
	for _, f := range families {
		if f.GetName() != "dlcsync_sync_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "mode" {
					out[l.GetValue()] += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return out
}

// lastMode is the mode whose count grew since before.
func lastMode(before map[string]uint64) string {
	for mode, n := range syncsByMode() {
		if n > before[mode] {
			return mode
		}
	}
	return ""
}

func machine() string {
	mem := "unknown memory"
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if info, err := fs.Meminfo(); err == nil && info.MemTotal != nil {
			mem = fmt.Sprintf("%.0f GiB", float64(*info.MemTotal)/(1<<20)) // MemTotal is in kB
		}
	}
	return fmt.Sprintf("%d cores, %s, %s/%s, %s", runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func median(phases []Phase, f func(Phase) float64) float64 {
	if len(phases) == 0 {
		return 0
	}
	v := make([]float64, len(phases))
	for i, p := range phases {
		v[i] = f(p)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func secs(p Phase) float64           { return p.Duration.Seconds() }
func calls(p Phase) float64          { return float64(p.APICalls) }
func writes(p Phase) float64         { return float64(p.Writes) }
func snapshotWrites(p Phase) float64 { return float64(p.SnapshotWrites) }
func queryWrites(p Phase) float64    { return float64(p.QueryWrites) }

// otherWrites are the writes of a phase that are neither snapshot nor JobQuery nor event writes.
func otherWrites(p Phase) float64 {
	return float64(p.Writes - p.SnapshotWrites - p.QueryWrites - p.Events)
}

// sumOf adds f over the phases.
func sumOf(ps []Phase, f func(Phase) float64) float64 {
	total := 0.0
	for _, p := range ps {
		total += f(p)
	}
	return total
}

// steadyClockStep is how far the bench's clock moves between two quiet syncs, and
// statusRefresh the manager's --status-refresh-interval (its default): a quiet query's
// status may be written once per refresh interval of clock, to show its freshness.
const (
	steadyClockStep = 2 * time.Minute
	statusRefresh   = 5 * time.Minute
)

func events(p Phase) float64 { return float64(p.Events) }
func perJob(p Phase) float64 { return float64(p.SnapshotWrites) / float64(max(p.Changed, 1)) }
func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// Check is one acceptance target and whether the run met it.
type Check struct {
	Target string
	Got    string
	Met    bool
}

// Targets of one write per change.
const (
	// firstSyncShare is the least share of the one-write limit a 10,000-job first sync and the
	// fleet's first syncs reach.
	firstSyncShare = 0.85
	// fleetTimeShare is the most time the fleet's first syncs take, as a share of the time the
	// two-write reference would take for as many snapshots.
	fleetTimeShare = 0.6
)

// Checks compares the run with the targets of the benchmark issue.
func (r *Report) Checks() []Check {
	var out []Check
	for _, s := range r.Sizes {
		out = append(out, sizeChecks(s)...)
	}
	return append(out, r.fleetChecks()...)
}

// sizeChecks are the targets of one job count.
func sizeChecks(s SizeResult) []Check {
	out := []Check{
		{fmt.Sprintf("%d jobs: first sync writes 1.00 snapshot write per job (one create, status included)", s.Jobs),
			fmt.Sprintf("max %.2f (%s)", maxOf(s.Initial, snapshotWrites)/float64(s.Jobs), answersText(sumAnswers(s.Initial))),
			len(s.Initial) > 0 && maxOf(s.Initial, snapshotWrites) <= float64(s.Jobs)},
		// The hourly full listing may write the JobQuery status once, to record its time
		// in status.incremental (what a restarted manager needs); never a snapshot or an event.
		{fmt.Sprintf("%d jobs: quiet sync makes 0 snapshot writes and 0 events; JobQuery status at most once per %s of clock "+
			"(freshness), the full listing at most its status write", s.Jobs, statusRefresh),
			fmt.Sprintf("max %v snapshot writes, %v other writes, %v events; %v JobQuery writes in %d quiet syncs; "+
				"full listing %v writes, %v snapshot writes",
				maxOf(s.Steady, snapshotWrites), maxOf(s.Steady, otherWrites), maxOf(s.Steady, events), sumOf(s.Steady, queryWrites),
				len(s.Steady), maxOf(s.SteadyFull, writes), maxOf(s.SteadyFull, snapshotWrites)),
			maxOf(s.Steady, snapshotWrites) == 0 && maxOf(s.Steady, otherWrites) == 0 && maxOf(s.Steady, events) == 0 &&
				sumOf(s.Steady, queryWrites) <= float64(len(s.Steady))*steadyClockStep.Seconds()/statusRefresh.Seconds()+float64(max(1, s.Runs)) &&
				maxOf(s.SteadyFull, writes) <= 1 && maxOf(s.SteadyFull, snapshotWrites) == 0 && maxOf(s.SteadyFull, events) == 0},
		{fmt.Sprintf("%d jobs: churn ≤ 1.00 snapshot write per changed job", s.Jobs),
			fmt.Sprintf("max %.2f (%s)", maxOf(s.Churn, perJob), answersText(sumAnswers(s.Churn))),
			len(s.Churn) > 0 && maxOf(s.Churn, perJob) <= 1},
	}
	if s.Jobs != 10000 {
		return out
	}
	initial := float64(s.Jobs) / median(s.Initial, secs)
	out = append(out,
		Check{fmt.Sprintf("10,000 jobs: first sync ≥ %.2f × the one-write limit (bare client, one create per snapshot)", firstSyncShare),
			fmt.Sprintf("%.0f vs %.0f objects/s (%.2f×)", initial, rawRate(s), initial/rawRate(s)), initial >= firstSyncShare*rawRate(s)},
		Check{"10,000 jobs, 100 active: incremental quiet sync ≤ 3 API calls",
			fmt.Sprintf("max %v calls", maxOf(s.Steady, calls)), maxOf(s.Steady, calls) <= 3 && s.Active == 100})
	if s.Memory != nil {
		out = append(out, Check{"10,000 snapshots cached: manager RSS ≤ 200 MiB",
			fmt.Sprintf("%.0f MiB", s.Memory.RSSBytes/(1<<20)), s.Memory.RSSBytes <= 200*(1<<20)},
			Check{"10,000-job first sync: peak manager RSS ≤ 128 MiB (issue 15)",
				fmt.Sprintf("%.0f MiB", s.Memory.PeakRSSBytes/(1<<20)), s.Memory.PeakRSSBytes <= 128*(1<<20)})
	}
	return out
}

func maxOf(phases []Phase, f func(Phase) float64) float64 {
	m := 0.0
	for _, p := range phases {
		m = max(m, f(p))
	}
	return m
}

// sumAnswers adds the snapshot writes of phases by verb and response code.
func sumAnswers(phases []Phase) map[string]int {
	out := map[string]int{}
	for _, p := range phases {
		for k, v := range p.SnapshotAnswers {
			out[k] += v
		}
	}
	return out
}

// answersText lists writes by verb and response code, most frequent first: "POST 201 ×1000,
// PATCH(json-patch) 409 ×2", or "none".
func answersText(answers map[string]int) string {
	keys := slices.Collect(maps.Keys(answers))
	slices.SortFunc(keys, func(a, b string) int {
		if answers[a] != answers[b] {
			return answers[b] - answers[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if answers[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, answers[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Markdown renders the report as docs/benchmarks.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	r.intro(&b)
	r.table(&b, sizeRows)
	r.figuresMarkdown(&b)
	r.fleetMarkdown(&b)
	r.answersMarkdown(&b)
	r.methodsMarkdown(&b)
	b.WriteString("\n## Targets\n\n| Target | Measured | Met |\n|---|---|---|\n")
	for _, c := range r.Checks() {
		met := "yes"
		if !c.Met {
			met = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Target, c.Got, met)
	}
	b.WriteString(howToRead)
	return b.String()
}

// table writes a table with a column per size.
func (r *Report) table(b *strings.Builder, rows []sizeRow) {
	b.WriteString("| Measure | " + header(r.Sizes) + " |\n|---|" + strings.Repeat("---|", len(r.Sizes)) + "\n")
	for _, row := range rows {
		cells := make([]string, len(r.Sizes))
		for i, s := range r.Sizes {
			cells[i] = row.cell(s)
		}
		fmt.Fprintf(b, "| %s | %s |\n", row.name, strings.Join(cells, " | "))
	}
}

const howToRead = `
## How to read it

- The limit (1) is what this apiserver accepts from a client that does nothing but write: one
  create per snapshot carrying its labels, spec and status (snapshots have no status subresource).
  The two-write reference (1b) is the protocol dlcsync used while they had one: a create, then the
  status applied, in the same run. dlcsync's initial sync (2) lists every page and writes each
  snapshot with one create (labels, annotations, owners, spec and status), so its ratio to (1) is
  its overhead, and its time against (1b) what the single write saves.
- A quiet sync (3) reads only the jobs created since the last sync and the running ones (by
  JobIds, 100 per call) and writes no snapshot and no event; it writes the JobQuery status only
  to refresh its freshness (` + "`lastSyncTime`" + `), at most once per ` + "`--status-refresh-interval`" + ` (5m) of clock
  (the benchmark's clock moves 2 minutes per quiet sync). Every ` + "`fullResyncInterval`" +
	` (default 1h) it lists every job instead (3b), writing no snapshot and
  at most the JobQuery status once, to record the listing's time in ` + "`status.incremental`" + ` for a restarted
  manager.
- Churn (4): a changed job costs one JSON patch (RFC 6902) carrying its labels and ` + "`replace /status`" + `,
  guarded by its resourceVersion, plus one event for the phase change; "reflected" is the time from
  the sync's start until every changed snapshot shows the new status (the sync returns after its
  writes, and the benchmark then checks each snapshot). The changed jobs are counted in the
  simulator: those the benchmark changed and any that changed on their own. The table of writes by
  verb and response code shows every snapshot write each phase sent and how the apiserver
  answered it (a 409 is a write the resourceVersion guard refused, retried at the next sync).
- The baseline (6) is the loop a CronJob with a CLI and ` + "`kubectl apply`" + ` would run: list every page,
  apply every job's whole object, status included, every interval (one server-side apply per job).
  Its later intervals write as much as its first (server-side apply of an unchanged object still
  costs a request each).
- Memory (5) is the manager binary itself (` + "`bin/manager`" + `), read from /proc and its Go metrics 10 s
  after its first sync; the peak is the largest resident set sampled every 100 ms during that
  sync. The cache holds of each snapshot only what a sync decides with (` + "`snapshot.ForCache`" + `: no
  managed fields, job data or status summary; repeated strings interned, equal label sets
  shared), a sync drops each job's data once its snapshot is written, and after a sync that
  listed 2,000 jobs or more the manager hands the burst's freed memory back to the OS; "live" is
  the heap the last GC found reachable.
`

// intro is the report's title and setup paragraph.
func (r *Report) intro(b *strings.Builder) {
	o := r.Options
	fmt.Fprintf(b, "# Benchmarks\n\nWritten by `make bench` on %s. Machine: %s. The whole run took %s.\n\n",
		time.Now().UTC().Format("2006-01-02"), r.Machine, r.Took.Round(time.Second))
	fmt.Fprintf(b, "Setup: a local kube-apiserver and etcd (envtest, the versions `hack/setup-envtest.sh` builds) and dlcsim on "+
		"loopback, all on this machine. Every Kubernetes client (dlcsync's included) uses QPS %.0f and burst %d; the bare "+
		"clients and the baseline run %d writes in parallel, as dlcsync does; each phase starts from an emptied store "+
		"and the bare client, the two-write reference and dlcsync take turns going first. %.0f%% of the jobs are running "+
		"and the rest finished; jobs were created over the last six days. Figures are medians (the upper one of an even "+
		"count) of %s runs of the write-heavy phases, %s of the baseline (two intervals of a few minutes each at 10,000 "+
		"jobs, which would not fit the 20-minute budget more often), and of %d syncs per run for quiet and churn syncs. "+
		"Writes are apiserver requests other than GET, counted on the wire with their answers; \"snapshot "+
		"writes\" are the part that touched DLCJobSnapshots.\n\n",
		o.QPS, o.Burst, o.Writers, o.Active*100, runsText(r.Sizes, func(s SizeResult) int { return s.Runs }),
		runsText(r.Sizes, func(s SizeResult) int { return s.BaselineRuns }), o.Syncs)
}

func rawRate(s SizeResult) float64 { return float64(s.Jobs) / medianDuration(s.Raw).Seconds() }

// refTime is the median time of the two-write reference.
func refTime(s SizeResult) float64 { return medianDuration(s.RawTwoWrites).Seconds() }

// sizeRow is a row of a per-size table: a measure and its cell for one size.
type sizeRow struct {
	name string
	cell func(s SizeResult) string
}

var sizeRows = []sizeRow{
	{"1. Limit: bare client, one create per snapshot (labels, spec and status)", func(s SizeResult) string {
		return fmt.Sprintf("%.1f s, **%.0f objects/s**", medianDuration(s.Raw).Seconds(), rawRate(s))
	}},
	{"1b. Two-write reference: create, then the status (dlcsync's writes until now)", func(s SizeResult) string {
		return fmt.Sprintf("%.1f s, %.0f objects/s", refTime(s), float64(s.Jobs)/refTime(s))
	}},
	{"2. dlcsync initial sync", func(s SizeResult) string {
		rate := float64(s.Jobs) / median(s.Initial, secs)
		return fmt.Sprintf("%.1f s, %.0f calls, %.0f writes (%.2f snapshot writes per job), **%.0f objects/s = %.2f × the "+
			"one-write limit**, **%.2f × the time of the two-write reference**", median(s.Initial, secs), median(s.Initial, calls),
			median(s.Initial, writes), median(s.Initial, snapshotWrites)/float64(s.Jobs), rate, rate/rawRate(s),
			median(s.Initial, secs)/refTime(s))
	}},
	{"3. Quiet sync, incremental (every interval)", func(s SizeResult) string {
		return fmt.Sprintf("%.3f s, **%.0f calls**, **%.0f writes**, %.0f events", median(s.Steady, secs), median(s.Steady, calls),
			median(s.Steady, writes), median(s.Steady, events))
	}},
	{"3b. Quiet sync, full listing (every fullResyncInterval)", func(s SizeResult) string {
		return fmt.Sprintf("%.3f s, %.0f calls, **%.0f writes**, %.0f events", median(s.SteadyFull, secs), median(s.SteadyFull, calls),
			median(s.SteadyFull, writes), median(s.SteadyFull, events))
	}},
	{"4. Churn: 1% of jobs change state", func(s SizeResult) string {
		return fmt.Sprintf("%d changed; all reflected %.3f s after the sync starts; %.0f calls, **%.2f snapshot writes per changed job**, "+
			"%.0f writes in all (with %.0f events, 1 status)", s.Active, median(s.Churn, secs), median(s.Churn, calls),
			median(s.Churn, perJob), median(s.Churn, writes), median(s.Churn, events))
	}},
	{"5. Manager memory, every snapshot cached", func(s SizeResult) string {
		if s.Memory == nil {
			return "not measured"
		}
		return fmt.Sprintf("**RSS %.0f MiB**, Go heap %.0f MiB (live %.0f MiB); during the first sync "+
			"(%.1f s, real binary) RSS peaked at %.0f MiB",
			s.Memory.RSSBytes/(1<<20), s.Memory.HeapBytes/(1<<20), s.Memory.LiveHeapBytes/(1<<20), s.Memory.InitialSync.Seconds(),
			s.Memory.PeakRSSBytes/(1<<20))
	}},
	{"6. Baseline loop, first interval", func(s SizeResult) string {
		return fmt.Sprintf("%.1f s, %.0f calls, %.0f writes", median(s.BaselineFirst, secs), median(s.BaselineFirst, calls),
			median(s.BaselineFirst, writes))
	}},
	{"6. Baseline loop, every later interval", func(s SizeResult) string {
		return fmt.Sprintf("%.1f s, %.0f calls, %.0f writes", median(s.BaselineNext, secs), median(s.BaselineNext, calls),
			median(s.BaselineNext, writes))
	}},
	{"Ratio ours/baseline, first interval (time, calls, writes)", func(s SizeResult) string {
		return ratios(s.Initial, s.BaselineFirst)
	}},
	{"Ratio ours/baseline, quiet interval (time, calls, writes)", func(s SizeResult) string {
		return ratios(s.Steady, s.BaselineNext)
	}},
	{"Ratio ours/baseline, churn interval (time, calls, writes)", func(s SizeResult) string {
		return ratios(s.Churn, s.BaselineNext)
	}},
}

// ratios compares the medians of ours and the baseline's phases: time, calls, writes.
func ratios(ours, baseline []Phase) string {
	return fmt.Sprintf("%s, %s, %s", ratio(median(ours, secs), median(baseline, secs)),
		ratio(median(ours, calls), median(baseline, calls)), ratio(median(ours, writes), median(baseline, writes)))
}

func header(sizes []SizeResult) string {
	h := make([]string, len(sizes))
	for i, s := range sizes {
		h[i] = fmt.Sprintf("%d jobs (%d running)", s.Jobs, s.Active)
	}
	return strings.Join(h, " | ")
}

func runsText(sizes []SizeResult, runs func(SizeResult) int) string {
	parts := make([]string, len(sizes))
	for i, s := range sizes {
		parts[i] = fmt.Sprintf("%d (%d jobs)", runs(s), s.Jobs)
	}
	return strings.Join(parts, ", ")
}

// answerRows are the rows of the table of snapshot writes by verb and response code.
var answerRows = []sizeRow{
	{"Bare client, one write per snapshot (every run)", func(s SizeResult) string { return answersText(s.Answers[writerBare]) }},
	{"Two-write reference (every run)", func(s SizeResult) string { return answersText(s.Answers[writerRef]) }},
	{"dlcsync first sync", func(s SizeResult) string { return phasesAnswers(s.Initial, "syncs") }},
	{"dlcsync quiet syncs, incremental", func(s SizeResult) string { return phasesAnswers(s.Steady, "syncs") }},
	{"dlcsync quiet syncs, full listing", func(s SizeResult) string { return phasesAnswers(s.SteadyFull, "syncs") }},
	{"dlcsync churn", func(s SizeResult) string {
		return fmt.Sprintf("%d jobs changed in %s", int(sumOf(s.Churn, changed)), phasesAnswers(s.Churn, "syncs"))
	}},
	{"Baseline, first interval", func(s SizeResult) string { return phasesAnswers(s.BaselineFirst, "intervals") }},
	{"Baseline, later interval", func(s SizeResult) string { return phasesAnswers(s.BaselineNext, "intervals") }},
}

func changed(p Phase) float64 { return float64(p.Changed) }

// phasesAnswers is the snapshot writes of phases by verb and response code, with their count.
func phasesAnswers(phases []Phase, what string) string {
	return fmt.Sprintf("%d %s: %s", len(phases), what, answersText(sumAnswers(phases)))
}

// answersMarkdown is the section that accounts for every snapshot write.
func (r *Report) answersMarkdown(b *strings.Builder) {
	b.WriteString("\n## Snapshot writes by verb and response code\n\nEvery request that wrote, or tried to write, a " +
		"DLCJobSnapshot, summed over the runs and counted on the wire with the apiserver's answer: the verb (for a PATCH its " +
		"type: json-patch, merge-patch, apply, strategic) and the response code (0: no answer). A 409 is a write that " +
		"its resourceVersion precondition refused.\n\n")
	r.table(b, answerRows)
	f := r.Fleet
	if f == nil {
		return
	}
	b.WriteString("\n| Fleet phase | Snapshot writes |\n|---|---|\n")
	fmt.Fprintf(b, "| Every query's first sync (%d distinct snapshots) | %s |\n", f.Snapshots, answersText(f.InitialAnswers))
	for _, p := range []struct {
		name  string
		phase FleetPhase
	}{
		{"Quiet interval", f.Quiet},
		{fmt.Sprintf("Churn interval (%d jobs changed by the benchmark, %d in all)", f.Churned, f.Changed), f.Churn},
		{"First syncs after a restart", f.Restart},
		{"First syncs after a leader failover", f.Failover},
	} {
		fmt.Fprintf(b, "| %s | %d syncs: %s |\n", p.name, p.phase.Syncs, answersText(p.phase.SnapshotAnswers))
	}
}

// methodsMarkdown is the section on the cost of each way to rewrite a snapshot.
func (r *Report) methodsMarkdown(b *strings.Builder) {
	m := r.Methods
	if m == nil || len(m.Methods) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## Write-method cost\n\nFour ways to rewrite an existing snapshot's labels and status in one request, each "+
		"guarded by the snapshot's resourceVersion, on %d snapshots the bare client wrote: each method rewrites every one of "+
		"them once per round, %d rounds, the methods' order reversed in the second; every write flips the phase (label and "+
		"status) so that none is a no-op. CPU is the user and system time (utime+stime in /proc/<pid>/stat) of kube-apiserver "+
		"and of etcd, read before and after each method's writes (idle, kube-apiserver used %.0f ms of CPU per second, "+
		"which the figures include); %d writes in parallel. %s\n\n", m.Snapshots, m.Rounds,
		float64(m.IdleAPIServerCPU.Microseconds())/1000, r.Options.Writers, preconditionText(m))
	b.WriteString("| Method | Writes | kube-apiserver CPU per write | × the cheapest | etcd CPU per write | Request body | " +
		"Writes/s | Answers |\n|---|---|---|---|---|---|---|---|\n")
	cheapest := m.cheapest().CPUPerWrite()
	for _, c := range m.Methods {
		fmt.Fprintf(b, "| %s | %d | **%.2f ms** | %.2f | %.2f ms | %.1f KiB | %.0f | %s |\n", c.Name, c.Writes, c.CPUPerWrite(),
			c.CPUPerWrite()/cheapest, float64(c.EtcdCPU.Microseconds())/1000/float64(max(c.Writes, 1)),
			float64(c.Bytes)/float64(max(c.Writes, 1))/1024, float64(c.Writes)/c.Wall.Seconds(), answersText(c.Answers))
	}
}

// preconditionText says how the apiserver answered a JSON patch with a stale resourceVersion.
func preconditionText(m *MethodResult) string {
	text := fmt.Sprintf("A JSON patch whose resourceVersion precondition is stale was answered %d (%s) with "+
		"`{\"op\":\"replace\",\"path\":\"/metadata/resourceVersion\",...}` and %d (%s) with a `test` op; the measured JSON "+
		"patches use `%s`.", m.StaleReplace, http.StatusText(m.StaleReplace), m.StaleTest, http.StatusText(m.StaleTest), m.PreconditionOp)
	if m.StaleReplace != http.StatusConflict && m.StaleTest != http.StatusConflict {
		text += " **Neither op was answered 409: the JSON patch was not guarded.**"
	}
	return text
}

// answersTotal is how many writes answers counts.
func answersTotal(answers map[string]int) int {
	n := 0
	for _, v := range answers {
		n += v
	}
	return n
}
