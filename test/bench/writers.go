package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// The reference writers: the bare client that shows the limit (one request per snapshot), the
// two-write protocol that dlcsync used while snapshots had a status subresource, and the loop a
// user would script without dlcsync.

const regionID = "cn-hangzhou"

// desiredStatus is the status dlcsync writes for a job.
func desiredStatus(job *dlc.JobItem, now time.Time) (*dlcv1alpha1.DLCJobSnapshotStatus, error) {
	converted, err := snapshot.ConvertJob(job, snapshot.Options{})
	if err != nil {
		return nil, err
	}
	st := snapshot.Status(converted, snapshot.Hash(converted), nil, metav1.NewTime(now))
	st.Matching, st.MatchedBy, st.ObservedAt = true, []string{queryName}, &metav1.Time{Time: now}
	return &st, nil
}

// applyBody is a server-side apply request body, as kubectl apply sends it.
type applyBody struct {
	APIVersion string                            `json:"apiVersion"`
	Kind       string                            `json:"kind"`
	Metadata   metav1.ObjectMeta                 `json:"metadata"`
	Spec       *dlcv1alpha1.DLCJobSnapshotSpec   `json:"spec,omitempty"`
	Status     *dlcv1alpha1.DLCJobSnapshotStatus `json:"status,omitempty"`
}

// apply server-side applies body to the object. Snapshots have no status subresource, so
// a status in the body is written like any other field.
func apply(ctx context.Context, c client.Client, body applyBody, owner string) error {
	body.APIVersion, body.Kind = dlcv1alpha1.GroupVersion.String(), "DLCJobSnapshot"
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	obj := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: body.Metadata.Namespace, Name: body.Metadata.Name}}
	return c.Patch(ctx, obj, client.RawPatch(types.ApplyPatchType, data), client.FieldOwner(owner), client.ForceOwnership)
}

// writeJob writes one job's snapshot, its status included, in namespace.
type writeJob func(ctx context.Context, c client.Client, namespace string, job *dlc.JobItem) error

// bareOwner is the field manager of the bare clients.
const bareOwner = "bench-raw"

// oneWrite creates the whole snapshot, labels, spec and status, in one request: what dlcsync
// does for a new snapshot, with nothing else around it.
func oneWrite(ctx context.Context, c client.Client, namespace string, job *dlc.JobItem) error {
	status, err := desiredStatus(job, time.Now())
	if err != nil {
		return err
	}
	obj := bareSnapshot(namespace, job)
	obj.Status = *status
	if err := c.Create(ctx, obj, client.FieldOwner(bareOwner)); err != nil {
		return fmt.Errorf("creating %s: %w", obj.Name, err)
	}
	return nil
}

// twoWrites is the protocol dlcsync used while snapshots had a status subresource: a create
// without status, then the status applied. With the subresource gone the status is
// applied to the object itself, which costs the apiserver what a status write cost (a second
// write of the whole object).
func twoWrites(ctx context.Context, c client.Client, namespace string, job *dlc.JobItem) error {
	obj := bareSnapshot(namespace, job)
	if err := c.Create(ctx, obj, client.FieldOwner(bareOwner)); err != nil {
		return fmt.Errorf("creating %s: %w", obj.Name, err)
	}
	status, err := desiredStatus(job, time.Now())
	if err != nil {
		return err
	}
	body := applyBody{Metadata: metav1.ObjectMeta{Namespace: namespace, Name: obj.Name}, Status: status}
	if err := apply(ctx, c, body, bareOwner); err != nil {
		return fmt.Errorf("applying the status of %s: %w", obj.Name, err)
	}
	return nil
}

// bareSnapshot is a job's snapshot without status, as the bare clients write it.
func bareSnapshot(namespace string, job *dlc.JobItem) *dlcv1alpha1.DLCJobSnapshot {
	return &dlcv1alpha1.DLCJobSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: snapshot.Name(job.JobID), Labels: snapshot.Labels(job, regionID)},
		Spec:       dlcv1alpha1.DLCJobSnapshotSpec{JobID: job.JobID, RegionID: regionID},
	}
}

// rawCreate writes every job's snapshot with write, writers at a time, as fast as the client
// settings allow, counting the snapshots written in done (when set). It returns the wall time.
func rawCreate(ctx context.Context, c client.Client, namespace string, jobs []dlc.JobItem, writers int, write writeJob,
	done *atomic.Int64) (time.Duration, error) {
	start := time.Now()
	err := eachJob(ctx, jobs, writers, func(ctx context.Context, job *dlc.JobItem) error {
		if err := write(ctx, c, namespace, job); err != nil {
			return err
		}
		if done != nil {
			done.Add(1)
		}
		return nil
	})
	return time.Since(start), err
}

// baselineInterval is one run of the loop a CronJob would run every interval: list every page,
// then apply every job's whole object, status included, changed or not: one request per job,
// now that the status is part of the object.
func baselineInterval(ctx context.Context, c client.Client, lister dlc.Lister, namespace string, writers int) (time.Duration, int, error) {
	const owner = "bench-baseline"
	start := time.Now()
	held, walk, err := dlc.ListAll(ctx, lister, &dlc.ListJobsRequest{ShowOwn: dlc.Ptr(false)}, dlc.PageOptions{})
	if err != nil {
		return 0, walk.APICalls, err
	}
	jobs, err := dlc.Jobs(held)
	if err != nil {
		return 0, walk.APICalls, err
	}
	err = eachJob(ctx, jobs, writers, func(ctx context.Context, job *dlc.JobItem) error {
		// Times from the job, not the clock, so that an unchanged job applies an
		// identical status (a fair baseline: the apiserver then skips the etcd write).
		modified, _ := time.Parse(dlc.TimeLayout, job.GmtModifiedTime)
		status, err := desiredStatus(job, modified)
		if err != nil {
			return err
		}
		name := snapshot.Name(job.JobID)
		body := applyBody{Metadata: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: snapshot.Labels(job, regionID)},
			Spec: &dlcv1alpha1.DLCJobSnapshotSpec{JobID: job.JobID, RegionID: regionID}, Status: status}
		if err := apply(ctx, c, body, owner); err != nil {
			return fmt.Errorf("applying %s: %w", name, err)
		}
		return nil
	})
	return time.Since(start), walk.APICalls, err
}

// eachJob runs write for every job, at most writers at a time, and stops at the first error.
func eachJob(ctx context.Context, jobs []dlc.JobItem, writers int, write func(context.Context, *dlc.JobItem) error) error {
	return each(ctx, len(jobs), writers, func(ctx context.Context, i int) error { return write(ctx, &jobs[i]) })
}

// each runs f for every index below n, at most writers at a time, and stops at the first error.
func each(ctx context.Context, n, writers int, f func(context.Context, int) error) error {
	group, ctx := errgroup.WithContext(ctx)
	group.SetLimit(writers)
	for i := range n {
		group.Go(func() error { return f(ctx, i) })
	}
	return group.Wait()
}

// seconds turns CPU seconds into a duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
