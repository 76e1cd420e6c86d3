package main

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// none is what a cell shows for a value that is not known (kubectl's convention).
const none = "<none>"

// outputWide is the -o value that adds the columns of Priority 1, as kubectl's.
const outputWide = "wide"

// Columns with Priority 1 appear only with -o wide (cli-runtime's table printer hides them).
var queryColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name"},
	{Name: "Ready", Type: "string"},
	{Name: "Reason", Type: "string"},
	{Name: "Snapshots", Type: "integer"},
	{Name: "Matched", Type: "integer"},
	{Name: "Last Sync", Type: "string"},
	{Name: "Interval", Type: "string"},
	{Name: "Age", Type: "string"},
	{Name: "Suspended", Type: "boolean", Priority: 1},
	{Name: "Region", Type: "string", Priority: 1},
	{Name: "Mode", Type: "string", Priority: 1},
	{Name: "API Calls", Type: "integer", Priority: 1},
	// The Ready condition's message, named Status as the CRD's printer column and Flux's
	// `kubectl get` name it.
	{Name: "Status", Type: "string", Priority: 1},
}

var jobColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name"},
	{Name: "Display Name", Type: "string"},
	{Name: "User", Type: "string"},
	{Name: "Type", Type: "string"},
	{Name: "Phase", Type: "string"},
	{Name: "GPU", Type: "string"},
	{Name: "Duration", Type: "string"},
	{Name: "Created", Type: "string"},
	{Name: "Started", Type: "string", Priority: 1},
	{Name: "Finished", Type: "string", Priority: 1},
	{Name: "Workspace", Type: "string", Priority: 1},
	{Name: "Reason", Type: "string", Priority: 1},
	{Name: "Query", Type: "string", Priority: 1},
}

// crdPrinterColumns names, for each plugin column that shows what a printer column of the CRDs
// shows (`kubectl get jq|djs`, config/crd/bases), that printer column's JSONPath: the same thing
// goes by the same name in both, and TestColumnsAreNamedAsTheCRDsNameThem holds them to it. A
// column the plugin computes differently still counts as the same thing when it answers the same
// question (DURATION: the CRD's is a job's final running time, empty until it ends; the plugin's
// also counts a running job's time up to now).
var (
	readyCondition    = `.status.conditions[?(@.type=="Ready")]`
	queryColumnFields = map[string]string{
		"Ready":     readyCondition + ".status",
		"Reason":    readyCondition + ".reason",
		"Status":    readyCondition + ".message",
		"Snapshots": ".status.snapshots",
		"Matched":   ".status.matchedJobs",
		"Last Sync": ".status.lastSyncTime",
		"Interval":  ".spec.interval",
		"Age":       ".metadata.creationTimestamp",
		"Suspended": ".spec.suspend",
		"Region":    ".spec.regionId",
		"Mode":      ".status.lastSyncStats.mode",
	}
	jobColumnFields = map[string]string{
		"Display Name": ".status.displayName",
		"User":         ".status.username",
		"Type":         ".status.jobType",
		"Phase":        ".status.phase",
		"GPU":          ".status.requestGPU",
		"Duration":     ".status.durationText",
		"Created":      ".status.createdAt",
		"Started":      ".status.startedAt",
		"Finished":     ".status.finishedAt",
		"Workspace":    ".status.workspaceName",
		"Reason":       ".status.reasonCode",
		"Query":        ".status.matchedBy",
		"Job ID":       ".spec.jobId",
	}
)

// rowObject keeps only the metadata of an object in a table row: the printer reads the namespace
// from it (-A), and a listing of thousands of snapshots need not keep their job data alive.
func rowObject(m metav1.Object) runtime.RawExtension {
	return runtime.RawExtension{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: m.GetName(), Namespace: m.GetNamespace(), Labels: m.GetLabels()}}}
}

func queryRow(q *dlcv1alpha1.JobQuery, now time.Time) metav1.TableRow {
	ready, reason, message := "Unknown", "", ""
	if c := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady); c != nil {
		ready, reason, message = string(c.Status), c.Reason, c.Message
	}
	mode, calls := none, any(none)
	if s := q.Status.LastSyncStats; s != nil {
		mode, calls = orNone(s.Mode), int64(s.APICalls)
	}
	// LAST SYNC is status.lastSyncTime, the last sync that wrote the status; a quiet sync
	// writes nothing, so a healthy query can show an older time (see docs/cli.md).
	return metav1.TableRow{
		Cells: []any{q.Name, ready, orNone(reason), int64(q.Status.Snapshots), q.Status.MatchedJobs,
			ago(q.Status.LastSyncTime, now), q.Spec.Interval.Duration.String(), ago(&q.CreationTimestamp, now),
			q.Spec.Suspend, q.Spec.RegionID, mode, calls, orNone(message)},
		Object: rowObject(q),
	}
}

func jobRow(s *dlcv1alpha1.DLCJobSnapshot, now time.Time) metav1.TableRow {
	st := &s.Status
	// The snapshot's own fields, not its job's: a listing need not decode the job data.
	user := st.Username
	if user == "" {
		user = st.UserID
	}
	var started *time.Time
	if st.StartedAt != nil {
		started = &st.StartedAt.Time
	}
	return metav1.TableRow{
		Cells: []any{s.Name, orNone(st.DisplayName), orNone(user), orNone(st.JobType), orNone(st.Phase),
			orNone(st.RequestGPU), jobDuration(st, started, now), ago(st.CreatedAt, now),
			agoTime(started, now), ago(st.FinishedAt, now), orNone(st.WorkspaceName), orNone(st.ReasonCode),
			orNone(strings.Join(st.MatchedBy, ","))},
		Object: rowObject(s),
	}
}

// jobDuration is how long a job has run: from the moment it started running to its end, or to
// now while it has not ended. The API's own duration (in seconds) is the fallback: it is only as
// fresh as the snapshot, which is rewritten when the job changes, not every second.
func jobDuration(st *dlcv1alpha1.DLCJobSnapshotStatus, started *time.Time, now time.Time) string {
	if started != nil {
		end := now
		if st.FinishedAt != nil {
			end = st.FinishedAt.Time
		}
		if !end.Before(*started) && (st.FinishedAt != nil || !dlc.IsTerminal(st.Phase)) {
			return duration.HumanDuration(end.Sub(*started))
		}
	}
	if st.Duration > 0 {
		return duration.HumanDuration(time.Duration(st.Duration) * time.Second)
	}
	return none
}

// apiTime parses a time as the API writes it; nil when it is absent or malformed.
func apiTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.Parse(dlc.TimeLayout, s)
	if err != nil {
		return nil
	}
	return &t
}

// ago renders a past time as kubectl renders ages (3m, 2h5m, 4d).
func ago(t *metav1.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return none
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func agoTime(t *time.Time, now time.Time) string {
	if t == nil {
		return none
	}
	return duration.HumanDuration(now.Sub(*t))
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}
