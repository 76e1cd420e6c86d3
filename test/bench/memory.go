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

// memory runs the real manager binary against the control plane, lets it sync n jobs, and reads
// its resident set and Go heap with the snapshots cached.
func (b *bencher) memory(ctx context.Context, env *envtest.Environment, w *workload, n int) (*Memory, error) {
	ns, err := b.namespace(ctx, "memory")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dlcsync-bench")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := testenv.WriteKubeconfig(env, "bench-manager", kubeconfigPath); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }()
	pprofPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, b.opts.ManagerBinary, "--pprof-bind-address", fmt.Sprintf("127.0.0.1:%d", pprofPort),
		"--watch-namespaces", ns,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--metrics-secure=false", "--health-probe-bind-address", "0",
		"--kube-api-qps", strconv.FormatFloat(float64(b.opts.QPS), 'f', -1, 32), "--kube-api-burst", strconv.Itoa(b.opts.Burst),
		"--dlc-qps", "1000", "--dlc-burst", "1000",
		// The simulator listens on loopback over plain HTTP: allowed the way an administrator would.
		"--allowed-endpoints", testenv.LoopbackEndpoints)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfigPath)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()

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
			_ = saveProfile(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=20", pprofPort),
				filepath.Join(b.opts.ProfileDir, fmt.Sprintf("manager-cpu-%d.pprof", n)))
		}()
	}
	if err := waitFor(ctx, func() (bool, error) {
		var got dlcv1alpha1.JobQuery
		if err := b.k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: q.Name}, &got); err != nil {
			return false, err
		}
		if cmd.ProcessState != nil {
			return false, fmt.Errorf("the manager exited; its log is %s", logFile.Name())
		}
		if rss, err := residentBytes(cmd.Process.Pid); err == nil {
			peak = max(peak, rss)
		}
		return got.Status.Snapshots == int32(n), nil
	}); err != nil {
		return nil, err
	}
	mem := &Memory{InitialSync: time.Since(start), PeakRSSBytes: peak}
	// Then with every snapshot cached and the burst over.
	time.Sleep(settle)
	metrics, err := scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return nil, err
	}
	mem.HeapBytes = gauge(metrics, "go_memstats_heap_alloc_bytes")
	mem.LiveHeapBytes = gauge(metrics, "go_gc_heap_live_bytes")
	if b.opts.ProfileDir != "" {
		if err := saveProfile(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", pprofPort),
			filepath.Join(b.opts.ProfileDir, fmt.Sprintf("manager-heap-%d.pprof", n))); err != nil {
			return nil, err
		}
	}
	mem.RSSBytes, err = residentBytes(cmd.Process.Pid)
	return mem, err
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
