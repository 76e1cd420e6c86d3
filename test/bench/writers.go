package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// The two reference writers: the bare client that shows the limit, and the loop a user would
// script without dlcsync.

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

// apply server-side applies body to the object (or, with status, to its status subresource).
func apply(ctx context.Context, c client.Client, body applyBody, status bool, owner string) error {
	body.APIVersion, body.Kind = dlcv1alpha1.GroupVersion.String(), "DLCJobSnapshot"
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	obj := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: body.Metadata.Namespace, Name: body.Metadata.Name}}
	patch := client.RawPatch(types.ApplyPatchType, data)
	if status {
		return c.Status().Patch(ctx, obj, patch, client.FieldOwner(owner), client.ForceOwnership)
	}
	return c.Patch(ctx, obj, patch, client.FieldOwner(owner), client.ForceOwnership)
}

// rawCreate writes every job as a snapshot with a bare client, as fast as the client settings
// allow: one create and one status apply per job, writers in parallel. It returns the wall time.
func rawCreate(ctx context.Context, c client.Client, namespace string, jobs []dlc.JobItem, writers int) (time.Duration, error) {
	const owner = "bench-raw"
	start := time.Now()
	err := eachJob(ctx, jobs, writers, func(ctx context.Context, job *dlc.JobItem) error {
		name := snapshot.Name(job.JobID)
		obj := &dlcv1alpha1.DLCJobSnapshot{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: snapshot.Labels(job, regionID)},
			Spec:       dlcv1alpha1.DLCJobSnapshotSpec{JobID: job.JobID, RegionID: regionID},
		}
		if err := c.Create(ctx, obj, client.FieldOwner(owner)); err != nil {
			return fmt.Errorf("creating %s: %w", name, err)
		}
		return applyStatus(ctx, c, namespace, job, time.Now(), owner)
	})
	return time.Since(start), err
}

// baselineInterval is one run of the loop a CronJob would run every interval: list every page,
// then apply every job's object and status, changed or not.
func baselineInterval(ctx context.Context, c client.Client, lister dlc.Lister, namespace string, writers int) (time.Duration, int, error) {
	const owner = "bench-baseline"
	start := time.Now()
	jobs, walk, err := dlc.ListAll(ctx, lister, &dlc.ListJobsRequest{ShowOwn: dlc.Ptr(false)}, dlc.PageOptions{})
	if err != nil {
		return 0, walk.APICalls, err
	}
	err = eachJob(ctx, jobs, writers, func(ctx context.Context, job *dlc.JobItem) error {
		name := snapshot.Name(job.JobID)
		body := applyBody{Metadata: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: snapshot.Labels(job, regionID)},
			Spec: &dlcv1alpha1.DLCJobSnapshotSpec{JobID: job.JobID, RegionID: regionID}}
		if err := apply(ctx, c, body, false, owner); err != nil {
			return fmt.Errorf("applying %s: %w", name, err)
		}
		// Note: times from the job, not the clock, so that an unchanged job applies an
		// identical status (a fair baseline: the apiserver then skips the etcd write).
		modified, _ := time.Parse(dlc.TimeLayout, job.GmtModifiedTime)
		return applyStatus(ctx, c, namespace, job, modified, owner)
	})
	return time.Since(start), walk.APICalls, err
}

// eachJob runs write for every job, at most writers at a time, and stops at the first error.
func eachJob(ctx context.Context, jobs []dlc.JobItem, writers int, write func(context.Context, *dlc.JobItem) error) error {
	group, ctx := errgroup.WithContext(ctx)
	group.SetLimit(writers)
	for i := range jobs {
		group.Go(func() error { return write(ctx, &jobs[i]) })
	}
	return group.Wait()
}

// applyStatus server-side applies the status dlcsync would write for job, as of at.
func applyStatus(ctx context.Context, c client.Client, namespace string, job *dlc.JobItem, at time.Time, owner string) error {
	status, err := desiredStatus(job, at)
	if err != nil {
		return err
	}
	return apply(ctx, c, applyBody{Metadata: metav1.ObjectMeta{Namespace: namespace, Name: snapshot.Name(job.JobID)}, Status: status},
		true, owner)
}
