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
	"net/http/httptest"
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
	// Note: clearing the store between phases deletes every snapshot of the phase before, one by
	// one; kube-apiserver does that with one worker unless told otherwise. More workers shorten
	// the clearing only (3,000 snapshots: 7 s instead of 11): no measured phase deletes anything.
	env, cfg, err := testenv.Start(testenv.APIServerFlag("delete-collection-workers", "8"))
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
	b := &bencher{opts: opts, cfg: counted, counter: counter, k8s: direct, started: time.Now()}
	report := &Report{Options: opts, Machine: machine()}
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
	started time.Time
	seq     int
	// filled are the namespaces that may still hold snapshots.
	filled []string
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
	// Note: the first writes of a process to a fresh apiserver are slower (connections, caches,
	// the CRD's first objects); a warm-up keeps that out of whichever phase would come first.
	warmup, err := b.namespace(ctx, "warmup")
	if err != nil {
		return nil, err
	}
	if _, err := rawCreate(ctx, b.k8s, warmup, w.jobs[:min(len(w.jobs), 300*min(runs, 1))], b.opts.Writers); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	for run := 1; run <= runs; run++ {
		raw := func() error {
			b.logf("%d jobs, run %d/%d: raw writes", n, run, runs)
			ns, err := b.namespace(ctx, "raw")
			if err != nil {
				return err
			}
			stopProfile, err := b.profileCPU(fmt.Sprintf("raw-%d-%d-cpu.pprof", n, run))
			if err != nil {
				return err
			}
			elapsed, err := rawCreate(ctx, b.k8s, ns, w.jobs, b.opts.Writers)
			stopProfile()
			if err != nil {
				return fmt.Errorf("raw writes: %w", err)
			}
			res.Raw = append(res.Raw, elapsed)
			return nil
		}
		ours := func() error {
			b.logf("%d jobs, run %d/%d: dlcsync (initial, steady, churn)", n, run, runs)
			return b.ours(ctx, w, res)
		}
		if err := b.clear(ctx); err != nil {
			return nil, err
		}
		// Note: every phase leaves its objects in etcd, and a larger store writes a little
		// slower; the order alternates so that neither side always gets the emptier store.
		first, second := raw, ours
		if run%2 == 0 {
			first, second = ours, raw
		}
		if err := first(); err != nil {
			return nil, err
		}
		if err := b.clear(ctx); err != nil {
			return nil, err
		}
		if err := second(); err != nil {
			return nil, err
		}

		if run > baselineRuns {
			continue
		}
		if err := b.clear(ctx); err != nil {
			return nil, err
		}
		b.logf("%d jobs, run %d/%d: scripted baseline", n, run, runs)
		if err := b.baseline(ctx, w, res); err != nil {
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

// clear deletes the snapshots every earlier phase left, and waits until they are gone.
// Note: a store that grows from phase to phase makes later phases slower (the apiserver's watch
// cache and heap grow with it), which would favour whichever side runs first; each phase starts
// from the same empty store instead.
func (b *bencher) clear(ctx context.Context) error {
	for _, ns := range b.filled {
		if err := b.k8s.DeleteAllOf(ctx, &dlcv1alpha1.DLCJobSnapshot{}, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("clearing %s: %w", ns, err)
		}
		if err := waitFor(ctx, func() (bool, error) {
			var list dlcv1alpha1.DLCJobSnapshotList
			err := b.k8s.List(ctx, &list, client.InNamespace(ns), client.Limit(1))
			return err == nil && len(list.Items) == 0, err
		}); err != nil {
			return fmt.Errorf("clearing %s: %w", ns, err)
		}
	}
	b.filled = nil
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
	// Note: the caller's own jobs (all of the workload's): a filter that is fixed at a job's
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
	if err := b.k8s.Create(ctx, q); err == nil {
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
	// Note: events are sent asynchronously; give them a moment to reach the counter.
	time.Sleep(500 * time.Millisecond)
	delta := b.counter.Snapshot().Since(before)
	p.APICalls = o.w.apiCalls() - calls
	p.Writes, p.SnapshotWrites, p.Events = delta.Writes(""), delta.Writes("dlcjobsnapshots"), delta.Writes("events")
	p.QueryWrites = delta.Writes("jobqueries")
	return p, nil
}

// waitCache waits until the cache holds every snapshot written and the query's status: the
// next sync reads the snapshots from the cache.
func (o *oursRun) waitCache(ctx context.Context) error {
	return waitFor(ctx, func() (bool, error) {
		var list dlcv1alpha1.DLCJobSnapshotList
		if err := o.mgr.GetClient().List(ctx, &list, client.InNamespace(o.ns)); err != nil {
			return false, err
		}
		current := 0
		for i := range list.Items {
			if list.Items[i].Status.ContentHash != "" {
				current++
			}
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
func (b *bencher) ours(ctx context.Context, w *workload, res *SizeResult) error {
	o, err := b.startOurs(ctx, w)
	if err != nil {
		return err
	}
	defer o.cancel()
	stopProfile, err := b.profileCPU(fmt.Sprintf("initial-%d-%d-cpu.pprof", len(w.jobs), len(res.Initial)))
	if err != nil {
		return err
	}
	initial, err := o.sync(ctx)
	stopProfile()
	if err != nil {
		return fmt.Errorf("initial sync: %w", err)
	}
	res.Initial = append(res.Initial, initial)
	if err := o.waitCache(ctx); err != nil {
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
		changed := w.churn(step)
		o.clock.offset += 2 * time.Minute
		p, err := o.sync(ctx)
		if err != nil {
			return fmt.Errorf("churn sync: %w", err)
		}
		p.Changed = changed
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
