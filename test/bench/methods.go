package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// The cost of the ways to rewrite an existing snapshot's labels and status in one request, in
// kube-apiserver CPU per write: what dlcsync's choice of a JSON patch saves or costs.

// MethodCost is what one way of rewriting snapshots cost over every round.
type MethodCost struct {
	// Name is the method as the report names it; Verb as the request counter does.
	Name, Verb string
	Writes     int
	// APIServerCPU and EtcdCPU are the user and system CPU time the two processes used while
	// the method wrote (utime+stime from /proc/<pid>/stat).
	APIServerCPU, EtcdCPU time.Duration
	// Wall is the time the writes took, Bytes the request bodies they sent.
	Wall  time.Duration
	Bytes int64
	// Answers are the method's writes by verb and response code.
	Answers map[string]int
}

// MethodResult is the write-method phase.
type MethodResult struct {
	Snapshots, Rounds int
	Methods           []MethodCost
	// StaleReplace and StaleTest are the answers to a JSON patch whose resourceVersion
	// precondition is stale, as a replace op and as a test op; PreconditionOp is the op the
	// measured JSON patches use (the one answered 409 Conflict).
	StaleReplace, StaleTest int
	PreconditionOp          string
	// IdleAPIServerCPU is the CPU kube-apiserver used per second of an idle moment before the
	// writes: the share of the figures that is not the writes'.
	IdleAPIServerCPU time.Duration
}

// CPUPerWrite is the kube-apiserver CPU of one write, in milliseconds.
func (m MethodCost) CPUPerWrite() float64 {
	return float64(m.APIServerCPU.Microseconds()) / 1000 / float64(max(m.Writes, 1))
}

// cheapest is the method with the least kube-apiserver CPU per write.
func (r *MethodResult) cheapest() MethodCost {
	return slices.MinFunc(r.Methods, func(a, b MethodCost) int {
		switch {
		case a.CPUPerWrite() < b.CPUPerWrite():
			return -1
		case a.CPUPerWrite() > b.CPUPerWrite():
			return 1
		}
		return 0
	})
}

// rewrite sends one request that makes the stored snapshot's labels and status those of obj,
// on obj's resourceVersion, and returns the request body's size; obj becomes the answer.
type rewrite func(ctx context.Context, c client.Client, obj *dlcv1alpha1.DLCJobSnapshot, precondition string) (int, error)

// writeMethods are the ways measured, in the order of the first round.
var writeMethods = []struct {
	name, verb string
	write      rewrite
}{
	{"JSON merge patch (metadata.resourceVersion as precondition)", "PATCH(merge-patch)", mergePatchWrite},
	{"server-side apply (metadata.resourceVersion as precondition)", "PATCH(apply)", applyWrite},
	{"update: PUT of the whole object", "PUT", updateWrite},
	{"JSON patch (RFC 6902): resourceVersion precondition, replace labels and /status", "PATCH(json-patch)", jsonPatchWrite},
}

func mergePatchWrite(ctx context.Context, c client.Client, obj *dlcv1alpha1.DLCJobSnapshot, _ string) (int, error) {
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": obj.ResourceVersion, "labels": obj.Labels}, "status": obj.Status})
	if err != nil {
		return 0, err
	}
	return len(body), c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
}

func applyWrite(ctx context.Context, c client.Client, obj *dlcv1alpha1.DLCJobSnapshot, _ string) (int, error) {
	body, err := json.Marshal(applyBody{APIVersion: dlcv1alpha1.GroupVersion.String(), Kind: "DLCJobSnapshot",
		Metadata: metav1.ObjectMeta{Namespace: obj.Namespace, Name: obj.Name, ResourceVersion: obj.ResourceVersion, Labels: obj.Labels},
		Status:   &obj.Status})
	if err != nil {
		return 0, err
	}
	return len(body), c.Patch(ctx, obj, client.RawPatch(types.ApplyPatchType, body), client.FieldOwner("bench-methods"),
		client.ForceOwnership)
}

func updateWrite(ctx context.Context, c client.Client, obj *dlcv1alpha1.DLCJobSnapshot, _ string) (int, error) {
	// The body is what the client sends: the whole object (its size is counted, not sent twice).
	body, err := json.Marshal(obj)
	if err != nil {
		return 0, err
	}
	return len(body), c.Update(ctx, obj)
}

func jsonPatchWrite(ctx context.Context, c client.Client, obj *dlcv1alpha1.DLCJobSnapshot, precondition string) (int, error) {
	body, err := json.Marshal([]map[string]any{
		{"op": precondition, "path": "/metadata/resourceVersion", "value": obj.ResourceVersion},
		{"op": "replace", "path": "/metadata/labels", "value": obj.Labels},
		{"op": "replace", "path": "/status", "value": obj.Status},
	})
	if err != nil {
		return 0, err
	}
	return len(body), c.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, body))
}

// methodRounds is how many times the write-method phase runs every method.
const methodRounds = 2

// methodCost rewrites up to perRound of the snapshots in namespace with each method,
// methodRounds times, the order reversed every other round so that no method always follows the
// same one.
// Every write changes what it writes (the phase flips between Running and Restarting, label and
// status), so none is a no-op the apiserver could skip.
func (b *bencher) methodCost(ctx context.Context, namespace string, perRound int) (*MethodResult, error) {
	res := &MethodResult{Rounds: methodRounds}
	var err error
	if res.StaleReplace, res.StaleTest, err = b.checkPrecondition(ctx, namespace); err != nil {
		return nil, err
	}
	res.PreconditionOp = "replace"
	if res.StaleReplace != http.StatusConflict && res.StaleTest == http.StatusConflict {
		res.PreconditionOp = "test"
	}
	var list dlcv1alpha1.DLCJobSnapshotList
	if err := b.k8s.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing the snapshots to rewrite: %w", err)
	}
	objs := list.Items[:min(len(list.Items), perRound)]
	res.Snapshots = len(objs)
	idle := sampleCPU()
	time.Sleep(idleSample)
	res.IdleAPIServerCPU = seconds(sampleCPU().since(idle)["kube-apiserver"] / idleSample.Seconds())
	res.Methods = make([]MethodCost, len(writeMethods))
	step := 0
	for round := range methodRounds {
		for i := range writeMethods {
			m := i
			if round%2 == 1 {
				m = len(writeMethods) - 1 - i
			}
			b.logf("write methods, round %d/%d: %s", round+1, methodRounds, writeMethods[m].name)
			if err := b.methodBatch(ctx, objs, m, step, res.PreconditionOp, &res.Methods[m]); err != nil {
				return nil, fmt.Errorf("%s: %w", writeMethods[m].name, err)
			}
			step++
		}
	}
	return res, nil
}

// methodBatch rewrites every object once with method m and adds what it cost to cost.
func (b *bencher) methodBatch(ctx context.Context, objs []dlcv1alpha1.DLCJobSnapshot, m, step int, precondition string,
	cost *MethodCost) error {
	phase := dlc.StatusRestarting
	if step%2 == 1 {
		phase = dlc.StatusRunning
	}
	bytes := make([]int64, len(objs))
	before, cpu, start := b.counter.Snapshot(), sampleCPU(), time.Now()
	err := each(ctx, len(objs), b.opts.Writers, func(ctx context.Context, i int) error {
		obj := &objs[i]
		obj.Labels[dlcv1alpha1.LabelStatus], obj.Status.Phase = phase, phase
		obj.Status.ObservedAt = &metav1.Time{Time: time.Now()}
		n, err := writeMethods[m].write(ctx, b.k8s, obj, precondition)
		bytes[i] = int64(n)
		return err
	})
	used := sampleCPU().since(cpu)
	if err != nil {
		return err
	}
	cost.Name, cost.Verb = writeMethods[m].name, writeMethods[m].verb
	cost.Writes += len(objs)
	cost.Wall += time.Since(start)
	cost.APIServerCPU += seconds(used["kube-apiserver"])
	cost.EtcdCPU += seconds(used["etcd"])
	for _, n := range bytes {
		cost.Bytes += n
	}
	if cost.Answers == nil {
		cost.Answers = map[string]int{}
	}
	for k, v := range b.counter.Snapshot().Since(before).WritesBy("dlcjobsnapshots") {
		cost.Answers[k] += v
	}
	return nil
}

// idleSample is how long the write-method phase measures the apiserver at rest.
const idleSample = 2 * time.Second

// checkPrecondition sends a JSON patch with a stale resourceVersion to one snapshot, once with
// a replace op and once with a test op, and returns the response codes (200 when it was
// written, so not guarded).
func (b *bencher) checkPrecondition(ctx context.Context, namespace string) (replace, test int, err error) {
	var list dlcv1alpha1.DLCJobSnapshotList
	if err := b.k8s.List(ctx, &list, client.InNamespace(namespace), client.Limit(1)); err != nil || len(list.Items) == 0 {
		return 0, 0, fmt.Errorf("no snapshot to check the JSON patch precondition on (%v)", err)
	}
	obj := &list.Items[0]
	codes := make([]int, 2)
	for i, op := range []string{"replace", "test"} {
		if err := b.k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return 0, 0, err
		}
		current := obj.ResourceVersion
		obj.ResourceVersion = "1" // long gone: the object was written since
		_, err := jsonPatchWrite(ctx, b.k8s, obj, op)
		codes[i] = http.StatusOK
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			codes[i] = int(status.Status().Code)
		} else if err != nil {
			return 0, 0, fmt.Errorf("a JSON patch with a stale resourceVersion (%s op): %w", op, err)
		}
		obj.ResourceVersion = current
	}
	return codes[0], codes[1], nil
}
