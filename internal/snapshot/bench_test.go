package snapshot_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	sigsjson "sigs.k8s.io/json"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
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

// BenchmarkCachedSnapshots1000 reports the heap that 1,000 snapshots take in the manager's
// cache, decoded from the JSON the apiserver sends (managed fields included), kept whole
// (baseline), with managed fields and job data dropped (releases before 0.5), and as
// snapshot.ForCache keeps them.
func BenchmarkCachedSnapshots1000(b *testing.B) {
	sim := dlcsim.New(dlcsim.Options{Seed: 5})
	jobs := sim.Generate(1000)
	bodies := make([][]byte, len(jobs))
	for i := range jobs {
		bodies[i] = servedSnapshot(b, &jobs[i].JobItem, i)
	}
	for _, keep := range []struct {
		name string
		trim func(*dlcv1alpha1.DLCJobSnapshot) *dlcv1alpha1.DLCJobSnapshot
	}{
		{"whole", func(s *dlcv1alpha1.DLCJobSnapshot) *dlcv1alpha1.DLCJobSnapshot { return s }},
		{"without-managed-fields-and-job", func(s *dlcv1alpha1.DLCJobSnapshot) *dlcv1alpha1.DLCJobSnapshot {
			s.ManagedFields, s.Status.Job = nil, nil
			return s
		}},
		{"for-cache", snapshot.ForCache},
	} {
		b.Run(keep.name, func(b *testing.B) {
			var heap uint64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				cached := make([]*dlcv1alpha1.DLCJobSnapshot, 0, len(bodies))
				for _, body := range bodies {
					s := &dlcv1alpha1.DLCJobSnapshot{}
					if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, s); err != nil {
						b.Fatal(err)
					}
					cached = append(cached, keep.trim(s))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap = after.HeapAlloc - before.HeapAlloc
				runtime.KeepAlive(cached)
			}
			b.ReportMetric(float64(heap)/1024/1024, "MiB/1000snapshots")
		})
	}
}

// servedSnapshot is the JSON of a snapshot of job as a watch sends it: metadata as the apiserver
// fills it, the labels, annotation and owner reference dlcsync sets, and two managed-fields
// entries listing every field of the object and of the status.
func servedSnapshot(b *testing.B, job *dlc.JobItem, i int) []byte {
	conv, err := snapshot.ConvertJob(job, snapshot.Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	s := dlcv1alpha1.DLCJobSnapshot{
		TypeMeta: metav1.TypeMeta{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "DLCJobSnapshot"},
		ObjectMeta: metav1.ObjectMeta{Name: snapshot.Name(job.JobID), Namespace: "team-a", UID: types.UID(fmt.Sprintf("uid-%036d", i)),
			ResourceVersion: fmt.Sprint(100000 + i), Generation: 1, CreationTimestamp: now,
			Labels:      snapshot.Labels(job, "cn-hangzhou"),
			Annotations: map[string]string{dlcv1alpha1.AnnotationEndpoint: "https://pai-dlc.cn-hangzhou.aliyuncs.com"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "JobQuery", Name: "team-a-jobs",
				UID: "0b9d7c3e-2f41-4e57-9a39-6f0a1c5d2e8b", Controller: ptr.To(false), BlockOwnerDeletion: ptr.To(true)}}},
		Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: job.JobID, RegionID: "cn-hangzhou"},
	}
	s.Status = snapshot.Status(conv, snapshot.Hash(conv), nil, now)
	s.Status.Matching, s.Status.MatchedBy, s.Status.ObservedAt = true, []string{"team-a-jobs"}, &now
	whole, err := json.Marshal(s)
	if err != nil {
		b.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(whole, &fields); err != nil {
		b.Fatal(err)
	}
	entry := func(manager, op, subresource string, part map[string]any) metav1.ManagedFieldsEntry {
		raw, _ := json.Marshal(fieldSet(part))
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationType(op), APIVersion: "dlc.dlcsync.io/v1alpha1",
			Time: &now, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(string(raw)), Subresource: subresource}
	}
	s.ManagedFields = []metav1.ManagedFieldsEntry{
		entry("dlcsync", "Update", "", map[string]any{"metadata": fields["metadata"], "spec": fields["spec"]}),
		entry("dlcsync", "Apply", "status", map[string]any{"status": fields["status"]}),
	}
	out, err := json.Marshal(s)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// fieldSet is the FieldsV1 form of a decoded JSON value: "f:<key>" for every object key, list
// items as values ("v:") of their position.
func fieldSet(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{".": map[string]any{}}
		for k, child := range t {
			out["f:"+k] = fieldSet(child)
		}
		return out
	case []any:
		out := map[string]any{".": map[string]any{}}
		for i, child := range t {
			out[fmt.Sprintf("i:%d", i)] = fieldSet(child)
		}
		return out
	}
	return map[string]any{}
}
