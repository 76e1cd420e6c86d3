// Package docs_test checks that the names the docs mention exist in the code: the flags of the
// manager, dlcsim, the plugin, the demo and the bench (from their --help), printer columns (the
// CRDs and the plugin's tables), dlc.dlcsync.io/ labels, annotations and finalizers, condition
// types and reasons, metric names, chart values and make targets; and, the other way round,
// that every metric and every event reason the code emits is documented.
package docs_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// generatedDocs are written by tools from the code, not by hand: make docs (from the API) and
// make bench.
var generatedDocs = map[string]bool{"docs/reference.md": true, "docs/benchmarks.md": true}

var (
	bin      string // the folder of the binaries TestMain built
	loadOnce sync.Once
	names    *known
	loadErr  error
)

// TestMain builds the binaries whose --help lists their flags once, in one go build (seconds
// with a warm build cache), and removes them at the end.
func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "dlcsync-docs-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, b := range sortedKeys(binaries) {
		args = append(args, binaries[b])
	}
	build := exec.Command("go", args...)
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building %s: %w: %s", strings.Join(args[3:], " "), err, out)
	}
	bin = dir
	return m.Run(), nil
}

// knownNames reads the code's names once per test process.
func knownNames(t *testing.T) *known {
	t.Helper()
	loadOnce.Do(func() { names, loadErr = loadKnown(testenv.RepoRoot(), bin) })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return names
}

// handWrittenDocs returns README.md and docs/*.md but the generated ones, by their paths relative
// to the repository.
func handWrittenDocs(t *testing.T) map[string]string {
	t.Helper()
	root := testenv.RepoRoot()
	paths, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, p := range append(paths, filepath.Join(root, "README.md")) {
		rel, _ := filepath.Rel(root, p)
		if generatedDocs[filepath.ToSlash(rel)] {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs[filepath.ToSlash(rel)] = string(data)
	}
	if len(docs) < 8 {
		t.Fatalf("found only %d docs: %v", len(docs), sortedKeys(docs))
	}
	return docs
}

// TestTheDocsNameOnlyWhatTheCodeDefines: every flag, column, label, annotation, condition,
// reason, metric, chart value and make target the docs mention is one the code defines.
func TestTheDocsNameOnlyWhatTheCodeDefines(t *testing.T) {
	k := knownNames(t)
	clear(mentions)
	docs := handWrittenDocs(t)
	for _, file := range sortedKeys(docs) {
		for _, p := range check(k, file, docs[file]) {
			t.Error(p)
		}
	}
	// The docs mention at least this many of each kind today: far fewer means a check stopped
	// recognising them (a changed format), not that the docs got better.
	least := map[string]int{"flag": 150, "make target": 40, "column": 40, "key": 40, "reason": 25, "condition": 3,
		"metric": 15, "value": 30}
	for kind, n := range least {
		if mentions[kind] < n {
			t.Errorf("checked only %d mentions of kind %s in the docs, expected at least %d", mentions[kind], kind, n)
		}
	}
	t.Logf("checked mentions: %v", mentions)
}

// TestEveryMetricIsInTheMetricsTable: each metric the code registers has its row in
// docs/operating.md's table, where the chart's dashboards and alerts send readers.
func TestEveryMetricIsInTheMetricsTable(t *testing.T) {
	k := knownNames(t)
	operating := handWrittenDocs(t)["docs/operating.md"]
	for _, name := range sortedKeys(k.metrics) {
		if !strings.Contains(operating, "| `"+name+"` |") {
			t.Errorf("metric %s (a %s) has no row in docs/operating.md's metrics table", name, k.metrics[name])
		}
	}
}

// TestEveryEventReasonIsDocumented: each event reason the code emits by name is named in
// docs/operating.md's section on events (the API's reason constants have their rows in the
// reasons table: api/v1alpha1's TestEveryReasonIsDocumented), and so is each job event's reason
// from TransitionEvent but those of phases that are not ends, which the rule Job<phase> covers.
func TestEveryEventReasonIsDocumented(t *testing.T) {
	k := knownNames(t)
	events := section(handWrittenDocs(t)["docs/operating.md"], "## Events")
	if events == "" {
		t.Fatal("docs/operating.md has no section ## Events")
	}
	if !strings.Contains(events, "`Job<phase>`") {
		t.Error("docs/operating.md's events section does not give the rule Job<phase> for job events")
	}
	for _, reason := range sortedKeys(k.jobEvents) {
		phase := strings.TrimPrefix(reason, "Job")
		if k.phases[phase] && snapshot.Outcome(phase) == "" {
			continue
		}
		if !strings.Contains(events, "`"+reason+"`") {
			t.Errorf("job event reason %s (snapshot.TransitionEvent) is not named in docs/operating.md's events section", reason)
		}
	}
	for _, l := range k.literals {
		if !strings.Contains(events, "`"+l.reason+"`") {
			t.Errorf("event reason %s (%s) is not named in docs/operating.md's events section", l.reason, l.where)
		}
	}
}

// section is the text of a markdown section from its heading to the next heading of its level.
func section(doc, heading string) string {
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		return ""
	}
	level := strings.SplitN(heading, " ", 2)[0]
	if i := strings.Index(rest, "\n"+level+" "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// TestTheCheckFindsMistakes: a snippet with one made-up name of each kind, among real ones, is
// reported at each made-up name's line and nowhere else, so the check above is not vacuous.
func TestTheCheckFindsMistakes(t *testing.T) {
	k := knownNames(t)
	snippet := strings.Join([]string{
		/* 1 */ "# Operating",
		/* 2 */ "Start the manager with `--allowed-endpoints` and `--allowed-endpointz`.",
		/* 3 */ "```sh",
		/* 4 */ "kubectl dlcsync get jobs --query q --wait",
		/* 5 */ "go run ./cmd/dlcsim --generate 10 --lifecycles",
		/* 6 */ "helm install dlcsync charts/dlcsync --set serviceMonitor.enabled=true --set serviceMonitor.labelz.x=y",
		/* 7 */ "kubectl dlcsync frobnicate q",
		/* 8 */ "make demo bench-quik && go run ./hack/image --push r/x:1 --pull r/x:1",
		/* 9 */ "```",
		/* 10 */ "Select with `-l dlc.dlcsync.io/status=Failed` or `dlc.dlcsync.io/statuz=Failed`.",
		/* 11 */ "| Reason | Ready | Readiness | Cause |",
		/* 12 */ "|---|---|---|---|",
		/* 13 */ "| `Synced` | True | True | fine |",
		/* 14 */ "| `SyncedOnTuesdays` | True | True | made up |",
		/* 15 */ "Watch `dlcsync_syncs_total`, `dlcsync_sync_duration_seconds_bucket` and `dlcsync_syncs_failed_total`.",
		/* 16 */ "The chart's `serviceMonitor.additionalLabels` and the chart's `serviceMonitor.extraLabels`.",
		/* 17 */ "```console",
		/* 18 */ "$ kubectl get jq -n ml-team",
		/* 19 */ "NAME   READY   REASON          LAST SUCCESS   WHEN",
		/* 20 */ "a      True    Synced          2m             now",
		/* 21 */ "b      False   Unauthorised    3h             now",
		/* 22 */ "$ kubectl dlcsync get jobs -n ml-team",
		/* 23 */ "NAME   DISPLAY NAME   DURATION   COLOUR",
		/* 24 */ "```",
		/* 25 */ "`kubectl wait djs/x --for=condition=Complete`, `--for=condition=Finished`; `--zap-log-level`, `--zip-*`.",
		/* 26 */ "Columns: `NAME REGION LAST SUCCESS COLOUR`.",
		/* 27 */ "A sync that fails emits the `SyncFailed` event with action `JobPhaseChanged` or action `JobPhaseChangd`.",
	}, "\n")
	got := map[string]bool{}
	for _, p := range check(k, "snippet.md", snippet) {
		got[fmt.Sprintf("%d %s %s", p.line, p.kind, p.name)] = true
	}
	want := []string{
		"2 flag --allowed-endpointz",
		"4 flag --wait", // a flag of kubectl dlcsync sync, not of get
		"5 flag --lifecycles",
		"6 value serviceMonitor.labelz.x",
		"7 command kubectl dlcsync frobnicate",
		"8 make target bench-quik",
		"8 flag --pull",
		"10 key dlc.dlcsync.io/statuz",
		"11 condition Readiness",
		"14 reason SyncedOnTuesdays",
		"15 metric dlcsync_syncs_failed_total",
		"16 value serviceMonitor.extraLabels",
		"19 column WHEN",
		"21 reason Unauthorised",
		"23 column COLOUR",
		"25 condition Finished",
		"25 flag --zip-*",
		"26 column COLOUR",
		"27 reason SyncFailed",
		"27 action JobPhaseChangd",
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("not reported: %s", w)
		}
		delete(got, w)
	}
	for g := range got {
		t.Errorf("reported, but the snippet has it right: %s", g)
	}
}
