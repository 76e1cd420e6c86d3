package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// The exit codes of wait, so that a CI script can tell the outcomes apart.
const (
	exitFailed   = 2
	exitStopped  = 3
	exitTimedOut = 4
)

// exitError is an error with the exit code the plugin ends with.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitCode is the code the plugin exits with after err: an exitError's own, else 1.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

// waitPollInterval is how often wait reads the snapshots (they change at most once per sync).
const waitPollInterval = time.Second

// forTerminal is wait's default --for: until the job has ended.
const forTerminal = "terminal"

type waitOptions struct {
	query   string
	forWhat string
	timeout time.Duration
	output  *objectOutput
}

func newWaitCommand(root *rootOptions) *cobra.Command {
	var o waitOptions
	cmd := &cobra.Command{
		Use:   "wait JOB | --query QUERY",
		Short: "Wait until a job (or every job of a query) has ended, and exit with how it ended",
		Long: "wait reads the DLCJobSnapshot of a job (by job ID or snapshot name) until the job has ended, as\n" +
			"its conditions count it (SucceededReserving and FailedReserving have ended), or, with --for PHASE,\n" +
			"until it is in that phase. With --query it waits for every job the query keeps.\n\n" +
			"Exit codes: 0 the job succeeded (or reached the phase); 2 it failed; 3 it was stopped; 4 the\n" +
			"timeout passed; 1 any other error. A job that ends otherwise before reaching the --for phase exits\n" +
			"with its end's code. With --query: 2 if any job failed, else 3 if any was stopped.",
		Example: "  kubectl dlcsync wait dlc1a2b3c4d5e6f7 -n ml --timeout 2h\n" +
			"  kubectl dlcsync wait --query nightly -n ml --timeout 6h\n" +
			"  kubectl dlcsync wait dlc1a2b3c4d5e6f7 -n ml --for Running --timeout 10m",
		Args: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (o.query != "") {
				return errors.New("name one job, or a query with --query")
			}
			if o.forWhat != forTerminal && !slices.Contains(dlcv1alpha1.JobStatuses, o.forWhat) {
				return fmt.Errorf("--for %q: want %s or a job phase (%s)", o.forWhat, forTerminal, strings.Join(dlcv1alpha1.JobStatuses, ", "))
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 || o.query != "" {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return completeNames(cmd, root, jobsResource, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWait(cmd.Context(), root, args, o)
		},
	}
	cmd.Flags().StringVar(&o.query, "query", "", "Wait for every job of this JobQuery instead of one job")
	_ = cmd.RegisterFlagCompletionFunc("query", completeQueryFlag(root))
	o.output = addObjectOutput(cmd, "the snapshots waited for (one object for JOB, a v1 List with --query)")
	cmd.Flags().StringVar(&o.forWhat, "for", forTerminal, "terminal (the job has ended) or a job phase, e.g. Running")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "How long to wait; 0 waits until the job ends")
	return cmd
}

// runWait polls the snapshots until the wait is over.
func runWait(ctx context.Context, root *rootOptions, args []string, o waitOptions) error {
	printer, err := o.output.printer()
	if err != nil {
		return err
	}
	c, err := root.client()
	if err != nil {
		return err
	}
	ns, err := root.namespace()
	if err != nil {
		return err
	}
	// Reads run under the caller's context, not the timeout's: a client-side rate
	// limiter refuses to start a read that the deadline would cut, which is not a failure.
	reads := ctx
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	what := "the jobs of JobQuery " + ns + "/" + o.query
	if o.query == "" {
		what = "job " + args[0]
	}
	var last []dlcv1alpha1.DLCJobSnapshot
	err = wait.PollUntilContextCancel(ctx, waitPollInterval, true, func(context.Context) (bool, error) {
		snaps, err := readWaited(reads, c, ns, args, o.query)
		switch {
		case err != nil && lasting(err):
			return false, err
		case err != nil:
			// A long wait outlives an apiserver restart or a throttled read; say so, go on.
			_, _ = fmt.Fprintf(root.streams.ErrOut, "Warning: %v; trying again\n", err)
			return false, nil
		}
		last = snaps
		return len(snaps) > 0 && waitOver(snaps, o.forWhat), nil
	})
	if err != nil {
		if wait.Interrupted(err) && o.timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &exitError{code: exitTimedOut, msg: fmt.Sprintf("timed out after %s waiting for %s: %s", o.timeout, what, describe(last))}
		}
		return err
	}
	if printer != nil {
		if err := printWaited(printer, root, last, o.query != ""); err != nil {
			return err
		}
	}
	return outcome(root, last, o.forWhat, printer == nil)
}

// printWaited prints the snapshots as they were when the wait ended: the job's, or a v1 List of
// the query's.
func printWaited(printer printers.ResourcePrinter, root *rootOptions, snaps []dlcv1alpha1.DLCJobSnapshot, list bool) error {
	if !list {
		return printObject(printer, &snaps[0], root.streams.Out)
	}
	objs := make([]runtime.Object, len(snaps))
	for i := range snaps {
		objs[i] = &snaps[i]
	}
	return printList(printer, objs, root.streams.Out)
}

// lasting reports whether a read error is one that waiting longer does not fix: no such query,
// no access.
func lasting(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)
}

// readWaited reads the waited snapshots: the one of the job (none while it is not mirrored yet),
// or those the query matches.
func readWaited(ctx context.Context, c client.Client, ns string, args []string, query string) ([]dlcv1alpha1.DLCJobSnapshot, error) {
	if query == "" {
		var s dlcv1alpha1.DLCJobSnapshot
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: snapshot.Name(args[0])}, &s)
		switch {
		case apierrors.IsNotFound(err):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("reading the snapshot of job %s: %w", args[0], err)
		}
		return []dlcv1alpha1.DLCJobSnapshot{s}, nil
	}
	var q dlcv1alpha1.JobQuery
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: query}, &q); err != nil {
		return nil, fmt.Errorf("reading JobQuery %s/%s: %w", ns, query, err)
	}
	var list dlcv1alpha1.DLCJobSnapshotList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing snapshots of %s: %w", ns, err)
	}
	return slices.DeleteFunc(list.Items, func(s dlcv1alpha1.DLCJobSnapshot) bool {
		return !s.Status.Matching || !slices.Contains(s.Status.MatchedBy, query)
	}), nil
}

// waitOver reports whether every snapshot has ended or is in the phase waited for. A job in a
// reservation period that leads to the phase waited for (SucceededReserving for --for Succeeded)
// is waited for.
func waitOver(snaps []dlcv1alpha1.DLCJobSnapshot, forWhat string) bool {
	for _, s := range snaps {
		phase := s.Status.Phase
		ended := snapshot.Outcome(phase) != ""
		switch {
		case forWhat == forTerminal && !ended:
			return false
		case forWhat == forTerminal, phase == forWhat, dlc.IsTerminal(phase):
		case !ended, snapshot.Outcome(phase) == snapshot.Outcome(forWhat):
			return false
		}
	}
	return true
}

// outcome prints how each job ended (unless -o printed the snapshots) and returns the exit of the
// worst: failed, then stopped.
func outcome(root *rootOptions, snaps []dlcv1alpha1.DLCJobSnapshot, forWhat string, printLines bool) error {
	code := 0
	var bad []string
	for _, s := range snaps {
		st := &s.Status
		line := fmt.Sprintf("Job %s (%s) %s", st.DisplayName, s.Spec.JobID, st.Phase)
		if st.ReasonCode != "" && snapshot.Outcome(st.Phase) != snapshot.OutcomeSucceeded {
			line += ": " + st.ReasonCode
			if st.ReasonMessage != "" {
				line += ": " + st.ReasonMessage
			}
		}
		if printLines {
			_, _ = fmt.Fprintln(root.streams.Out, line)
		}
		if forWhat != forTerminal && st.Phase == forWhat {
			continue
		}
		switch snapshot.Outcome(st.Phase) {
		case snapshot.OutcomeFailed:
			code = exitFailed
			bad = append(bad, line)
		case snapshot.OutcomeStopped:
			if code != exitFailed {
				code = exitStopped
			}
			bad = append(bad, line)
		case snapshot.OutcomeSucceeded:
			if forWhat != forTerminal {
				// Succeeded without being seen in the phase waited for (it may have passed it
				// between two syncs): its end's code, 0, and a note.
				_, _ = fmt.Fprintf(root.streams.ErrOut, "Note: job %s ended without being seen %s\n", s.Spec.JobID, forWhat)
			}
		}
	}
	if code == 0 {
		return nil
	}
	return &exitError{code: code, msg: strings.Join(bad, "; ")}
}

// describe says where the waited jobs are, for a timeout.
func describe(snaps []dlcv1alpha1.DLCJobSnapshot) string {
	if len(snaps) == 0 {
		return "no snapshot yet"
	}
	counts := map[string]int{}
	for _, s := range snaps {
		counts[s.Status.Phase]++
	}
	var parts []string
	for phase, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, phase))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
