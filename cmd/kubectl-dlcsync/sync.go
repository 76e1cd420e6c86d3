package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// pollInterval is how often --wait reads the JobQuery.
const pollInterval = 500 * time.Millisecond

// waitFlags are the --wait, --timeout and -o of sync and resume.
type waitFlags struct {
	wait    bool
	timeout time.Duration
	output  *objectOutput
}

func (w *waitFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, "Wait until the controller has run the sync, then print its result")
	cmd.Flags().DurationVar(&w.timeout, "timeout", 5*time.Minute, "How long --wait waits")
	w.output = addObjectOutput(cmd, "the JobQuery as written (with --wait: after the sync)")
}

func newSyncCommand(root *rootOptions) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "sync QUERY",
		Short: "Ask the controller to sync a JobQuery now",
		Long: "sync sets the annotation " + dlcv1alpha1.AnnotationRequestedAt + " to the current time, which\n" +
			"makes the controller sync the JobQuery at once. With --wait it waits until\n" +
			"status.lastHandledReconcileAt shows that sync, prints its result and fails when it failed.",
		Example: "  kubectl dlcsync sync recent-jobs -n ml --wait\n" +
			"  kubectl dlcsync sync recent-jobs -n ml --wait -o jsonpath='{.status.lastSyncStats}'",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeQueries(root),
		RunE: func(cmd *cobra.Command, args []string) error {
			return requestSync(cmd.Context(), root, args[0], nil, w)
		},
	}
	w.add(cmd)
	return cmd
}

func newSuspendCommand(root *rootOptions) *cobra.Command {
	var output *objectOutput
	cmd := &cobra.Command{
		Use:               "suspend QUERY",
		Short:             "Stop syncing a JobQuery (spec.suspend: true); its snapshots stay as they are",
		Example:           "  kubectl dlcsync suspend recent-jobs -n ml",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeQueries(root),
		RunE: func(cmd *cobra.Command, args []string) error {
			printer, err := output.printer()
			if err != nil {
				return err
			}
			c, key, q, err := readQuery(cmd.Context(), root, args[0])
			if err != nil {
				return err
			}
			patch := client.MergeFrom(q.DeepCopy())
			q.Spec.Suspend = true
			if err := c.Patch(cmd.Context(), q, patch); err != nil {
				return fmt.Errorf("suspending JobQuery %s: %w", key, err)
			}
			if printer != nil {
				return printObject(printer, q, root.streams.Out)
			}
			_, err = fmt.Fprintf(root.streams.Out, "JobQuery %s suspended\n", key)
			return err
		},
	}
	output = addObjectOutput(cmd, "the JobQuery as written")
	return cmd
}

func newResumeCommand(root *rootOptions) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "resume QUERY",
		Short: "Resume syncing a JobQuery (spec.suspend: false) and sync it now",
		Long: "resume sets spec.suspend to false and, in the same write, requests a sync as `sync` does,\n" +
			"so that --wait can wait for the first sync after the pause.",
		Example:           "  kubectl dlcsync resume recent-jobs -n ml --wait",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeQueries(root),
		RunE: func(cmd *cobra.Command, args []string) error {
			return requestSync(cmd.Context(), root, args[0], func(q *dlcv1alpha1.JobQuery) { q.Spec.Suspend = false }, w)
		},
	}
	w.add(cmd)
	return cmd
}

// readQuery reads a JobQuery of the current namespace.
func readQuery(ctx context.Context, root *rootOptions, name string) (client.WithWatch, client.ObjectKey, *dlcv1alpha1.JobQuery, error) {
	c, err := root.client()
	if err != nil {
		return nil, client.ObjectKey{}, nil, err
	}
	ns, err := root.namespace()
	if err != nil {
		return nil, client.ObjectKey{}, nil, err
	}
	key := client.ObjectKey{Namespace: ns, Name: name}
	q := &dlcv1alpha1.JobQuery{}
	if err := c.Get(ctx, key, q); err != nil {
		return nil, key, nil, fmt.Errorf("reading JobQuery %s: %w", key, err)
	}
	return c, key, q, nil
}

// requestSync sets the requestedAt annotation (after change, if any, in the same patch) and,
// with --wait, waits for the sync that handles it. With -o the JobQuery is printed (after the
// sync with --wait) and the progress goes to stderr, so that stdout parses.
func requestSync(ctx context.Context, root *rootOptions, name string, change func(*dlcv1alpha1.JobQuery), w waitFlags) error {
	printer, err := w.output.printer()
	if err != nil {
		return err
	}
	c, key, q, err := readQuery(ctx, root, name)
	if err != nil {
		return err
	}
	patch := client.MergeFrom(q.DeepCopy())
	if change != nil {
		change(q)
	}
	if q.Spec.Suspend {
		// A suspended query never syncs, so the request would wait forever (Flux refuses too).
		return fmt.Errorf("JobQuery %s is suspended: resume it with `kubectl dlcsync resume %s`", key, name)
	}
	requested := root.now().UTC().Format(time.RFC3339Nano)
	if q.Annotations == nil {
		q.Annotations = map[string]string{}
	}
	q.Annotations[dlcv1alpha1.AnnotationRequestedAt] = requested
	if err := c.Patch(ctx, q, patch); err != nil {
		return fmt.Errorf("requesting a sync of JobQuery %s: %w", key, err)
	}
	out, progress := root.streams.Out, root.streams.Out
	if printer != nil {
		progress = root.streams.ErrOut
	}
	_, _ = fmt.Fprintf(progress, "Sync of JobQuery %s requested (%s=%s)\n", key, dlcv1alpha1.AnnotationRequestedAt, requested)
	if !w.wait {
		if printer != nil {
			return printObject(printer, q, out)
		}
		return nil
	}
	before := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
	handled, err := waitForSync(ctx, c, key, requested, before, w.timeout)
	if err != nil {
		return err
	}
	if printer != nil {
		if err := printObject(printer, handled, out); err != nil {
			return err
		}
		// The result still decides the exit code; its text goes with the progress.
		return printSyncResult(progress, key, handled)
	}
	return printSyncResult(out, key, handled)
}

// waitForSync polls the JobQuery until status.lastHandledReconcileAt shows the sync requested.
// before is the Ready condition as read before the request (nil for none), so
// that a timeout can tell a manager that is not running from one that failed before it could
// record the request (a reconcile error ahead of the sync): then the Ready condition moved, or
// is False with a reason, and the error says what it says.
func waitForSync(ctx context.Context, c client.Client, key client.ObjectKey, requested string, before *metav1.Condition,
	timeout time.Duration) (*dlcv1alpha1.JobQuery, error) {
	var last *dlcv1alpha1.JobQuery
	err := wait.PollUntilContextTimeout(ctx, pollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		cur := &dlcv1alpha1.JobQuery{}
		if err := c.Get(ctx, key, cur); err != nil {
			return false, fmt.Errorf("reading JobQuery %s: %w", key, err)
		}
		last = cur
		return cur.Status.LastHandledReconcileAt == requested, nil
	})
	switch {
	case err == nil:
		return last, nil
	case !wait.Interrupted(err):
		return nil, err
	}
	if ready := unhandledReady(last, before); ready != nil {
		return nil, fmt.Errorf("JobQuery %s: the controller did not handle the sync within %s; its Ready condition says Ready=%s %s: %s",
			key, timeout, ready.Status, ready.Reason, ready.Message)
	}
	return nil, fmt.Errorf("JobQuery %s: the controller did not handle the sync within %s (is the manager running?)", key, timeout)
}

// unhandledReady returns the Ready condition of the last read of a query whose sync was not
// handled when it tells why: it moved since the request (another generation observed, a new
// transition) or it is not True. nil when there is nothing to tell (or nothing was read).
func unhandledReady(last *dlcv1alpha1.JobQuery, before *metav1.Condition) *metav1.Condition {
	if last == nil {
		return nil
	}
	ready := meta.FindStatusCondition(last.Status.Conditions, dlcv1alpha1.ConditionReady)
	if ready == nil {
		return nil
	}
	moved := before == nil || ready.ObservedGeneration != before.ObservedGeneration ||
		!ready.LastTransitionTime.Equal(&before.LastTransitionTime)
	if ready.Status != metav1.ConditionTrue || moved {
		return ready
	}
	return nil
}

// printSyncResult prints the Ready condition and the stats of the sync just handled, and fails
// when the sync did not succeed, so that scripts can rely on the exit code.
func printSyncResult(out io.Writer, key client.ObjectKey, q *dlcv1alpha1.JobQuery) error {
	ready := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
	if ready == nil {
		return fmt.Errorf("JobQuery %s has no Ready condition after its sync", key)
	}
	_, _ = fmt.Fprintf(out, "Ready=%s %s: %s\n", ready.Status, ready.Reason, ready.Message)
	if s := q.Status.LastSyncStats; s != nil {
		_, _ = fmt.Fprintln(out, syncStatsLine(s))
	}
	_, _ = fmt.Fprintf(out, "Snapshots: %d (the API matched %d)\n", q.Status.Snapshots, q.Status.MatchedJobs)
	if ready.Status != metav1.ConditionTrue {
		return errors.New("JobQuery " + key.String() + " is not ready: " + ready.Reason)
	}
	return nil
}

// syncStatsLine is one line of a sync's work.
func syncStatsLine(s *dlcv1alpha1.SyncStats) string {
	mode := s.Mode
	if mode == "" {
		mode = "sync"
	}
	return fmt.Sprintf("%s sync in %s: %d API calls, %d pages, %d retries; created %d, updated %d, deleted %d, unchanged %d",
		mode, s.Duration.Round(time.Millisecond), s.APICalls, s.Pages, s.Retries, s.Created, s.Updated, s.Deleted, s.Unchanged)
}
