package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	cmd                   *exec.Cmd
	log                   string
	metricsURL, pprofBase string
	dir                   string
	logFile               *os.File
}

// startManager runs the manager binary as an envtest user, with the bench's client settings and
// the simulator's loopback endpoints allowed, plus args.
func (b *bencher) startManager(ctx context.Context, env *envtest.Environment, args ...string) (*managerProcess, error) {
	dir, err := os.MkdirTemp("", "dlcsync-bench")
	if err != nil {
		return nil, err
	}
	p := &managerProcess{dir: dir, log: filepath.Join(dir, "manager.log")}
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := testenv.WriteKubeconfig(env, "bench-manager", kubeconfigPath); err != nil {
		p.stop()
		return nil, err
	}
	port, err := freePort()
	if err == nil {
		p.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
		port, err = freePort()
		p.pprofBase = fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", port)
	}
	if err == nil {
		p.logFile, err = os.Create(p.log)
	}
	if err != nil {
		p.stop()
		return nil, err
	}
	p.cmd = exec.CommandContext(ctx, b.opts.ManagerBinary, append([]string{
		"--pprof-bind-address", strings.TrimPrefix(strings.TrimSuffix(p.pprofBase, "/debug/pprof"), "http://"),
		"--metrics-bind-address", strings.TrimPrefix(strings.TrimSuffix(p.metricsURL, "/metrics"), "http://"),
		"--metrics-secure=false", "--health-probe-bind-address", "0",
		"--kube-api-qps", strconv.FormatFloat(float64(b.opts.QPS), 'f', -1, 32), "--kube-api-burst", strconv.Itoa(b.opts.Burst),
		"--dlc-qps", "1000", "--dlc-burst", "1000",
		// The simulator listens on loopback over plain HTTP: allowed the way an administrator would.
		"--allowed-endpoints", testenv.LoopbackEndpoints}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.logFile, p.logFile
	p.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfigPath)
	if err := p.cmd.Start(); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// stop ends the manager (SIGTERM, as the kubelet would) and removes its files.
func (p *managerProcess) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		_ = p.cmd.Wait()
	}
	if p.logFile != nil {
		_ = p.logFile.Close()
	}
	_ = os.RemoveAll(p.dir)
}

// exited reports a manager that is no longer running, with the end of its log.
func (p *managerProcess) exited() error {
	if p.cmd.ProcessState == nil {
		return nil
	}
	data, _ := os.ReadFile(p.log)
	return fmt.Errorf("the manager exited: %s", tail(string(data), 2000))
}

// read fills the figures of a settled manager: resident set and Go heap.
func (p *managerProcess) read(mem *Memory) error {
	metrics, err := scrape(p.metricsURL)
	if err != nil {
		return err
	}
	mem.HeapBytes = gauge(metrics, "go_memstats_heap_alloc_bytes")
	mem.LiveHeapBytes = gauge(metrics, "go_gc_heap_live_bytes")
	mem.RSSBytes, err = residentBytes(p.cmd.Process.Pid)
	return err
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// memory runs the real manager binary against the control plane, lets it sync n jobs, and reads
// its resident set and Go heap with the snapshots cached.
func (b *bencher) memory(ctx context.Context, env *envtest.Environment, w *workload, n int) (*Memory, error) {
	ns, err := b.namespace(ctx, "memory")
	if err != nil {
		return nil, err
	}
	p, err := b.startManager(ctx, env, "--watch-namespaces", ns)
	if err != nil {
		return nil, err
	}
	defer p.stop()

	start := time.Now()
	peak := 0.0
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
		if rss, err := residentBytes(p.cmd.Process.Pid); err == nil {
			peak = max(peak, rss)
		}
		return got.Status.Snapshots == int32(n), nil
	}); err != nil {
		return nil, err
	}
	mem := &Memory{InitialSync: time.Since(start), PeakRSSBytes: peak}
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
// (every cache synced) and settled.
func (b *bencher) cachedMemory(ctx context.Context, env *envtest.Environment) (*Memory, error) {
	start := time.Now()
	p, err := b.startManager(ctx, env, "--watch-label-selector", "bench.dlcsync.io/cache-only=true")
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if err := waitForLong(ctx, func() (bool, error) {
		if err := p.exited(); err != nil {
			return false, err
		}
		data, err := os.ReadFile(p.log)
		return strings.Contains(string(data), "Starting workers"), err
	}); err != nil {
		return nil, err
	}
	mem := &Memory{InitialSync: time.Since(start)}
	time.Sleep(settle)
	if b.opts.ProfileDir != "" {
		if err := saveProfile(p.pprofBase+"/heap?gc=1", filepath.Join(b.opts.ProfileDir, "manager-heap-fleet-cache.pprof")); err != nil {
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

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

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
