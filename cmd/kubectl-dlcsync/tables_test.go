package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-runewidth"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

func TestJobDuration(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	meta := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	for _, tc := range []struct {
		name    string
		status  dlcv1alpha1.DLCJobSnapshotStatus
		started *time.Time
		want    string
	}{
		{"finished: start to finish", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Failed", FinishedAt: meta(-time.Hour)},
			at(-4*time.Hour - 7*time.Minute), "3h7m"},
		{"running: start to now, not the stale API seconds", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Running", Duration: 5},
			at(-90 * time.Second), "90s"},
		{"not started yet: the API's seconds", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Queuing", Duration: 0}, nil, "<none>"},
		{"terminal without a finish time: the API's seconds", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Stopped", Duration: 3600},
			at(-5 * time.Hour), "60m"},
		{"finish before start (clock skew): the API's seconds", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Succeeded",
			FinishedAt: meta(-2 * time.Hour), Duration: 600}, at(-time.Hour), "10m"},
		{"no start time: the API's seconds", dlcv1alpha1.DLCJobSnapshotStatus{Phase: "Succeeded", Duration: 26 * 3600}, nil, "26h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := jobDuration(&tc.status, tc.started, now); got != tc.want {
				t.Errorf("jobDuration = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAPITimeRejectsWhatTheAPINeverSends(t *testing.T) {
	if got := apiTime("2026-05-01T12:00:00Z"); got == nil || !got.Equal(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("apiTime of a valid time = %v", got)
	}
	for _, s := range []string{"", "yesterday", "2026-05-01 12:00:00"} {
		if got := apiTime(s); got != nil {
			t.Errorf("apiTime(%q) = %v, want nil", s, got)
		}
	}
}

func TestResourceAliases(t *testing.T) {
	for arg, kind := range map[string]string{"queries": "JobQuery", "jq": "JobQuery", "JobQueries": "JobQuery",
		"jobs": "DLCJobSnapshot", "djs": "DLCJobSnapshot", "snapshots": "DLCJobSnapshot"} {
		r, err := resourceFor(arg)
		if err != nil || r.kind != kind {
			t.Errorf("resourceFor(%q) = %q, %v; want %q", arg, r.kind, err, kind)
		}
	}
}

// crdColumns reads the printer columns of a CRD as `make manifests` generated it: JSONPath to name.
func crdColumns(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", file))
	if err != nil {
		t.Fatalf("reading the CRD: %v", err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
	byPath := map[string]string{}
	for _, v := range crd.Spec.Versions {
		for _, c := range v.AdditionalPrinterColumns {
			byPath[c.JSONPath] = c.Name
		}
	}
	if len(byPath) == 0 {
		t.Fatalf("%s has no printer columns", file)
	}
	return byPath
}

// pluginOnlyColumns show what no printer column of the CRDs shows (NAME is kubectl's own).
// Note: every other column must be in a field map, so that renaming a column cannot take it out of
// the comparison.
var pluginOnlyColumns = map[string]bool{"Name": true, "API Calls": true}

// TestColumnsAreNamedAsTheCRDsNameThem: a plugin column that shows what a printer column of the
// CRD shows has its name, and no plugin column takes a CRD column's name for something else.
func TestColumnsAreNamedAsTheCRDsNameThem(t *testing.T) {
	for _, tc := range []struct {
		table   string
		crd     string
		columns []metav1.TableColumnDefinition
		fields  map[string]string
	}{
		{"get queries", "dlc.dlcsync.io_jobqueries.yaml", queryColumns, queryColumnFields},
		{"get jobs", "dlc.dlcsync.io_dlcjobsnapshots.yaml", jobColumns, jobColumnFields},
		{"preview", "dlc.dlcsync.io_dlcjobsnapshots.yaml", previewColumns, jobColumnFields},
	} {
		t.Run(tc.table, func(t *testing.T) {
			byPath := crdColumns(t, tc.crd)
			byName := map[string]string{}
			for path, name := range byPath {
				byName[name] = path
			}
			checked := 0
			for _, c := range tc.columns {
				field, mapped := tc.fields[c.Name]
				if !mapped {
					if !pluginOnlyColumns[c.Name] {
						t.Errorf("column %q is in no field map: say which CRD field it shows, or that it shows none", c.Name)
					}
					if path, taken := byName[c.Name]; taken {
						t.Errorf("column %q shows no CRD field, but the CRD's %q column shows %s", c.Name, c.Name, path)
					}
					continue
				}
				crdName, ok := byPath[field]
				if !ok {
					t.Errorf("column %q is said to show %s, which no printer column of %s shows", c.Name, field, tc.crd)
					continue
				}
				if crdName != c.Name {
					t.Errorf("column %q shows %s, which `kubectl get` calls %q", c.Name, field, crdName)
				}
				checked++
			}
			if checked < 5 {
				t.Errorf("only %d columns compared: the field map does not name the columns", checked)
			}
		})
	}
	// Every field map entry names a column, so that a renamed column cannot slip out of the check.
	names := map[string]bool{}
	for _, cols := range [][]metav1.TableColumnDefinition{jobColumns, previewColumns} {
		for _, c := range cols {
			names[c.Name] = true
		}
	}
	for name := range jobColumnFields {
		if !names[name] {
			t.Errorf("jobColumnFields names %q, which no job table has", name)
		}
	}
	for name := range queryColumnFields {
		if !slices.ContainsFunc(queryColumns, func(c metav1.TableColumnDefinition) bool { return c.Name == name }) {
			t.Errorf("queryColumnFields names %q, which the query table has not", name)
		}
	}
}

// TestTableAlignsByDisplayWidth: a CJK display name (two cells a character in a terminal) does not
// push the later columns of its row out of line, in the first table or in a --watch's later rows.
func TestTableAlignsByDisplayWidth(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	snap := func(name, display, user string) *dlcv1alpha1.DLCJobSnapshot {
		s := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: name}}
		s.Status.DisplayName, s.Status.Username, s.Status.JobType, s.Status.Phase = display, user, "PyTorchJob", "Running"
		return s
	}
	p := newTablePrinter(printers.PrintOptions{WithNamespace: true})
	var out strings.Builder
	table := &metav1.Table{ColumnDefinitions: jobColumns, Rows: []metav1.TableRow{
		jobRow(snap("dlc1", "语音识别实验-25", "张三"), now), jobRow(snap("dlc2", "resnet50-ddp-488", "alice"), now)}}
	if err := p.PrintObj(table, &out); err != nil {
		t.Fatal(err)
	}
	// A row printed later (--watch), with another CJK name: the columns keep their place.
	table.Rows = []metav1.TableRow{jobRow(snap("dlc3", "中文", "李四"), now)}
	if err := p.PrintObj(table, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NAMESPACE") {
		t.Fatalf("want a header and three rows, got:\n%s", out.String())
	}
	// The display columns at which the cells after DISPLAY NAME start.
	starts := func(line string, cells ...string) []int {
		var at []int
		from := 0
		for _, c := range cells {
			i := strings.Index(line[from:], c)
			if i < 0 {
				t.Fatalf("no %q in %q", c, line)
			}
			at = append(at, runewidth.StringWidth(line[:from+i]))
			from += i + len(c)
		}
		return at
	}
	want := starts(lines[0], "USER", "TYPE", "PHASE")
	for i, user := range []string{"张三", "alice", "李四"} {
		if got := starts(lines[i+1], user, "PyTorchJob", "Running"); !slices.Equal(got, want) {
			t.Errorf("row %d starts its cells at display columns %v, the header at %v:\n%s", i+1, got, want, out.String())
		}
	}
}
