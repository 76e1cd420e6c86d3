package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/procfs"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// managerProcess is the manager binary running against the control plane, with its metrics and
// pprof endpoints on loopback.
type managerProcess struct {
	*testenv.Process
	metricsURL, pprofBase string
}

// startManager runs the manager binary as an envtest user, with the bench's client settings and
// the simulator's loopback endpoints allowed, plus args and the environment variables vars. It
// stops when ctx ends or stop is called.
func (b *bencher) startManager(ctx context.Context, env *envtest.Environment, vars []string,
	args ...string) (*managerProcess, func(), error) {
	dir, err := os.MkdirTemp("", "dlcsync-bench")
	if err != nil {
		return nil, nil, err
	}
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	ports := make([]int, 2)
	if err = testenv.WriteKubeconfig(env, "bench-manager", kubeconfigPath); err == nil {
		ports[0], err = testenv.FreePort()
	}
	if err == nil {
		ports[1], err = testenv.FreePort()
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, b.opts.ManagerBinary, append([]string{
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--metrics-secure=false",
		"--pprof-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--health-probe-bind-address", "0",
		"--kube-api-qps", strconv.FormatFloat(float64(b.opts.QPS), 'f', -1, 32), "--kube-api-burst", strconv.Itoa(b.opts.Burst),
		"--dlc-qps", "1000", "--dlc-burst", "1000",
		// The simulator listens on loopback over plain HTTP: allowed the way an administrator would.
		"--allowed-endpoints", testenv.LoopbackEndpoints}, args...)...)
	cmd.Env = testenv.ManagerEnv(append([]string{"KUBECONFIG=" + kubeconfigPath}, vars...)...)
	proc, err := testenv.StartProcess(cmd)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	p := &managerProcess{Process: proc, metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0]),
		pprofBase: fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", ports[1])}
	return p, func() { _ = p.Stop(20 * time.Second); _ = os.RemoveAll(dir) }, nil
}

// exited reports a manager that is no longer running, with the end of its log.
func (p *managerProcess) exited() error {
	if !p.Exited() {
		return nil
	}
	return fmt.Errorf("the manager exited (%v): %s", p.ExitError(), p.Tail(40))
}

// read fills the figures of a settled manager: resident set and Go heap.
func (p *managerProcess) read(mem *Memory) error {
	metrics, err := scrape(p.metricsURL)
	if err != nil {
		return err
	}
	mem.HeapBytes = gauge(metrics, "go_memstats_heap_alloc_bytes")
	mem.LiveHeapBytes = gauge(metrics, "go_gc_heap_live_bytes")
	mem.RSSBytes, err = residentBytes(p.Pid())
	return err
}

// memory runs the real manager binary against the control plane, lets it sync n jobs, and reads
// its resident set and Go heap with the snapshots cached.
func (b *bencher) memory(ctx context.Context, env *envtest.Environment, w *workload, n int) (*Memory, error) {
	ns, err := b.namespace(ctx, "memory")
	if err != nil {
		return nil, err
	}
	p, stop, err := b.startManager(ctx, env, nil, "--watch-namespaces", ns)
	if err != nil {
		return nil, err
	}
	defer stop()

	start := time.Now()
	peak := 0.0
	var series []Point
	q := benchQuery(ns, w.url)
	q.Spec.Interval.Duration = 10 * time.Minute
	if err := b.k8s.Create(ctx, q); err != nil {
		return nil, err
	}
	if b.opts.ProfileDir != "" {
		// A CPU profile of the first 20 s of the first sync.
		go func() {
			_ = saveProfile(p.pprofBase+"/profile?seconds=20", filepath.Join(b.opts.ProfileDir, fmt.Sprintf("manager-cpu-%d.pprof", n)))
		}()
		// And the heap in use 20 s into it, when every page is listed and the writes run.
		go func() {
			time.Sleep(20 * time.Second)
			_ = saveProfile(p.pprofBase+"/heap", filepath.Join(b.opts.ProfileDir, fmt.Sprintf("manager-heap-during-%d.pprof", n)))
		}()
	}
	if err := waitFor(ctx, func() (bool, error) {
		var got dlcv1alpha1.JobQuery
		if err := b.k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: q.Name}, &got); err != nil {
			return false, err
		}
		if err := p.exited(); err != nil {
			return false, err
		}
		if rss, err := residentBytes(p.Pid()); err == nil {
			peak = max(peak, rss)
			series = append(series, Point{T: time.Since(start).Seconds(), V: rss})
		}
		return got.Status.Snapshots == int32(n), nil
	}); err != nil {
		return nil, err
	}
	mem := &Memory{InitialSync: time.Since(start), PeakRSSBytes: peak, RSS: series}
	// Then with every snapshot cached and the burst over.
	time.Sleep(settle)
	if b.opts.ProfileDir != "" {
		if err := saveProfile(p.pprofBase+"/heap?gc=1", filepath.Join(b.opts.ProfileDir, fmt.Sprintf("manager-heap-%d.pprof", n))); err != nil {
			return nil, err
		}
	}
	return mem, p.read(mem)
}

// cachedMemory runs the manager binary as a shard that no JobQuery belongs to: it syncs nothing
// and caches every snapshot of the cluster, which is the steady footprint of a manager whose
// queries hold that many snapshots. Its figures are read once its controller has started
// (every cache synced) and settled. memoryLimit, when set, is its container memory limit, passed
// in DLCSYNC_MEMORY_LIMIT as the chart and the kustomize manifests pass limits.memory.
func (b *bencher) cachedMemory(ctx context.Context, env *envtest.Environment, memoryLimit int64) (*Memory, error) {
	start := time.Now()
	var vars []string
	if memoryLimit > 0 {
		vars = []string{fmt.Sprintf("DLCSYNC_MEMORY_LIMIT=%d", memoryLimit)}
	}
	p, stop, err := b.startManager(ctx, env, vars, "--watch-label-selector", "bench.dlcsync.io/cache-only=true")
	if err != nil {
		return nil, err
	}
	defer stop()
	if err := waitForLong(ctx, func() (bool, error) {
		if err := p.exited(); err != nil {
			return false, err
		}
		return strings.Contains(p.Log(), "Starting workers"), nil
	}); err != nil {
		return nil, err
	}
	mem := &Memory{InitialSync: time.Since(start)}
	time.Sleep(settle)
	if b.opts.ProfileDir != "" {
		name := fmt.Sprintf("manager-heap-fleet-cache-%d.pprof", memoryLimit)
		if err := saveProfile(p.pprofBase+"/heap?gc=1", filepath.Join(b.opts.ProfileDir, name)); err != nil {
			return nil, err
		}
	}
	return mem, p.read(mem)
}

func saveProfile(url, path string) error {
	resp, err := http.Get(url) //nolint:gosec,noctx // a loopback URL the benchmark built
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { _ = out.Close() }()
	_, err = io.Copy(out, resp.Body)
	return err
}

// settle is how long the memory figures wait after the first sync.
const settle = 10 * time.Second

// scrape reads a Prometheus text endpoint.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url) //nolint:gosec,noctx // a loopback URL the benchmark built
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// gauge is the value of an unlabelled gauge (0 when absent).
func gauge(families map[string]*dto.MetricFamily, name string) float64 {
	if f, ok := families[name]; ok && len(f.GetMetric()) > 0 {
		return f.GetMetric()[0].GetGauge().GetValue()
	}
	return 0
}

// residentBytes is the resident set of a process.
func residentBytes(pid int) (float64, error) {
	proc, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	stat, err := proc.Stat()
	if err != nil {
		return 0, err
	}
	return float64(stat.ResidentMemory()), nil
}
