package snapshot_test

import (
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// BenchmarkSnapshotMemory1000 reports the heap that 1,000 typed DLCJobSnapshots of realistic
// simulated jobs take, which is what the manager's informer cache holds per 1,000 snapshots, and
// the time to compute their desired state (baseline: the same jobs' conversion alone).
func BenchmarkSnapshotMemory1000(b *testing.B) {
	sim := dlcsim.New(dlcsim.Options{Seed: 5})
	jobs := sim.Generate(1000)
	now := metav1.NewTime(time.Now())

	b.Run("desired-state", func(b *testing.B) {
		var heap uint64
		for b.Loop() {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			snaps := make([]dlcv1alpha1.DLCJobSnapshot, 0, len(jobs))
			for i := range jobs {
				conv, err := snapshot.ConvertJob(&jobs[i].JobItem, snapshot.Options{})
				if err != nil {
					b.Fatal(err)
				}
				s := dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Name: snapshot.Name(jobs[i].JobID),
					Labels: snapshot.Labels(&jobs[i].JobItem, "cn-hangzhou")}}
				s.Status = snapshot.Status(conv, snapshot.Hash(conv), nil, now)
				snaps = append(snaps, s)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			heap = after.HeapAlloc - before.HeapAlloc
			runtime.KeepAlive(snaps)
		}
		b.ReportMetric(float64(heap)/1024/1024, "MiB/1000snapshots")
	})
	b.Run("baseline-convert-only", func(b *testing.B) {
		for b.Loop() {
			for i := range jobs {
				if _, err := snapshot.ConvertJob(&jobs[i].JobItem, snapshot.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
