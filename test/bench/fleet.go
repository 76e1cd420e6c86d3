package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/controllers"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// FleetOptions sizes the fleet scenario: many JobQueries on one manager, and that manager
// restarted.
type FleetOptions struct {
	// Queries, Jobs and Namespaces: Queries JobQueries over Jobs jobs in Namespaces namespaces
	// (0 Queries skips the scenario). Every tenth query overlaps the one before it: it lists the
	// PyTorchJob half of that query's jobs, in the same namespace, and the jobs of its own group
	// match no query.
	Queries, Jobs, Namespaces int
	// Active is the fraction of jobs that are running.
	Active float64
	// Interval is every query's spec.interval.
	Interval time.Duration
	// Concurrency is the manager's --max-concurrent-syncs.
	Concurrency int
	// RawJobs is how many snapshots the bare client writes to measure the limit.
	RawJobs int
}

// FleetResult is what the fleet scenario measured.
type FleetResult struct {
	Options   FleetOptions
	Snapshots int
	Initial   time.Duration
	// InitialAnswers are the snapshot writes of every query's first sync by verb and code.
	InitialAnswers map[string]int
	// RawRate and RawFullRate are the bare client's rate (one write per snapshot) on the empty
	// store and on the store holding every fleet snapshot; RefRate and RefFullRate the same for
	// the two-write reference (a create, then the status).
	RawRate, RawFullRate, RefRate, RefFullRate float64
	// Cached is a manager caching every snapshot (CachedSnapshots of them) without syncing;
	// CachedLimited the same run as the chart runs it with limits.memory cachedMemoryLimit.
	Cached, CachedLimited           *Memory
	CachedSnapshots                 int
	Quiet, Churn, Restart, Failover FleetPhase
	// Churned is how many jobs the churn changed; Changed how many jobs some query lists changed
	// during the churn interval, those and any that changed on their own.
	Churned, Changed int
	// Latency is from a job's change in the simulator to its snapshot showing it (churn).
	Latency Latency
	// Elected is from stopping the leader to the standby leading.
	Elected time.Duration
	// RawCPU, RefCPU and InitialCPU are the CPU seconds each process used while the bare client
	// and the two-write reference wrote on the empty store, and during every query's first sync.
	RawCPU, RefCPU, InitialCPU CPUSample
}

// FleetPhase is one measured interval of the whole fleet.
type FleetPhase struct {
	Syncs, Incremental, APICalls, SnapshotWrites, QueryWrites, Events int
	// SnapshotAnswers are the snapshot writes by verb and response code.
	SnapshotAnswers map[string]int
	// Duration is until every query has synced; FirstSync until one has.
	Duration, FirstSync time.Duration
}

// fleetGroup is the DisplayName prefix of group g's jobs.
func fleetGroup(g int) string { return fmt.Sprintf("fleet%03d-", g) }

// fleetWorkload fills a simulator: Jobs jobs in Queries groups, Active of each running. It
// returns the running jobs that some query lists (the ones churn changes).
func fleetWorkload(o FleetOptions) (*dlcsim.Server, []string, *httptest.Server) {
	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{admin}, Seed: 7})
	per := o.Jobs / o.Queries
	now := time.Now()
	jobs := make([]dlcsim.Job, 0, o.Jobs)
	var running []string
	for g := range o.Queries {
		for k := range per {
			id := fmt.Sprintf("dlcfleet%03d%05d", g, k)
			status, jobType := dlc.StatusSucceeded, "PyTorchJob"
			if k%2 == 1 {
				jobType = "TFJob"
			}
			created := now.Add(-time.Duration(k+1) * time.Minute)
			var runningSince string
			if k < int(math.Ceil(float64(per)*o.Active)) {
				status, runningSince = dlc.StatusRunning, dlc.FormatTime(created.Add(30*time.Second))
				if g%10 != 9 { // the group of every tenth query: no query lists its jobs (fleetQueries)
					running = append(running, id)
				}
			}
			jobs = append(jobs, dlcsim.Job{JobItem: dlc.JobItem{JobID: id, DisplayName: fmt.Sprintf("%sjob-%d", fleetGroup(g), k),
				JobType: jobType, Status: status, WorkspaceID: "268", UserID: admin.UserID, Username: admin.Username,
				GmtCreateTime: dlc.FormatTime(created), GmtRunningTime: runningSince}})
		}
	}
	sim.Upsert(jobs...)
	// Running jobs report a Duration that grows at every call, as the service may do; the
	// quiet and churn targets then also show that it costs no write per sync.
	sim.SetFaults(dlcsim.Faults{LiveDuration: true})
	return sim, running, httptest.NewServer(sim.Handler())
}

// fleetQueries are the JobQueries of the fleet and the number of distinct snapshots they keep.
func fleetQueries(o FleetOptions, namespaces []string, endpoint string) ([]*dlcv1alpha1.JobQuery, map[string]int32, int) {
	per := int32(o.Jobs / o.Queries)
	out := make([]*dlcv1alpha1.JobQuery, 0, o.Queries)
	want := map[string]int32{}
	distinct := 0
	for i := range o.Queries {
		group, ns, half := i, namespaces[i%len(namespaces)], false
		if i%10 == 9 {
			group, ns, half = i-1, namespaces[(i-1)%len(namespaces)], true
		}
		q := benchQuery(ns, endpoint)
		q.Name = fmt.Sprintf("q%03d", i)
		q.Spec.Interval.Duration = o.Interval
		q.Spec.Filter.DisplayName = fleetGroup(group)
		n := per
		if half {
			q.Spec.Filter.JobType, n = "PyTorchJob", (per+1)/2
		} else {
			distinct += int(per)
		}
		out = append(out, q)
		want[ns+"/"+q.Name] = n
	}
	return out, want, distinct
}

// startFleetManager starts a whole manager (controller and all) on the bench's counted
// connection, with leader election as cmd/manager sets it up when asked; it returns its stop
// function and the channel closed when it leads.
func (b *bencher) startFleetManager(ctx context.Context, o FleetOptions, leaderElect bool) (func(), <-chan struct{}, error) {
	mgr, err := ctrl.NewManager(b.cfg, ctrl.Options{
		Scheme: testenv.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: controllers.CacheOptions(nil), Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		LeaderElection: leaderElect, LeaderElectionID: "dlcsync-bench", LeaderElectionNamespace: "default",
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, nil, err
	}
	mctx, cancel := context.WithCancel(ctx)
	if _, err := controllers.Setup(mctx, mgr, controllers.Options{AllowedEndpoints: testenv.LoopbackEndpoints,
		DLCQPS: 10000, DLCBurst: 10000, MaxConcurrentSyncs: o.Concurrency}); err != nil {
		cancel()
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(mctx) }()
	return func() { cancel(); <-done }, mgr.Elected(), nil
}

// fleet runs the fleet scenario: the limit, every query's first sync, a quiet interval, a churn
// interval, then a restart of the manager and the first sync of every query after it.
func (b *bencher) fleet(ctx context.Context, env *envtest.Environment) (*FleetResult, error) {
	o := b.opts.Fleet
	res := &FleetResult{Options: o}
	sim, running, srv := fleetWorkload(o)
	defer srv.Close()
	// The fleet's manager watches every namespace: the queries of the phases before,
	// whose simulators are gone, would fail and retry beside the fleet's, adding syncs, events
	// and JobQuery writes to its intervals.
	if err := b.removeQueries(ctx); err != nil {
		return nil, err
	}
	all := sim.Jobs()
	raw := jobItems(all[:min(o.RawJobs, len(all))])
	var err error
	b.logf("fleet: %d queries, %d jobs, %d namespaces: bare client on the empty store (%d snapshots)", o.Queries, o.Jobs,
		o.Namespaces, len(raw))
	if res.RawRate, res.RawCPU, err = b.fleetBare(ctx, "fleet-raw", raw, oneWrite); err != nil {
		return nil, err
	}
	b.logf("fleet: two-write reference on the empty store (%d snapshots)", len(raw))
	if res.RefRate, res.RefCPU, err = b.fleetBare(ctx, "fleet-ref", raw, twoWrites); err != nil {
		return nil, err
	}
	if err := b.clear(ctx); err != nil {
		return nil, err
	}
	stop, err := b.fleetInitial(ctx, srv.URL, res)
	if err != nil {
		return nil, err
	}
	defer func() { stop() }()
	if res.Quiet, err = b.fleetInterval(ctx, sim, o, "quiet interval", nil); err != nil {
		return nil, err
	}
	if err := b.fleetChurn(ctx, sim, o, running, res); err != nil {
		return nil, err
	}
	if stop, err = b.fleetRestartAndFailover(ctx, sim, o, stop, res); err != nil {
		return nil, err
	}
	stop()
	stop = func() {}
	if err := b.fleetFullStore(ctx, env, o, all, res); err != nil {
		return nil, err
	}
	// The fleet is the last scenario, and the control plane stops with it: its 100,000
	// snapshots are left in place rather than deleted.
	return res, nil
}

// fleetBare writes jobs' snapshots into a new namespace with a bare client and returns its
// rate and the CPU each process used.
func (b *bencher) fleetBare(ctx context.Context, prefix string, jobs []dlc.JobItem, write writeJob) (float64, CPUSample, error) {
	if err := b.clear(ctx); err != nil {
		return 0, nil, err
	}
	ns, err := b.namespace(ctx, prefix)
	if err != nil {
		return 0, nil, err
	}
	// Profiled like the fleet's first syncs, so that their costs per snapshot compare.
	stopProfile, err := b.profileCPU(prefix + "-cpu.pprof")
	if err != nil {
		return 0, nil, err
	}
	cpu := sampleCPU()
	elapsed, err := rawCreate(ctx, b.k8s, ns, jobs, b.opts.Writers, write, nil)
	stopProfile()
	if err != nil {
		return 0, nil, fmt.Errorf("%s writes: %w", prefix, err)
	}
	return float64(len(jobs)) / elapsed.Seconds(), sampleCPU().since(cpu), nil
}

// fleetInitial starts the fleet's manager, creates every query and waits until each keeps its
// snapshots; it returns the manager's stop function.
func (b *bencher) fleetInitial(ctx context.Context, endpoint string, res *FleetResult) (func(), error) {
	o := b.opts.Fleet
	namespaces := make([]string, o.Namespaces)
	for i := range namespaces {
		var err error
		if namespaces[i], err = b.namespace(ctx, "fleet"); err != nil {
			return nil, err
		}
	}
	queries, want, distinct := fleetQueries(o, namespaces, endpoint)
	res.Snapshots = distinct
	stop, _, err := b.startFleetManager(ctx, o, false)
	if err != nil {
		return nil, err
	}
	stopProfile, err := b.profileCPU("fleet-initial-cpu.pprof")
	if err != nil {
		stop()
		return nil, err
	}
	defer stopProfile()
	start, cpu, before := time.Now(), sampleCPU(), b.counter.Snapshot()
	for _, q := range queries {
		if err := b.k8s.Create(ctx, q); err != nil {
			stop()
			return nil, err
		}
	}
	if err := b.waitFleetSynced(ctx, want, start, distinct); err != nil {
		stop()
		return nil, err
	}
	res.Initial, res.InitialCPU = time.Since(start), sampleCPU().since(cpu)
	res.InitialAnswers = b.counter.Snapshot().Since(before).WritesBy("dlcjobsnapshots")
	return stop, nil
}

// removeQueries deletes every JobQuery the phases before left, their finalizers first (no
// manager runs to remove them), and waits until none is left.
func (b *bencher) removeQueries(ctx context.Context) error {
	var list dlcv1alpha1.JobQueryList
	if err := b.k8s.List(ctx, &list); err != nil {
		return fmt.Errorf("listing the JobQueries left: %w", err)
	}
	for i := range list.Items {
		q := &list.Items[i]
		patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
		if err := b.k8s.Patch(ctx, q, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("removing the finalizers of %s/%s: %w", q.Namespace, q.Name, err)
		}
		if err := b.k8s.Delete(ctx, q); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting %s/%s: %w", q.Namespace, q.Name, err)
		}
	}
	return waitFor(ctx, func() (bool, error) {
		var left dlcv1alpha1.JobQueryList
		err := b.k8s.List(ctx, &left, client.Limit(1))
		return err == nil && len(left.Items) == 0, err
	})
}

// fleetFullStore measures, with the fleet's snapshots still stored and its manager stopped,
// the bare client's write limit again and a manager that caches every snapshot.
//
// The fleet's first syncs grow the store from none to every snapshot, and an apiserver's
// cost per write may grow with its store (its watch cache and heap do), so the limit is measured
// on both; the faster of the two counts (FleetResult.limit).
func (b *bencher) fleetFullStore(ctx context.Context, env *envtest.Environment, o FleetOptions, all []dlcsim.Job,
	res *FleetResult) error {
	raw := jobItems(all[len(all)-min(o.RawJobs, len(all)):])
	// The reference goes first here, the bare client first on the empty store; no clear
	// between them, since a few thousand snapshots more hardly change a store of the fleet's size.
	for _, w := range []struct {
		name  string
		write writeJob
		rate  *float64
	}{{"two-write reference", twoWrites, &res.RefFullRate}, {"bare client", oneWrite, &res.RawFullRate}} {
		b.logf("fleet: %s on the full store (%d snapshots)", w.name, len(raw))
		ns, err := b.namespace(ctx, "fleet-raw-full")
		if err != nil {
			return err
		}
		elapsed, err := rawCreate(ctx, b.k8s, ns, raw, b.opts.Writers, w.write, nil)
		if err != nil {
			return fmt.Errorf("fleet: %s on the full store: %w", w.name, err)
		}
		*w.rate = float64(len(raw)) / elapsed.Seconds()
	}
	if b.opts.ManagerBinary == "" {
		return nil
	}
	b.logf("fleet: manager memory with every snapshot cached")
	var err error
	if res.Cached, err = b.cachedMemory(ctx, env, 0); err == nil {
		b.logf("fleet: manager memory with every snapshot cached, limits.memory %dMi", cachedMemoryLimit>>20)
		res.CachedLimited, err = b.cachedMemory(ctx, env, cachedMemoryLimit)
	}
	if err != nil {
		return fmt.Errorf("fleet memory: %w", err)
	}
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(dlcv1alpha1.GroupVersion.WithKind("DLCJobSnapshotList"))
	if err := b.k8s.List(ctx, &list, client.Limit(1)); err != nil {
		return err
	}
	remaining := int64(0)
	if list.RemainingItemCount != nil {
		remaining = *list.RemainingItemCount
	}
	res.CachedSnapshots = int(remaining) + len(list.Items)
	return nil
}

// cachedMemoryLimit is the container memory limit of the second cached-memory run (the manager
// sets its Go soft limit from it, as in the chart): 300Mi, the footprint issue 15 asks for at
// 100,000 snapshots.
const cachedMemoryLimit = 300 << 20

// softLimitText is the Go soft limit the manager sets from cachedMemoryLimit with its default
// --memory-limit-ratio (0.8).
const softLimitText = "240 MiB"

// jobItems are the API items of simulator jobs, for the bare client to write.
func jobItems(jobs []dlcsim.Job) []dlc.JobItem {
	out := make([]dlc.JobItem, len(jobs))
	for i := range jobs {
		out[i] = jobs[i].JobItem
	}
	return out
}

// limit is the fleet's write limit: the faster of the bare client's rates on the empty store and
// on the full one (fleetFullStore). The two have differed both ways, by up to half, from
// run to run on this machine (266/223, 242/209, 211/254, 218/123 objects/s), more than the
// store's size explains; the faster one never flatters the fleet with a slow measurement.
func (f *FleetResult) limit() float64 {
	return max(f.RawRate, f.RawFullRate)
}

// reference is the two-write reference's rate on the fleet, the faster of its two: the time
// target against it is then the strictest.
func (f *FleetResult) reference() float64 {
	return max(f.RefRate, f.RefFullRate)
}

// timeShare is the fleet's first syncs' time as a share of the time the two-write reference
// would take to write as many snapshots.
func (f *FleetResult) timeShare() float64 {
	return f.Initial.Seconds() / (float64(f.Snapshots) / f.reference())
}

// churnPerJob is the churn's snapshot writes per changed job.
func (f *FleetResult) churnPerJob() float64 {
	return float64(f.Churn.SnapshotWrites) / float64(max(f.Changed, 1))
}

// profileCPU writes a CPU profile of this process (the bench and the in-process manager) to the
// profile directory until the returned function is called; without --profile-dir it does nothing.
func (b *bencher) profileCPU(name string) (func(), error) {
	if b.opts.ProfileDir == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(b.opts.ProfileDir, name))
	if err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	// And kube-apiserver's, for as long (its /debug/pprof serves the envtest admin).
	apiserverCtx, stopAPIServer := context.WithCancel(context.Background())
	apiserverDone := make(chan struct{})
	go func() {
		defer close(apiserverDone)
		b.profileAPIServer(apiserverCtx, filepath.Join(b.opts.ProfileDir, "apiserver-"+name))
	}()
	return func() { pprof.StopCPUProfile(); _ = f.Close(); stopAPIServer(); <-apiserverDone }, nil
}

// profileAPIServer saves back-to-back 5 s CPU profiles of kube-apiserver, merged into one file,
// until ctx ends (so a profile overruns its phase by less than 5 s).
func (b *bencher) profileAPIServer(ctx context.Context, path string) {
	hc, err := rest.HTTPClientFor(b.cfg)
	if err != nil {
		return
	}
	var profiles []*profile.Profile
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet,
			strings.TrimSuffix(b.cfg.Host, "/")+"/debug/pprof/profile?seconds=5", nil)
		if err != nil {
			return
		}
		resp, err := hc.Do(req)
		if err != nil {
			return
		}
		p, err := profile.Parse(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return
		}
		profiles = append(profiles, p)
	}
	merged, err := profile.Merge(profiles)
	if err != nil {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	_ = merged.Write(f)
}

// fleetChurn changes 1% of the jobs (running ones, spread over the groups) to Restarting, and
// measures the interval in which every query syncs once more and how long each change takes to
// show in its snapshot.
func (b *bencher) fleetChurn(ctx context.Context, sim *dlcsim.Server, o FleetOptions, running []string, res *FleetResult) error {
	changed := running[:0:0]
	step := max(1, len(running)/max(1, o.Jobs/100))
	for i := 0; i < len(running); i += step {
		changed = append(changed, running[i])
	}
	res.Churned = len(changed)
	watch, err := b.watchChanges(ctx, dlc.StatusRestarting)
	if err != nil {
		return err
	}
	before := sim.Jobs()
	if res.Churn, err = b.fleetInterval(ctx, sim, o, "churn interval", func() {
		for _, id := range changed {
			watch.changedAt(id)
			sim.Patch(id, func(j *dlcsim.Job) { j.Status = dlc.StatusRestarting })
		}
	}); err != nil {
		watch.stop()
		return err
	}
	// Every query has synced since the change: give the informer a moment for the last writes.
	_ = waitFor(ctx, func() (bool, error) {
		_, missing := watch.counts()
		return missing == 0, nil
	})
	res.Latency = latencyOf(watch.result())
	res.Changed = changedJobs(before, sim.Jobs(), fleetListed)
	return nil
}

// fleetListed tells the jobs some fleet query lists: every group's but every tenth's
// (fleetQueries), by the group in the job's name.
func fleetListed(job *dlc.JobItem) bool {
	var group int
	if _, err := fmt.Sscanf(job.DisplayName, "fleet%03d-", &group); err != nil {
		return false
	}
	return group%10 != 9
}

// fleetRestartAndFailover restarts the manager as two replicas with leader election, measures
// the leader's first syncs, then stops the leader and measures the new leader's first syncs. It
// returns the stop function of what still runs.
func (b *bencher) fleetRestartAndFailover(ctx context.Context, sim *dlcsim.Server, o FleetOptions, stop func(),
	res *FleetResult) (func(), error) {
	b.logf("fleet: restarting the manager (two replicas, leader election)")
	stop()
	stopA, electedA, err := b.startFleetManager(ctx, o, true)
	if err != nil {
		return func() {}, err
	}
	select {
	case <-electedA:
	case <-ctx.Done():
		return stopA, ctx.Err()
	}
	stopB, electedB, err := b.startFleetManager(ctx, o, true)
	if err != nil {
		return stopA, err
	}
	both := func() { stopA(); stopB() }
	if res.Restart, err = b.fleetInterval(ctx, sim, o, "first syncs after a restart", nil); err != nil {
		return both, err
	}
	b.logf("fleet: stopping the leader")
	stopped := time.Now()
	stopA()
	gap := time.Since(stopped)
	elected := make(chan time.Duration, 1)
	go func() {
		select {
		case <-electedB:
			elected <- time.Since(stopped)
		case <-ctx.Done():
			elected <- 0
		}
	}()
	if res.Failover, err = b.fleetInterval(ctx, sim, o, "first syncs after a leader failover", nil); err != nil {
		return stopB, err
	}
	// fleetInterval starts its clocks once the leader has stopped: count from the stop instead.
	res.Failover.Duration += gap
	res.Failover.FirstSync += gap
	res.Elected = <-elected
	return stopB, nil
}

// waitFleetSynced waits until every query keeps the snapshots it should, printing progress.
func (b *bencher) waitFleetSynced(ctx context.Context, want map[string]int32, start time.Time, total int) error {
	last := time.Now()
	return waitForLong(ctx, func() (bool, error) {
		var list dlcv1alpha1.JobQueryList
		if err := b.k8s.List(ctx, &list); err != nil {
			return false, err
		}
		done, kept := 0, 0
		for i := range list.Items {
			q := &list.Items[i]
			n, ours := want[q.Namespace+"/"+q.Name]
			if !ours {
				continue
			}
			kept += int(q.Status.Snapshots)
			if c := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady); c != nil &&
				c.Reason == dlcv1alpha1.ReasonSynced && q.Status.Snapshots == n {
				done++
			}
		}
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			b.progress("fleet first syncs", start, done, len(want), fmt.Sprintf("%d snapshots kept (%d distinct wanted)", kept, total))
		}
		return done == len(want), nil
	})
}

// fleetInterval applies change (if any), then waits until every query has synced once more and
// returns what those syncs cost.
func (b *bencher) fleetInterval(ctx context.Context, sim *dlcsim.Server, o FleetOptions, name string, change func()) (FleetPhase, error) {
	b.logf("fleet: %s", name)
	if change != nil {
		change()
	}
	before, calls, modes, start := b.counter.Snapshot(), sim.Stats().Requests, syncsByMode(), time.Now()
	syncs := func() (total, incremental int) {
		for mode, n := range syncsByMode() {
			d := int(n - modes[mode])
			total += d
			if mode == dlcv1alpha1.SyncModeIncremental {
				incremental += d
			}
		}
		return total, incremental
	}
	last := time.Now()
	var first time.Duration
	err := waitForLong(ctx, func() (bool, error) {
		n, _ := syncs()
		if n > 0 && first == 0 {
			first = time.Since(start)
		}
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			b.progress("fleet "+name, start, n, o.Queries, "")
		}
		return n >= o.Queries, nil
	})
	if err != nil {
		return FleetPhase{}, fmt.Errorf("%s: %w", name, err)
	}
	p := FleetPhase{Duration: time.Since(start), FirstSync: first}
	// Events are sent asynchronously; give them a moment to reach the counter.
	time.Sleep(time.Second)
	p.Syncs, p.Incremental = syncs()
	delta := b.counter.Snapshot().Since(before)
	p.APICalls = int(sim.Stats().Requests - calls)
	p.SnapshotWrites, p.QueryWrites, p.Events = delta.Writes("dlcjobsnapshots"), delta.Writes("jobqueries"), delta.Writes("events")
	p.SnapshotAnswers = delta.WritesBy("dlcjobsnapshots")
	return p, nil
}

// progress prints a progress line: phase, items done, elapsed and a linear ETA.
func (b *bencher) progress(phase string, start time.Time, done, total int, extra string) {
	elapsed := time.Since(start)
	eta := "unknown"
	if done > 0 {
		eta = (time.Duration(float64(elapsed) / float64(done) * float64(total-done))).Round(time.Second).String()
	}
	if extra != "" {
		extra = "; " + extra
	}
	b.logf("%s: %d/%d, elapsed %s, ETA %s%s", phase, done, total, elapsed.Round(time.Second), eta, extra)
}

// waitForLong polls cond every second for up to an hour (the full fleet takes minutes).
func waitForLong(ctx context.Context, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// perSync divides by the number of syncs.
func perSync(n int, p FleetPhase) float64 { return float64(n) / float64(max(p.Syncs, 1)) }

// fleetChecks are the fleet targets of issue 15 that this scenario measures.
func (r *Report) fleetChecks() []Check {
	f := r.Fleet
	if f == nil {
		return nil
	}
	rate, limit := float64(f.Snapshots)/f.Initial.Seconds(), f.limit()
	checks := []Check{
		{fmt.Sprintf("fleet of %d queries: every snapshot exists at ≥ %.2f × the one-write limit (the faster of the bare client on "+
			"the empty and on the full store)", f.Options.Queries, firstSyncShare),
			fmt.Sprintf("%.0f vs %.0f objects/s (%.2f×; %.2f× the mean of the two, %.0f/s)", rate, limit, rate/limit,
				rate/((f.RawRate+f.RawFullRate)/2), (f.RawRate+f.RawFullRate)/2),
			rate >= firstSyncShare*limit},
		{fmt.Sprintf("fleet of %d queries: first syncs take ≤ %.1f × the time of the two-write reference (the faster of its rates on "+
			"the empty and on the full store, for as many snapshots)", f.Options.Queries, fleetTimeShare),
			fmt.Sprintf("%.1f s vs %.1f s (%.2f×; reference %.0f/s on the empty store, %.0f/s on the full one)", f.Initial.Seconds(),
				float64(f.Snapshots)/f.reference(), f.timeShare(), f.RefRate, f.RefFullRate),
			f.timeShare() <= fleetTimeShare},
		{"fleet quiet interval: 0 snapshot writes, ≤ 3 API calls per query",
			fmt.Sprintf("%d snapshot writes, %.2f calls per sync", f.Quiet.SnapshotWrites, perSync(f.Quiet.APICalls, f.Quiet)),
			f.Quiet.SnapshotWrites == 0 && perSync(f.Quiet.APICalls, f.Quiet) <= 3},
		{"fleet churn: ≤ 1.00 snapshot write per changed job (every job some query lists that changed during the interval; " +
			"running jobs' Duration growing at every call)",
			fmt.Sprintf("%.2f (%d writes, %d jobs changed: %d by the benchmark; %s)", f.churnPerJob(), f.Churn.SnapshotWrites,
				f.Changed, f.Churned, answersText(f.Churn.SnapshotAnswers)),
			f.Changed > 0 && f.churnPerJob() <= 1},
		{fmt.Sprintf("fleet churn: p99 from a job's change to its snapshot showing it ≤ interval + 5 s (%s)", f.Options.Interval+5*time.Second),
			fmt.Sprintf("p99 %.1f s (p50 %.1f s, max %.1f s), %d of %d changes shown", f.Latency.P99.Seconds(), f.Latency.P50.Seconds(),
				f.Latency.Max.Seconds(), f.Latency.Seen, f.Latency.Seen+f.Latency.Missing),
			f.Latency.Missing == 0 && f.Latency.Seen > 0 && f.Latency.P99 <= f.Options.Interval+5*time.Second},
		{"restart: first sync of each query ≤ 3 API calls and 0 snapshot writes",
			fmt.Sprintf("%.2f calls per sync, %d snapshot writes, %d/%d incremental", perSync(f.Restart.APICalls, f.Restart),
				f.Restart.SnapshotWrites, f.Restart.Incremental, f.Restart.Syncs),
			perSync(f.Restart.APICalls, f.Restart) <= 3 && f.Restart.SnapshotWrites == 0},
		{"leader failover: first sync of each query ≤ 3 API calls and 0 snapshot writes",
			fmt.Sprintf("%.2f calls per sync, %d snapshot writes, %d/%d incremental", perSync(f.Failover.APICalls, f.Failover),
				f.Failover.SnapshotWrites, f.Failover.Incremental, f.Failover.Syncs),
			perSync(f.Failover.APICalls, f.Failover) <= 3 && f.Failover.SnapshotWrites == 0},
	}
	if f.Cached != nil && f.CachedLimited != nil {
		checks = append(checks, Check{fmt.Sprintf("%d snapshots cached: manager RSS ≤ 300 MiB (run as the chart runs it with "+
			"limits.memory 300Mi: Go soft limit %s)", f.CachedSnapshots, softLimitText),
			fmt.Sprintf("%.0f MiB (without a memory limit: %.0f MiB)", f.CachedLimited.RSSBytes/(1<<20), f.Cached.RSSBytes/(1<<20)),
			f.CachedLimited.RSSBytes <= 300*(1<<20)})
	}
	return checks
}

// fleetMarkdown renders the fleet section.
func (r *Report) fleetMarkdown(b *strings.Builder) {
	f := r.Fleet
	if f == nil {
		return
	}
	o := f.Options
	fmt.Fprintf(b, "\n## Fleet and restart\n\n%d JobQueries over %d jobs (%.0f%% running) in %d namespaces, one manager "+
		"(--max-concurrent-syncs %d), every query's interval %s. Every tenth query overlaps the one before it (the "+
		"PyTorchJob half of its jobs, same namespace), so %d distinct snapshots. The limit is the bare client writing "+
		"%d snapshots in the same run, one create each (status included), once on the empty store and once on the store holding "+
		"every fleet snapshot (with no manager running), and the limit is the faster of the two: they have differed both ways "+
		"by up to half from run to run here, more than the store's growth explains. The two-write reference (a create, then the "+
		"status: dlcsync's writes until now) writes the same snapshots on both stores, and its faster rate counts too. The "+
		"queries of the phases before are deleted first. Each interval below ends when every query has synced once more. The simulator "+
		"reports running jobs' Duration live (it grows at every call). The restart starts two replicas with leader "+
		"election; the failover then stops the leader (it releases its lease, as on a rolling upgrade).\n\n",
		o.Queries, o.Jobs, o.Active*100, o.Namespaces, o.Concurrency, o.Interval, f.Snapshots, o.RawJobs)
	b.WriteString("| Measure | Result |\n|---|---|\n")
	rate := float64(f.Snapshots) / f.Initial.Seconds()
	fmt.Fprintf(b, "| Every query's first sync | %.1f s until every snapshot exists, %.2f snapshot writes per snapshot, "+
		"**%.0f objects/s = %.2f × the one-write limit** (%.0f/s on the empty store, %.0f/s on the full one), **%.2f × the time "+
		"of the two-write reference** (%.0f/s on the empty store, %.0f/s on the full one) |\n",
		f.Initial.Seconds(), float64(answersTotal(f.InitialAnswers))/float64(max(f.Snapshots, 1)), rate, rate/f.limit(), f.RawRate,
		f.RawFullRate, f.timeShare(), f.RefRate, f.RefFullRate)
	fmt.Fprintf(b, "| CPU per 1,000 snapshots: bare client / two-write reference / first syncs (%d cores) | %s / %s / %s |\n",
		runtime.NumCPU(), f.RawCPU.per(o.RawJobs), f.RefCPU.per(o.RawJobs), f.InitialCPU.per(f.Snapshots))
	phase := func(name string, p FleetPhase) {
		fmt.Fprintf(b, "| %s | %d syncs (%d incremental) in %.1f s: **%.2f calls per sync**, **%d snapshot writes**, "+
			"%d JobQuery writes, %d events |\n", name, p.Syncs, p.Incremental, p.Duration.Seconds(), perSync(p.APICalls, p),
			p.SnapshotWrites, p.QueryWrites, p.Events)
	}
	phase("Quiet interval", f.Quiet)
	phase(fmt.Sprintf("Churn interval (%d jobs changed, %d of them by the benchmark: %.2f snapshot writes per changed job)",
		f.Changed, f.Churned, f.churnPerJob()), f.Churn)
	fmt.Fprintf(b, "| From a job's change in the simulator to its snapshot showing it (churn, an informer on the snapshots) | "+
		"p50 %.1f s, **p99 %.1f s**, max %.1f s (interval %s), %d of %d changes shown |\n", f.Latency.P50.Seconds(),
		f.Latency.P99.Seconds(), f.Latency.Max.Seconds(), o.Interval, f.Latency.Seen, f.Latency.Seen+f.Latency.Missing)
	for _, run := range []struct {
		m    *Memory
		name string
	}{{f.Cached, "no memory limit"}, {f.CachedLimited, fmt.Sprintf("limits.memory %dMi as the chart passes it (Go soft limit %s)",
		cachedMemoryLimit>>20, softLimitText)}} {
		if m := run.m; m != nil {
			fmt.Fprintf(b, "| Manager caching all %d snapshots, %s (the binary, a shard that syncs no query; read 10 s after its caches "+
				"synced, %.0f s after its start) | **RSS %.0f MiB**, Go heap %.0f MiB (live %.0f MiB) |\n", f.CachedSnapshots, run.name,
				m.InitialSync.Seconds(), m.RSSBytes/(1<<20), m.HeapBytes/(1<<20), m.LiveHeapBytes/(1<<20))
		}
	}
	phase("First sync of every query after a manager restart", f.Restart)
	phase(fmt.Sprintf("First sync of every query after a leader failover (standby leading %.1f s after the stop, first sync "+
		"done %.1f s after it)", f.Elected.Seconds(), f.Failover.FirstSync.Seconds()), f.Failover)
}
