// Command bench measures dlcsync on a local control plane and the simulator: the apiserver's
// write limit (one write per snapshot) and the two-write protocol it replaced, the initial sync,
// quiet and churn syncs, what each way of rewriting a snapshot costs the apiserver, manager
// memory, and the loop a user would script instead. It prints a table and writes it as Markdown
// with its figures beside it (docs/benchmarks.md and docs/benchmarks/*.svg with make bench).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dlcsync/dlcsync/internal/version"
	"github.com/dlcsync/dlcsync/test/bench"
)

func main() {
	opts, out, showVersion, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if showVersion {
		fmt.Println(version.Version)
		return
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	report, err := bench.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	report.Took = time.Since(start)
	if opts.MemoryOnly {
		printMemory(report)
		return
	}
	md := report.Markdown()
	fmt.Print(md)
	if out != "" {
		if err := writeReport(report, md, out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	missed := false
	for _, c := range report.Checks() {
		if !c.Met {
			fmt.Fprintf(os.Stderr, "bench: target missed: %s (%s)\n", c.Target, c.Got)
			missed = true
		}
	}
	if missed {
		stop()
		os.Exit(1)
	}
}

// writeReport writes the Markdown report to out and its figures beside it, at the relative paths
// the report links them by.
func writeReport(report *bench.Report, md, out string) error {
	figures, err := report.Figures()
	if err != nil {
		return err
	}
	for name, data := range figures {
		path := filepath.Join(filepath.Dir(out), filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil { //nolint:gosec // an image of the report
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := os.WriteFile(out, []byte(md), 0o644); err != nil { //nolint:gosec // a document
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}

// parseFlags reads the command line: the benchmark's options, where to write the report, and
// whether only the version is asked for.
func parseFlags(args []string) (opts bench.Options, out string, showVersion bool, err error) {
	var sizes, runs, baselineRuns string
	opts = bench.Options{Log: os.Stderr}
	fs := pflag.NewFlagSet("bench", pflag.ExitOnError)
	fs.StringVar(&sizes, "sizes", "1000,10000", "job counts to measure")
	fs.StringVar(&runs, "runs", "3,1", "runs of the write-heavy phases per size (the last value repeats)")
	fs.StringVar(&baselineRuns, "baseline-runs", "1", "how many of those runs also run the scripted baseline, per size (the last "+
		"value repeats)")
	fs.IntVar(&opts.Syncs, "syncs", 3, "quiet and churn syncs measured per run")
	fs.Float64Var(&opts.Active, "active", 0.01, "fraction of jobs that are running (and change during churn)")
	fs.Float32Var(&opts.QPS, "kube-api-qps", 1000, "QPS of every Kubernetes client, dlcsync's included")
	fs.IntVar(&opts.Burst, "kube-api-burst", 2000, "burst of every Kubernetes client")
	fs.IntVar(&opts.Writers, "writers", 8, "parallel writes of the raw and baseline writers (dlcsync writes 8 at a time)")
	fs.IntVar(&opts.MethodWrites, "method-writes", 1000, "snapshots each write method rewrites per round in the write-method "+
		"phase (two rounds, on the first size's bare-client snapshots; 0 skips it)")
	fs.StringVar(&opts.ManagerBinary, "manager", "bin/manager", "manager binary for the memory figures (empty: skip)")
	fs.StringVar(&out, "out", "", "write the Markdown report here")
	fs.StringVar(&opts.ProfileDir, "profile-dir", "", "save CPU and heap profiles of the manager and kube-apiserver here")
	fs.BoolVar(&opts.MemoryOnly, "memory-only", false, "measure only the manager's memory (no report file, no targets)")
	fleetPreset := fs.String("fleet", "full", "fleet and restart scenario: full (100 queries, 100,000 jobs, 10 namespaces, "+
		"30 s interval), small "+
		"(10 queries, 3,000 jobs, 2 namespaces: the quick look) or off; the --fleet-* flags override its sizes")
	fleet := bench.FleetOptions{}
	fs.IntVar(&fleet.Queries, "fleet-queries", 0, "JobQueries of the fleet")
	fs.IntVar(&fleet.Jobs, "fleet-jobs", 0, "jobs of the fleet (spread evenly over the queries' groups)")
	fs.IntVar(&fleet.Namespaces, "fleet-namespaces", 0, "namespaces of the fleet")
	fs.IntVar(&fleet.RawJobs, "fleet-raw-jobs", 0, "snapshots the bare client writes to measure the fleet's limit")
	fs.IntVar(&fleet.Concurrency, "fleet-concurrency", 0, "the fleet manager's --max-concurrent-syncs")
	fs.DurationVar(&fleet.Interval, "fleet-interval", 0, "every fleet query's spec.interval")
	fs.Float64Var(&fleet.Active, "fleet-active", 0, "fraction of the fleet's jobs that are running")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	_ = fs.Parse(args)
	if opts.Fleet, err = fleetOptions(*fleetPreset, fleet, fs); err != nil {
		return opts, out, showVersion, err
	}
	if opts.Sizes, err = ints(sizes); err == nil {
		opts.Runs, err = ints(runs)
	}
	if err == nil {
		opts.BaselineRuns, err = ints(baselineRuns)
	}
	if err == nil && opts.ProfileDir != "" {
		err = os.MkdirAll(opts.ProfileDir, 0o755)
	}
	return opts, out, showVersion, err
}

// printMemory prints the figures of a --memory-only run.
func printMemory(report *bench.Report) {
	for _, s := range report.Sizes {
		fmt.Printf("%d jobs: RSS %.0f MiB (peak %.0f MiB during the first sync), Go heap %.0f MiB (live at the last GC %.0f MiB), "+
			"first sync %.1f s\n", s.Jobs, s.Memory.RSSBytes/(1<<20), s.Memory.PeakRSSBytes/(1<<20), s.Memory.HeapBytes/(1<<20),
			s.Memory.LiveHeapBytes/(1<<20), s.Memory.InitialSync.Seconds())
	}
}

func ints(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a list of positive numbers", list)
		}
		out = append(out, n)
	}
	return out, nil
}

// fleetOptions is the preset's sizes with the --fleet-* flags that were set on top.
func fleetOptions(preset string, set bench.FleetOptions, fs *pflag.FlagSet) (bench.FleetOptions, error) {
	var o bench.FleetOptions
	switch preset {
	case "off":
		return o, nil
	case "small":
		o = bench.FleetOptions{Queries: 10, Jobs: 3000, Namespaces: 2, RawJobs: 1000, Concurrency: 4, Interval: 20 * time.Second, Active: 0.1}
	case "full":
		// The four measured intervals (quiet, churn, restart, failover) each last about one
		// interval; 30 s keeps 100 quiet syncs at 4 at a time far from filling it.
		o = bench.FleetOptions{Queries: 100, Jobs: 100000, Namespaces: 10, RawJobs: 5000, Concurrency: 4, Interval: 30 * time.Second, Active: 0.1}
	default:
		return o, fmt.Errorf("--fleet must be full, small or off, not %q", preset)
	}
	override := map[string]func(){
		"fleet-queries": func() { o.Queries = set.Queries }, "fleet-jobs": func() { o.Jobs = set.Jobs },
		"fleet-namespaces": func() { o.Namespaces = set.Namespaces }, "fleet-raw-jobs": func() { o.RawJobs = set.RawJobs },
		"fleet-concurrency": func() { o.Concurrency = set.Concurrency }, "fleet-interval": func() { o.Interval = set.Interval },
		"fleet-active": func() { o.Active = set.Active },
	}
	for name, apply := range override {
		if fs.Changed(name) {
			apply()
		}
	}
	if o.Queries <= 0 || o.Namespaces <= 0 || o.Jobs < o.Queries || o.Interval <= 0 || o.RawJobs <= 0 {
		return o, fmt.Errorf("fleet sizes must be positive, with at least one job per query: %+v", o)
	}
	return o, nil
}
