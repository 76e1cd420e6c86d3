// Command failure-watcher starts a Kubernetes Job for every failure of a PAI-DLC job that dlcsync
// mirrors in one namespace: the smallest in-cluster automation on dlcsync's snapshots, written
// to be copied.
//
// It watches DLCJobSnapshots with an informer and acts on status.transition, dlcsync's dedupe key
// for a phase change:
//   - a failure is the transition into FailedReserving or Failed from any phase that is not a
//     failure (FailedReserving -> Failed is the same failure, not a new one: its key is found in
//     status.previousTransitions);
//   - the Job it starts is named after a hash of the transition key, so starting it twice is
//     impossible: after a restart the informer replays every snapshot, and each failure already
//     acted on meets its Job (AlreadyExists) instead of starting another;
//   - a failure older than --since is history, not news: a first start does not act on last
//     month's failures. A job that dlcsync first saw already failed counts from the job's own
//     finish time. Keep the Jobs (ttlSecondsAfterFinished) longer than --since, or a restart
//     after their deletion would act again.
//
// It needs list/watch on dlcjobsnapshots.dlc.dlcsync.io and create on jobs.batch in the namespace.
//
//	go run ./examples/failure-watcher -namespace ml-team -image registry.example/notify:1 -- notify.sh
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// options say where to watch and what to start.
type options struct {
	namespace string
	image     string
	command   []string
	since     time.Duration
	// now is the clock --since counts from.
	now func() time.Time
	// log receives one line per decision.
	log func(format string, args ...any)
}

// transitionKeyAnnotation records on each Job the transition it was started for.
const transitionKeyAnnotation = "dlc.dlcsync.io/transition-key"

func main() {
	o := options{now: time.Now, log: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }}
	flag.StringVar(&o.namespace, "namespace", "default", "Namespace of the snapshots to watch and of the Jobs")
	flag.StringVar(&o.image, "image", "busybox:1.36", "Image of the Job started for each failure")
	flag.DurationVar(&o.since, "since", 24*time.Hour, "Ignore failures older than this")
	flag.Parse()
	o.command = flag.Args()
	if len(o.command) == 0 {
		o.command = []string{"sh", "-c", `echo "DLC job $DLC_JOB_NAME ($DLC_JOB_ID) failed: $DLC_REASON"`}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, ctrl.GetConfigOrDie(), o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run watches until ctx ends.
func run(ctx context.Context, cfg *rest.Config, o options) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := dlcv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	snapshots, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{o.namespace: {}}})
	if err != nil {
		return err
	}
	informer, err := snapshots.GetInformer(ctx, &dlcv1alpha1.DLCJobSnapshot{})
	if err != nil {
		return err
	}
	handle := func(obj any) {
		if s, ok := obj.(*dlcv1alpha1.DLCJobSnapshot); ok {
			if err := onSnapshot(ctx, c, s, o); err != nil {
				o.log("snapshot %s: %v", s.Name, err)
			}
		}
	}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: handle, UpdateFunc: func(_, obj any) { handle(obj) },
	}); err != nil {
		return err
	}
	return snapshots.Start(ctx)
}

// isFailure reports whether a phase is a failure (the Failed condition of a snapshot is True).
func isFailure(phase string) bool { return phase == "FailedReserving" || phase == "Failed" }

// failure is the transition that made a snapshot's job fail: the current one, or, when the job
// went on from FailedReserving to Failed (while this watcher was down, say), the earlier one
// status.previousTransitions keeps. nil when the job has not failed.
func failure(st *dlcv1alpha1.DLCJobSnapshotStatus) *dlcv1alpha1.PhaseTransition {
	tr := st.Transition
	for i := len(st.PreviousTransitions) - 1; tr != nil && isFailure(tr.From) && i >= 0; i-- {
		tr = &st.PreviousTransitions[i]
	}
	if tr == nil || !isFailure(tr.Phase) || isFailure(tr.From) {
		return nil
	}
	return tr
}

// onSnapshot starts the Job of a snapshot's failure, once.
func onSnapshot(ctx context.Context, c client.Client, s *dlcv1alpha1.DLCJobSnapshot, o options) error {
	tr := failure(&s.Status)
	if tr == nil {
		return nil
	}
	when := tr.SeenAt.Time
	if tr.From == "" && s.Status.FinishedAt != nil {
		when = s.Status.FinishedAt.Time // first seen failed: the failure is as old as the job's end
	}
	if when.Before(o.now().Add(-o.since)) {
		return nil
	}
	sum := sha256.Sum256([]byte(tr.Key))
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: "dlc-failed-" + hex.EncodeToString(sum[:8]),
			Labels:      map[string]string{"app.kubernetes.io/created-by": "failure-watcher"},
			Annotations: map[string]string{transitionKeyAnnotation: tr.Key}},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](2),
			TTLSecondsAfterFinished: ptr.To(int32((o.since + 24*time.Hour) / time.Second)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "on-failure", Image: o.image, Command: o.command, Env: []corev1.EnvVar{
					{Name: "DLC_JOB_ID", Value: s.Spec.JobID},
					{Name: "DLC_JOB_NAME", Value: s.Status.DisplayName},
					{Name: "DLC_REASON", Value: s.Status.ReasonCode},
					{Name: "DLC_SNAPSHOT", Value: s.Name},
					{Name: "DLC_TRANSITION_KEY", Value: tr.Key},
				}}},
			}},
		},
	}
	err := c.Create(ctx, job)
	switch {
	case apierrors.IsAlreadyExists(err):
		return nil // acted on before this start
	case err != nil:
		return fmt.Errorf("starting the Job of %s: %w", tr.Key, err)
	}
	o.log("job %s (%s) failed: started Job %s", s.Status.DisplayName, s.Spec.JobID, job.Name)
	return nil
}
