// Package bench measures dlcsync against the limit of the apiserver and against the loop a user
// would otherwise script, on a local control plane (envtest) and the simulator. cmd/bench runs it;
// `make bench` writes docs/benchmarks.md from it. It lives under test/ because it drives the
// controllers package from outside, as the other whole-system tests do.
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/controllers"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// Options sizes a benchmark run.
type Options struct {
	// Sizes are the job counts to measure (1,000 and 10,000).
	Sizes []int
	// Runs is how many times the write-heavy phases (raw, initial sync) run per size, indexed
	// like Sizes; the last value repeats.
	Runs []int
	// BaselineRuns is how many of those runs also run the scripted baseline (two intervals of
	// list-and-apply-everything, the slowest phase), indexed like Sizes.
	BaselineRuns []int
	// Syncs is how many steady-state and churn syncs each run measures.
	Syncs int
	// Active is the fraction of jobs that are not terminal (and change during churn).
	Active float64
	// QPS and Burst are the Kubernetes client settings of every writer, dlcsync's included.
	QPS   float32
	Burst int
	// Writers is the parallelism of the raw and baseline writers (dlcsync writes 8 at a time).
	Writers int
	// MethodWrites is how many snapshots the write-method phase rewrites with each method per
	// round (0 skips the phase).
	MethodWrites int
	// ManagerBinary is the manager to run for the memory figures ("" skips them).
	ManagerBinary string
	// MemoryOnly measures the manager's memory and nothing else (a quick look).
	MemoryOnly bool
	// ProfileDir, when set, receives CPU and heap profiles of the manager (binary and in-process)
	// and CPU profiles of kube-apiserver.
	ProfileDir string
	// Fleet sizes the fleet and restart scenario (Queries 0: skipped).
	Fleet FleetOptions
	// Log receives progress lines.
	Log io.Writer
}

var admin = dlcsim.Identity{AccessKeyID: "bench-key", AccessKeySecret: "bench-secret-not-a-real-one", UserID: "1001",
	Username: queryName, Admin: true}

// queryName names the benchmark's JobQueries.
const queryName = "bench"

// Run measures every size and returns the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	env, cfg, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	defer func() { _ = env.Stop() }()
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	counter := testenv.NewRequestCounter()
	counted := counter.Instrument(cfg)
	direct, err := client.New(counted, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return nil, err
	}
	b := &bencher{opts: opts, cfg: counted, counter: counter, k8s: direct, started: time.Now(),
		etcd: etcdKV{url: env.ControlPlane.Etcd.URL.String(), hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}}
	report := &Report{Options: opts, Machine: machine()}
	defer func() { report.Methods = b.methods }()
	for i, n := range opts.Sizes {
		runs := opts.Runs[min(i, len(opts.Runs)-1)]
		baselineRuns := min(runs, opts.BaselineRuns[min(i, len(opts.BaselineRuns)-1)])
		size, err := b.size(ctx, env, n, runs, baselineRuns)
		if err != nil {
			return report, fmt.Errorf("%d jobs: %w", n, err)
		}
		report.Sizes = append(report.Sizes, *size)
	}
	if opts.Fleet.Queries > 0 && !opts.MemoryOnly {
		fleet, err := b.fleet(ctx, env)
		if err != nil {
			return report, fmt.Errorf("fleet: %w", err)
		}
		report.Fleet = fleet
	}
	return report, nil
}

type bencher struct {
	opts    Options
	cfg     *rest.Config
	counter *testenv.RequestCounter
	k8s     client.Client
	etcd    etcdKV
	started time.Time
	seq     int
	// filled are the namespaces that may still hold snapshots.
	filled []string
	// methods is the write-method phase, run once, on the first bare client's snapshots.
	methods *MethodResult
}

// logf prints a progress line, with the time since the bench started.
func (b *bencher) logf(format string, args ...any) {
	if b.opts.Log != nil {
		_, _ = fmt.Fprintf(b.opts.Log, "[bench %s] "+format+"\n", append([]any{time.Since(b.started).Round(time.Second)}, args...)...)
	}
}

// workload is a simulator holding n jobs created over the last six days, a fraction of them
// running and the rest finished.
type workload struct {
	sim    *dlcsim.Server
	url    string
	jobs   []dlc.JobItem
	active []string
	lister dlc.Lister
}

func newWorkload(n int, active float64) (*workload, func(), error) {
	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{admin}, Seed: uint64(n)})
	generated := sim.Generate(n)
	now := time.Now()
	nActive := int(math.Ceil(float64(n) * active))
	w := &workload{sim: sim}
	for i := range generated {
		j := &generated[i]
		j.GmtCreateTime = dlc.FormatTime(now.Add(-time.Duration(i+1) * (6 * 24 * time.Hour / time.Duration(n))))
		// The credential's own jobs, so that the query (showOwn: true) lists every one of them.
		j.UserID, j.Username = admin.UserID, admin.Username
		switch {
		case i < nActive:
			j.Status, j.GmtFinishTime = dlc.StatusRunning, ""
			w.active = append(w.active, j.JobID)
		case !dlc.IsTerminal(j.Status):
			j.Status = dlc.StatusSucceeded
		}
	}
	sim.Upsert(generated...)
	srv := httptest.NewServer(sim.Handler())
	w.url = srv.URL
	w.jobs = jobItems(sim.Jobs())
	lister, err := dlc.NewClient(dlc.Config{RegionID: regionID, Endpoint: srv.URL,
		Static: &dlc.StaticCredentials{AccessKeyID: admin.AccessKeyID, AccessKeySecret: admin.AccessKeySecret}})
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	w.lister = lister
	return w, srv.Close, nil
}

// churn moves every running job to Restarting and back, one step per call.
func (w *workload) churn(step int) int {
	to := dlc.StatusRestarting
	if step%2 == 0 {
		to = dlc.StatusRunning
	}
	now := dlc.FormatTime(time.Now())
	for _, id := range w.active {
		w.sim.Patch(id, func(j *dlcsim.Job) { j.Status, j.GmtModifiedTime = to, now })
	}
	return len(w.active)
}

func (w *workload) apiCalls() int { return int(w.sim.Stats().Requests) }

// size measures one job count.
func (b *bencher) size(ctx context.Context, env *envtest.Environment, n, runs, baselineRuns int) (*SizeResult, error) {
	w, stop, err := newWorkload(n, b.opts.Active)
	if err != nil {
		return nil, err
	}
	defer stop()
	res := &SizeResult{Jobs: n, Active: len(w.active), Runs: runs, BaselineRuns: baselineRuns}
	if b.opts.MemoryOnly {
		runs = 0
	}
	// The first writes of a process to a fresh apiserver are slower (connections, caches,
	// the CRD's first objects); a warm-up keeps that out of whichever phase would come first.
	warmup, err := b.namespace(ctx, "warmup")
	if err != nil {
		return nil, err
	}
	if _, err := rawCreate(ctx, b.k8s, warmup, w.jobs[:min(len(w.jobs), 300*min(runs, 1))], b.opts.Writers, oneWrite, nil); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	for run := 1; run <= runs; run++ {
		if err := b.sizeRun(ctx, w, res, run, run <= baselineRuns); err != nil {
			return nil, err
		}
	}
	if b.opts.ManagerBinary != "" {
		if err := b.clear(ctx); err != nil {
			return nil, err
		}
		b.logf("%d jobs: manager memory", n)
		mem, err := b.memory(ctx, env, w, n)
		if err != nil {
			return nil, fmt.Errorf("memory: %w", err)
		}
		res.Memory = mem
	}
	return res, nil
}

// The writers of a size's runs, as the series of the writes-over-time figure name them.
const (
	writerOurs = "dlcsync"
	writerBare = "bare client, one write per snapshot"
	writerRef  = "two-write reference"
)

// sizeRun is one run of a size: the bare client, the two-write reference and dlcsync, each on
// an emptied store, then (when asked) the scripted baseline. The first run records the
// writes-over-time series.
func (b *bencher) sizeRun(ctx context.Context, w *workload, res *SizeResult, run int, baseline bool) error {
	record := run == 1
	if record {
		res.Series = map[string][]Point{}
	}
	phases := []struct {
		name string
		run  func() error
	}{
		{writerBare, func() error { return b.bare(ctx, w, res, writerBare, &res.Raw, record) }},
		{writerRef, func() error { return b.bare(ctx, w, res, writerRef, &res.RawTwoWrites, record) }},
		{writerOurs, func() error { return b.ours(ctx, w, res, record) }},
	}
	for i := range phases {
		// Every phase leaves its objects in etcd until the store is cleared, and the
		// first phase after a clear may find the apiserver's heap in a different state; the order
		// rotates from run to run so that no writer always goes first.
		p := phases[(i+run-1)%len(phases)]
		if err := b.clear(ctx); err != nil {
			return err
		}
		b.logf("%d jobs, run %d/%d: %s", len(w.jobs), run, res.Runs, p.name)
		if err := p.run(); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	if !baseline {
		return nil
	}
	if err := b.clear(ctx); err != nil {
		return err
	}
	b.logf("%d jobs, run %d/%d: scripted baseline", len(w.jobs), run, res.Runs)
	return b.baseline(ctx, w, res)
}

// bare writes every job's snapshot with a bare client into a new namespace and records the
// wall time in times (and, when record is set, its series). The first bare client of the
// one-write kind leaves its snapshots to the write-method phase.
func (b *bencher) bare(ctx context.Context, w *workload, res *SizeResult, name string, times *[]time.Duration, record bool) error {
	write, profile := oneWrite, "raw"
	if name == writerRef {
		write, profile = twoWrites, "raw-two-writes"
	}
	ns, err := b.namespace(ctx, "raw")
	if err != nil {
		return err
	}
	stopProfile, err := b.profileCPU(fmt.Sprintf("%s-%d-%d-cpu.pprof", profile, len(w.jobs), len(*times)+1))
	if err != nil {
		return err
	}
	var done atomic.Int64
	stopSeries := sample(seriesEvery, func() float64 { return float64(done.Load()) })
	before := b.counter.Snapshot()
	elapsed, err := rawCreate(ctx, b.k8s, ns, w.jobs, b.opts.Writers, write, &done)
	series := stopSeries()
	stopProfile()
	if err != nil {
		return err
	}
	*times = append(*times, elapsed)
	res.Answers = addAnswers(res.Answers, name, b.counter.Snapshot().Since(before).WritesBy("dlcjobsnapshots"))
	if record {
		res.Series[name] = series
	}
	if name == writerBare && b.methods == nil && b.opts.MethodWrites > 0 {
		if b.methods, err = b.methodCost(ctx, ns, b.opts.MethodWrites); err != nil {
			return fmt.Errorf("write methods: %w", err)
		}
	}
	return nil
}

func (b *bencher) namespace(ctx context.Context, prefix string) (string, error) {
	b.seq++
	name := fmt.Sprintf("%s-%d", prefix, b.seq)
	b.filled = append(b.filled, name)
	return name, testenv.CreateTenant(ctx, b.k8s, name, admin.AccessKeyID, admin.AccessKeySecret)
}

func benchQuery(namespace, endpoint string) *dlcv1alpha1.JobQuery {
	q := testenv.JobQuery(namespace, queryName, endpoint)
	q.Spec.RegionID, q.Spec.MaxJobs, q.Spec.Interval.Duration = regionID, 10000, time.Minute
	// The caller's own jobs (all of the workload's): a filter that is fixed at a job's
	// creation, so quiet syncs list incrementally. With showOwn false another user's job can
	// become visible later (UpdateJob makes it public) and every sync lists in full
	// (dlc.FilterRules).
	q.Spec.Filter.ShowOwn = dlc.Ptr(true)
	return q
}

// offsetClock is the wall clock moved forward on demand: the reconciler sees its next sync due
// without the benchmark sleeping through the interval.
type offsetClock struct{ offset time.Duration }

func (c *offsetClock) Now() time.Time { return time.Now().Add(c.offset) }

// oursRun is dlcsync's reconciler on a manager cache of one namespace, with one JobQuery.
type oursRun struct {
	b      *bencher
	w      *workload
	mgr    ctrl.Manager
	r      *controllers.JobQueryReconciler
	clock  *offsetClock
	ns     string
	key    types.NamespacedName
	cancel context.CancelFunc
}

// startOurs starts a manager cache for a new namespace, builds the reconciler (without
// registering it: the benchmark calls Reconcile itself) and creates the query.
func (b *bencher) startOurs(ctx context.Context, w *workload) (*oursRun, error) {
	ns, err := b.namespace(ctx, "dlcsync")
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(b.cfg, ctrl.Options{
		Scheme: testenv.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: controllers.CacheOptions([]string{ns}),
	})
	if err != nil {
		return nil, err
	}
	o := &oursRun{b: b, w: w, mgr: mgr, clock: &offsetClock{}, ns: ns}
	mctx, cancel := context.WithCancel(ctx)
	o.cancel = cancel
	if err := controllers.SetupIndexes(mctx, mgr); err != nil {
		cancel()
		return nil, err
	}
	go func() { _ = mgr.Start(mctx) }()
	if !mgr.GetCache().WaitForCacheSync(mctx) {
		cancel()
		return nil, fmt.Errorf("the cache did not sync")
	}
	if o.r, err = controllers.NewReconciler(mgr, controllers.Options{AllowedEndpoints: testenv.LoopbackEndpoints,
		DLCQPS: 10000, DLCBurst: 10000}); err != nil {
		cancel()
		return nil, err
	}
	o.r.Now = o.clock.Now
	q := benchQuery(ns, w.url)
	o.key = types.NamespacedName{Namespace: ns, Name: q.Name}
	// The outer err, not one scoped to the if, so that a failed create or wait ends the run.
	if err = b.k8s.Create(ctx, q); err == nil {
		err = waitFor(ctx, func() (bool, error) { return mgr.GetClient().Get(ctx, o.key, &dlcv1alpha1.JobQuery{}) == nil, nil })
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return o, nil
}

// sync runs one Reconcile and measures it: time, API calls, writes by resource, events.
func (o *oursRun) sync(ctx context.Context) (Phase, error) {
	b := o.b
	before, calls, modesBefore := b.counter.Snapshot(), o.w.apiCalls(), syncsByMode()
	start := time.Now()
	_, err := o.r.Reconcile(ctx, ctrl.Request{NamespacedName: o.key})
	p := Phase{Duration: time.Since(start)}
	if err != nil {
		return p, err
	}
	var got dlcv1alpha1.JobQuery
	if err := b.k8s.Get(ctx, o.key, &got); err != nil {
		return p, err
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, dlcv1alpha1.ConditionReady); c == nil || c.Reason != dlcv1alpha1.ReasonSynced {
		return p, fmt.Errorf("sync did not succeed: %+v", c)
	}
	p.Mode = lastMode(modesBefore)
	// Events are sent asynchronously; give them a moment to reach the counter.
	time.Sleep(500 * time.Millisecond)
	delta := b.counter.Snapshot().Since(before)
	p.APICalls = o.w.apiCalls() - calls
	p.Writes, p.SnapshotWrites, p.Events = delta.Writes(""), delta.Writes("dlcjobsnapshots"), delta.Writes("events")
	p.QueryWrites = delta.Writes("jobqueries")
	p.SnapshotAnswers = delta.WritesBy("dlcjobsnapshots")
	return p, nil
}

// cachedCurrent counts the snapshots of the cache that carry a status: the snapshots written,
// as the manager sees them.
func (o *oursRun) cachedCurrent(ctx context.Context) (int, error) {
	var list dlcv1alpha1.DLCJobSnapshotList
	// Counted in place, without the copy of every object a List otherwise makes: the
	// series samples it four times a second during the sync it measures.
	if err := o.mgr.GetClient().List(ctx, &list, client.InNamespace(o.ns), client.UnsafeDisableDeepCopy); err != nil {
		return 0, err
	}
	current := 0
	for i := range list.Items {
		if list.Items[i].Status.ContentHash != "" {
			current++
		}
	}
	return current, nil
}

// waitCache waits until the cache holds every snapshot written and the query's status: the
// next sync reads the snapshots from the cache.
func (o *oursRun) waitCache(ctx context.Context) error {
	return waitFor(ctx, func() (bool, error) {
		current, err := o.cachedCurrent(ctx)
		if err != nil {
			return false, err
		}
		var cached dlcv1alpha1.JobQuery
		if err := o.mgr.GetClient().Get(ctx, o.key, &cached); err != nil {
			return false, err
		}
		return current == len(o.w.jobs) && cached.Status.LastSyncTime != nil, nil
	})
}

// ours runs dlcsync's reconciler on a manager cache and calls Reconcile directly, so each sync
// is timed exactly: the initial sync, quiet syncs (incremental and the hourly full listing), and
// churn syncs.
func (b *bencher) ours(ctx context.Context, w *workload, res *SizeResult, record bool) error {
	o, err := b.startOurs(ctx, w)
	if err != nil {
		return err
	}
	defer o.cancel()
	if err := o.initial(ctx, res, record); err != nil {
		return err
	}
	for range b.opts.Syncs {
		o.clock.offset += steadyClockStep
		p, err := o.sync(ctx)
		if err != nil {
			return fmt.Errorf("steady sync: %w", err)
		}
		res.Steady = append(res.Steady, p)
	}
	// The hourly full listing, with nothing changed.
	o.clock.offset += time.Hour
	full, err := o.sync(ctx)
	if err != nil {
		return fmt.Errorf("full listing: %w", err)
	}
	res.SteadyFull = append(res.SteadyFull, full)
	for step := 1; step <= b.opts.Syncs; step++ {
		before := w.sim.Jobs()
		w.churn(step)
		o.clock.offset += 2 * time.Minute
		p, err := o.sync(ctx)
		if err != nil {
			return fmt.Errorf("churn sync: %w", err)
		}
		// Every job that changed, the churned ones and any that changed on its own.
		p.Changed = changedJobs(before, w.sim.Jobs(), nil)
		if err := b.checkReflected(ctx, o.ns, w); err != nil {
			return err
		}
		res.Churn = append(res.Churn, p)
		if err := o.waitCache(ctx); err != nil {
			return err
		}
	}
	return nil
}

// initial runs and records the first sync; with record, the count of snapshots written over
// time too, until the cache holds them all.
func (o *oursRun) initial(ctx context.Context, res *SizeResult, record bool) error {
	stopProfile, err := o.b.profileCPU(fmt.Sprintf("initial-%d-%d-cpu.pprof", len(o.w.jobs), len(res.Initial)))
	if err != nil {
		return err
	}
	stopSeries := func() []Point { return nil }
	if record {
		stopSeries = sample(seriesEvery, func() float64 {
			n, _ := o.cachedCurrent(ctx)
			return float64(n)
		})
	}
	initial, err := o.sync(ctx)
	stopProfile()
	if err == nil {
		res.Initial = append(res.Initial, initial)
		err = o.waitCache(ctx)
	}
	if series := stopSeries(); record {
		res.Series[writerOurs] = series
	}
	if err != nil {
		return fmt.Errorf("initial sync: %w", err)
	}
	return nil
}

// changedJobs counts the jobs whose data differs between two listings of the simulator (sorted
// by ID, as dlcsim.Server.Jobs returns them), the Duration that running jobs report live aside,
// among the jobs listed accepts (nil: every job).
func changedJobs(before, after []dlcsim.Job, listed func(*dlc.JobItem) bool) int {
	was := make(map[string]*dlcsim.Job, len(before))
	for i := range before {
		was[before[i].JobID] = &before[i]
	}
	n := 0
	for i := range after {
		now := after[i]
		if listed != nil && !listed(&now.JobItem) {
			continue
		}
		old, ok := was[now.JobID]
		if !ok {
			n++
			continue
		}
		prev := *old
		prev.Duration, now.Duration = nil, nil
		if !reflect.DeepEqual(prev, now) {
			n++
		}
	}
	return n
}

// checkReflected fails unless every running job's snapshot shows its current status.
func (b *bencher) checkReflected(ctx context.Context, namespace string, w *workload) error {
	for _, id := range w.active {
		job, _ := w.sim.Job(id)
		var s dlcv1alpha1.DLCJobSnapshot
		if err := b.k8s.Get(ctx, types.NamespacedName{Namespace: namespace, Name: snapshot.Name(id)}, &s); err != nil {
			return err
		}
		if s.Status.Phase != job.Status || s.Labels[dlcv1alpha1.LabelStatus] != job.Status {
			return fmt.Errorf("snapshot %s shows %s (label %s), the job is %s", s.Name, s.Status.Phase,
				s.Labels[dlcv1alpha1.LabelStatus], job.Status)
		}
	}
	return nil
}

// baseline runs two intervals of the scripted loop: the first creates everything, the second
// finds nothing changed and applies everything again.
func (b *bencher) baseline(ctx context.Context, w *workload, res *SizeResult) error {
	ns, err := b.namespace(ctx, "baseline")
	if err != nil {
		return err
	}
	for i := range 2 {
		before := b.counter.Snapshot()
		elapsed, calls, err := baselineInterval(ctx, b.k8s, w.lister, ns, b.opts.Writers)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		p := Phase{Duration: elapsed, APICalls: calls}
		delta := b.counter.Snapshot().Since(before)
		p.Writes, p.SnapshotWrites = delta.Writes(""), delta.Writes("dlcjobsnapshots")
		p.SnapshotAnswers = delta.WritesBy("dlcjobsnapshots")
		if i == 0 {
			res.BaselineFirst = append(res.BaselineFirst, p)
		} else {
			res.BaselineNext = append(res.BaselineNext, p)
		}
	}
	return nil
}

// waitFor polls cond every 100 ms for up to 5 minutes.
func waitFor(ctx context.Context, cond func() (bool, error)) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 5*time.Minute, true,
		func(context.Context) (bool, error) { return cond() })
}
