package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/procfs"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/controllers"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// changeWatch measures how long a job's change in the simulator takes to show in its snapshot:
// an informer on the snapshots whose status label is the new phase (so it holds only the
// changed ones) notes when each changed job's snapshot first shows that phase, label and status
// both.
type changeWatch struct {
	phase   string
	mu      sync.Mutex
	changed map[string]time.Time     // job ID → when the simulator changed it
	shown   map[string]time.Duration // job ID → from the change to the snapshot showing it
	stop    context.CancelFunc
}

// watchChanges starts the informer; call changedAt as each job changes, and stop when done.
func (b *bencher) watchChanges(ctx context.Context, phase string) (*changeWatch, error) {
	w := &changeWatch{phase: phase, changed: map[string]time.Time{}, shown: map[string]time.Duration{}}
	c, err := cache.New(b.cfg, cache.Options{Scheme: testenv.Scheme(), DefaultTransform: controllers.TrimForCache,
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{dlcv1alpha1.LabelStatus: phase})})
	if err != nil {
		return nil, fmt.Errorf("watching snapshots: %w", err)
	}
	ctx, w.stop = context.WithCancel(ctx)
	informer, err := c.GetInformer(ctx, &dlcv1alpha1.DLCJobSnapshot{})
	if err == nil {
		_, err = informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    w.observe,
			UpdateFunc: func(_, obj any) { w.observe(obj) },
		})
	}
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("watching snapshots: %w", err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		w.stop()
		return nil, fmt.Errorf("watching snapshots: the cache did not sync")
	}
	return w, nil
}

func (w *changeWatch) observe(obj any) {
	s, ok := obj.(*dlcv1alpha1.DLCJobSnapshot)
	if !ok || s.Status.Phase != w.phase || s.Labels[dlcv1alpha1.LabelStatus] != w.phase {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	at, changed := w.changed[s.Spec.JobID]
	if _, done := w.shown[s.Spec.JobID]; changed && !done {
		w.shown[s.Spec.JobID] = now.Sub(at)
	}
}

// changedAt records that job id changed now.
func (w *changeWatch) changedAt(id string) {
	w.mu.Lock()
	w.changed[id] = time.Now()
	w.mu.Unlock()
}

// result stops the informer and returns the latencies, sorted, and how many changes never showed.
func (w *changeWatch) result() (sorted []time.Duration, missing int) {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.shown {
		sorted = append(sorted, d)
	}
	slices.Sort(sorted)
	return sorted, len(w.changed) - len(w.shown)
}

// Latency summarises the change-to-snapshot times of one interval.
type Latency struct {
	P50, P99, Max time.Duration
	Seen, Missing int
}

func latencyOf(sorted []time.Duration, missing int) Latency {
	l := Latency{Seen: len(sorted), Missing: missing}
	if len(sorted) == 0 {
		return l
	}
	at := func(p float64) time.Duration { return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))] }
	l.P50, l.P99, l.Max = at(0.50), at(0.99), sorted[len(sorted)-1]
	return l
}

// counts returns how many changes have shown and how many have not yet.
func (w *changeWatch) counts() (shown, missing int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.shown), len(w.changed) - len(w.shown)
}

// CPUSample is the CPU time used so far by this process (the bench and the in-process manager)
// and by each of its children (envtest's etcd and kube-apiserver), by command name.
type CPUSample map[string]float64

// sampleCPU reads the CPU time of this process and its children from /proc.
func sampleCPU() CPUSample {
	out := CPUSample{}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return out
	}
	procs, err := fs.AllProcs()
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil || (p.PID != self && st.PPID != self) {
			continue
		}
		name := st.Comm
		if p.PID == self {
			name = "bench and manager"
		}
		out[name] += st.CPUTime()
	}
	return out
}

// since is the CPU time each process used after an earlier sample.
func (c CPUSample) since(before CPUSample) CPUSample {
	out := CPUSample{}
	for k, v := range c {
		out[k] = v - before[k]
	}
	return out
}

// String lists the CPU seconds by process, largest first.
func (c CPUSample) String() string {
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return int(1000 * (c[b] - c[a])) })
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.1f s", k, c[k]))
	}
	return strings.Join(parts, ", ")
}

// per scales the sample to CPU seconds per 1,000 objects written.
func (c CPUSample) per(objects int) CPUSample {
	out := CPUSample{}
	for k, v := range c {
		out[k] = v * 1000 / float64(max(objects, 1))
	}
	return out
}
