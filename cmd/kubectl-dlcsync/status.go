package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/xlab/treeprint"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/queryspec"
)

// maxFailedShown bounds the failed jobs listed, so that the status fits one screen.
const maxFailedShown = 10

// maxMessage bounds a reason message in the tree to one line.
const maxMessage = 100

func newStatusCommand(root *rootOptions) *cobra.Command {
	var output *objectOutput
	cmd := &cobra.Command{
		Use:   "status QUERY",
		Short: "Show a JobQuery as a tree: conditions, snapshots by status, the last sync and failed jobs",
		Long: "status shows a JobQuery as a tree: its conditions, its snapshots counted by status, the last sync\n" +
			"and the failed jobs. With -o json|yaml it prints the JobQuery and every snapshot it holds as a v1 List\n" +
			"(the JobQuery first), the objects the tree is drawn from.",
		Example: `  kubectl dlcsync status recent-jobs -n ml
  kubectl dlcsync status recent-jobs -n ml -o json | jq '.items[1:][].status.phase'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeQueries(root),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			printer, err := output.printer()
			if err != nil {
				return err
			}
			c, key, q, err := readQuery(ctx, root, args[0])
			if err != nil {
				return err
			}
			if printer != nil {
				objs := []runtime.Object{q}
				err := eachClaimed(ctx, c, q, func(s *dlcv1alpha1.DLCJobSnapshot) { objs = append(objs, s) })
				if err != nil {
					return err
				}
				return printList(printer, objs, root.streams.Out)
			}
			snaps, err := summarise(ctx, c, q)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(root.streams.Out, statusTree(key, q, snaps, root.now()))
			return err
		},
	}
	output = addObjectOutput(cmd, "the JobQuery and its snapshots (a v1 List)")
	return cmd
}

// snapshotSummary is what the status shows of a query's snapshots.
type snapshotSummary struct {
	byPhase  map[string]int
	retained int
	failed   []dlcv1alpha1.DLCJobSnapshot
	total    int
}

// summarise reads the query's snapshots and keeps only counts and the failed jobs.
func summarise(ctx context.Context, c client.Client, q *dlcv1alpha1.JobQuery) (*snapshotSummary, error) {
	sum := &snapshotSummary{byPhase: map[string]int{}}
	err := eachClaimed(ctx, c, q, func(s *dlcv1alpha1.DLCJobSnapshot) {
		sum.total++
		if !s.Status.Matching {
			sum.retained++
		}
		sum.byPhase[cmp.Or(s.Status.Phase, "Unknown")]++
		if s.Status.Phase == dlcv1alpha1.JobStatusFailed || s.Status.Phase == dlcv1alpha1.JobStatusFailedReserving {
			s.Status.Job = nil // the tree needs the summary fields only
			sum.failed = append(sum.failed, *s)
		}
	})
	return sum, err
}

// eachClaimed calls visit with each snapshot the query claims, read in chunks.
func eachClaimed(ctx context.Context, c client.Client, q *dlcv1alpha1.JobQuery, visit func(*dlcv1alpha1.DLCJobSnapshot)) error {
	token := ""
	for {
		var list dlcv1alpha1.DLCJobSnapshotList
		if err := c.List(ctx, &list, client.InNamespace(q.Namespace), client.Limit(listChunk), client.Continue(token)); err != nil {
			return fmt.Errorf("listing DLCJobSnapshots of %s: %w", client.ObjectKeyFromObject(q), err)
		}
		for i := range list.Items {
			if claimedBy(&list.Items[i], q.UID) {
				visit(&list.Items[i])
			}
		}
		if token = list.Continue; token == "" {
			return nil
		}
	}
}

// claimedBy reports whether a snapshot belongs to the query with this UID: by an owner reference
// or as a holder (dlc.dlcsync.io/holders). Not by status.matchedBy, which lists only the
// queries that match the job now, so that a snapshot retained after its job stopped matching
// (prunePolicy Retain) would not count.
func claimedBy(s *dlcv1alpha1.DLCJobSnapshot, uid types.UID) bool {
	for _, ref := range s.OwnerReferences {
		if ref.UID == uid {
			return true
		}
	}
	for _, pair := range strings.Split(s.Annotations[dlcv1alpha1.AnnotationHolders], ",") {
		if _, holder, ok := strings.Cut(strings.TrimSpace(pair), "/"); ok && holder != "" && types.UID(holder) == uid {
			return true
		}
	}
	return false
}

// statusTree renders the query, its conditions, its snapshots by status, the last sync and the
// failed jobs, newest first.
func statusTree(key client.ObjectKey, q *dlcv1alpha1.JobQuery, snaps *snapshotSummary, now time.Time) string {
	tree := treeprint.NewWithRoot("JobQuery " + key.String())
	tree.AddNode(specLine(q))
	conds := tree.AddBranch("Conditions")
	if len(q.Status.Conditions) == 0 {
		conds.AddNode("none yet: the controller has not synced this query")
	}
	for _, c := range q.Status.Conditions {
		conds.AddNode(fmt.Sprintf("%-12s %-7s %-22s %-6s %s", c.Type, c.Status, c.Reason, ago(&c.LastTransitionTime, now),
			oneLine(c.Message)))
	}
	counts := tree.AddBranch(fmt.Sprintf("Snapshots: %d (status.snapshots %d, the API matched %d%s)", snaps.total,
		q.Status.Snapshots, q.Status.MatchedJobs, truncatedNote(q)))
	phases := make([]string, 0, len(snaps.byPhase))
	for p := range snaps.byPhase {
		phases = append(phases, p)
	}
	slices.Sort(phases)
	for _, p := range phases {
		counts.AddNode(fmt.Sprintf("%s: %d", p, snaps.byPhase[p]))
	}
	if snaps.retained > 0 {
		counts.AddNode(fmt.Sprintf("retained, no longer matching: %d", snaps.retained))
	}
	addLastSync(tree, q, now)
	addFailed(tree, q.Name, snaps.failed, now)
	return tree.String()
}

func specLine(q *dlcv1alpha1.JobQuery) string {
	parts := []string{"region " + q.Spec.RegionID, "every " + q.Spec.Interval.Duration.String()}
	if f := q.Spec.FullResyncInterval; f != nil {
		parts = append(parts, "full listing every "+f.Duration.String())
	} else {
		// Unset means the manager's default; the CRD does not write it in.
		parts = append(parts, "full listing every "+queryspec.DefaultFullResyncInterval.String()+" (default)")
	}
	if q.Spec.Endpoint != "" {
		parts = append(parts, "endpoint "+q.Spec.Endpoint)
	}
	if q.Spec.Suspend {
		parts = append(parts, "SUSPENDED")
	}
	return "Spec: " + strings.Join(parts, ", ")
}

func truncatedNote(q *dlcv1alpha1.JobQuery) string {
	if !q.Status.Truncated {
		return ""
	}
	return fmt.Sprintf("; truncated to maxJobs %d", q.Spec.MaxJobs)
}

// addLastSync describes the last sync that wrote the status. A sync that changes nothing
// writes nothing, so this can be older than the interval on a healthy query; the wording says so.
func addLastSync(tree treeprint.Tree, q *dlcv1alpha1.JobQuery, now time.Time) {
	st := &q.Status
	if st.LastSyncTime == nil {
		tree.AddNode("Last sync: none yet")
		return
	}
	last := tree.AddBranch(fmt.Sprintf("Last sync that changed the status: %s ago", ago(st.LastSyncTime, now)))
	if s := st.LastSyncStats; s != nil {
		last.AddNode(syncStatsLine(s))
	}
	if st.LastSuccessfulSyncTime != nil && !st.LastSuccessfulSyncTime.Equal(st.LastSyncTime) {
		last.AddNode(fmt.Sprintf("last successful: %s ago", ago(st.LastSuccessfulSyncTime, now)))
	}
	if st.ConsecutiveFailures > 0 {
		last.AddNode(fmt.Sprintf("consecutive failures: %d", st.ConsecutiveFailures))
	}
	if st.NextSyncTime != nil && st.NextSyncTime.After(now) {
		last.AddNode(fmt.Sprintf("next sync: in %s", duration.HumanDuration(st.NextSyncTime.Sub(now))))
	}
}

func addFailed(tree treeprint.Tree, query string, failed []dlcv1alpha1.DLCJobSnapshot, now time.Time) {
	if len(failed) == 0 {
		tree.AddNode("Failed jobs: none")
		return
	}
	// Newest failure first: the one a user is most likely asking about.
	slices.SortFunc(failed, func(a, b dlcv1alpha1.DLCJobSnapshot) int {
		return cmp.Compare(timeOf(b.Status.FinishedAt), timeOf(a.Status.FinishedAt))
	})
	branch := tree.AddBranch(fmt.Sprintf("Failed jobs: %d", len(failed)))
	for i := range failed[:min(len(failed), maxFailedShown)] {
		s := &failed[i].Status
		reason := strings.TrimPrefix(strings.Join([]string{s.ReasonCode, oneLine(s.ReasonMessage)}, ": "), ": ")
		branch.AddNode(fmt.Sprintf("%s  %s  %s, finished %s ago  %s", failed[i].Name, orNone(s.DisplayName),
			orNone(s.JobType), ago(s.FinishedAt, now), orNone(reason)))
	}
	if len(failed) > maxFailedShown {
		branch.AddNode(fmt.Sprintf("... and %d more: kubectl dlcsync get jobs --query %s -l %s=%s",
			len(failed)-maxFailedShown, query, dlcv1alpha1.LabelStatus, dlcv1alpha1.JobStatusFailed))
	}
}

func timeOf(t *metav1.Time) int64 {
	if t == nil {
		return 0
	}
	return t.UnixNano()
}

// oneLine keeps the first line of a message, cut to maxMessage characters.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > maxMessage {
		return string(r[:maxMessage-3]) + "..."
	}
	return s
}
