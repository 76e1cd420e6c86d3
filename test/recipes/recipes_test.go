// Package recipes_test checks the automation recipes of docs/recipes: the Argo CD health checks
// run in gopher-lua (the interpreter Argo CD uses) against real objects, and the Prometheus and
// kube-state-metrics files parse and name metrics dlcsync serves.
package recipes_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"

	"github.com/dlcsync/dlcsync/internal/testenv"
)

func recipe(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "recipes", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, val := range x {
			t.RawSetString(k, toLua(L, val))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, val := range x {
			t.Append(toLua(L, val))
		}
		return t
	case string:
		return lua.LString(x)
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case nil:
		return lua.LNil
	}
	return lua.LString("")
}

// health runs an Argo CD health script on an object given as YAML.
func health(t *testing.T, script, object string) (status, message string) {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(object), &obj); err != nil {
		t.Fatal(err)
	}
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		t.Fatalf("lua: %v", err)
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("the script returned %v, not a table", L.Get(-1))
	}
	return hs.RawGetString("status").String(), hs.RawGetString("message").String()
}

func TestArgoCDHealthOfAJobQuery(t *testing.T) {
	script := recipe(t, "argocd-health-jobquery.lua")
	cases := []struct{ object, status string }{
		{"metadata: {generation: 1}\n", "Progressing"},
		{`metadata: {generation: 2}
status: {observedGeneration: 1, conditions: [{type: Ready, status: "True", reason: Synced}]}`, "Progressing"},
		{`metadata: {generation: 1}
status: {observedGeneration: 1, conditions: [{type: Ready, status: "True", reason: Synced, message: Keeping 3 matching jobs}]}`, "Healthy"},
		{`metadata: {generation: 1}
status: {observedGeneration: 1, conditions: [{type: Ready, status: "False", reason: Throttled}, {type: Stalled, status: "False"}]}`, "Progressing"},
		{`metadata: {generation: 1}
status: {observedGeneration: 1, conditions: [{type: Ready, status: "False", reason: Unauthorized, message: bad key}, {type: Stalled, status: "True", reason: Unauthorized, message: bad key}]}`, "Degraded"},
		{`metadata: {generation: 1}
status: {observedGeneration: 1, conditions: [{type: Ready, status: "False", reason: Suspended}]}`, "Suspended"},
	}
	for _, c := range cases {
		if got, msg := health(t, script, c.object); got != c.status {
			t.Errorf("%s\n=> %s (%s), want %s", c.object, got, msg, c.status)
		}
	}
}

// servedMetrics are the metric names declared in controllers/metrics.go.
func servedMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "controllers", "metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	matches := regexp.MustCompile(`Name:\s+"(dlcsync_\w+)"`).FindAllStringSubmatch(string(data), -1)
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, m[1])
	}
	return names
}

func TestThePrometheusRuleUsesServedMetrics(t *testing.T) {
	text := recipe(t, "prometheusrule.yaml")
	var rule map[string]any
	if err := yaml.Unmarshal([]byte(text), &rule); err != nil {
		t.Fatal(err)
	}
	served := servedMetrics(t)
	for _, m := range regexp.MustCompile(`dlcsync_\w+`).FindAllString(text, -1) {
		if !slices.Contains(served, m) {
			t.Errorf("the rule uses %s, which dlcsync does not serve (%v)", m, served)
		}
	}
	if !strings.Contains(text, "DLCJobsFailed") {
		t.Error("no failed-jobs alert")
	}
}

func TestTheKubeStateMetricsConfigParses(t *testing.T) {
	var cfg struct {
		Kind string
		Spec struct {
			Resources []struct {
				GroupVersionKind map[string]string `json:"groupVersionKind"`
				Metrics          []map[string]any
			}
		}
	}
	if err := yaml.Unmarshal([]byte(recipe(t, "kube-state-metrics-crs.yaml")), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Kind != "CustomResourceStateMetrics" || len(cfg.Spec.Resources) != 2 || cfg.Spec.Resources[0].GroupVersionKind["kind"] != "DLCJobSnapshot" {
		t.Fatalf("config: %+v", cfg)
	}
}

// ksmSeries are the metric names kube-state-metrics-crs.yaml makes (prefix_name) and the labels
// each carries: its labelsFromPath, the StateSet's label, and those kube-state-metrics adds.
func ksmSeries(t *testing.T) map[string][]string {
	t.Helper()
	var cfg struct {
		Spec struct {
			Resources []struct {
				MetricNamePrefix string              `json:"metricNamePrefix"`
				LabelsFromPath   map[string][]string `json:"labelsFromPath"`
				Metrics          []struct {
					Name string
					Each struct {
						StateSet *struct {
							LabelName string `json:"labelName"`
						} `json:"stateSet"`
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal([]byte(recipe(t, "kube-state-metrics-crs.yaml")), &cfg); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, r := range cfg.Spec.Resources {
		for _, m := range r.Metrics {
			labels := []string{"customresource_group", "customresource_kind", "customresource_version"}
			for l := range r.LabelsFromPath {
				labels = append(labels, l)
			}
			if m.Each.StateSet != nil {
				labels = append(labels, m.Each.StateSet.LabelName)
			}
			out[r.MetricNamePrefix+"_"+m.Name] = labels
		}
	}
	return out
}

// The per-job alert names the job: its metric and every label it groups by, matches or prints
// are ones kube-state-metrics-crs.yaml produces, and the route groups by one of them.
func TestThePerJobAlertUsesLabelsKubeStateMetricsMakes(t *testing.T) {
	text := recipe(t, "alert-per-job.yaml")
	series := ksmSeries(t)
	labels, ok := series["dlcsync_snapshot_phase"]
	if !ok {
		t.Fatalf("kube-state-metrics-crs.yaml makes no dlcsync_snapshot_phase: %v", series)
	}
	for _, m := range regexp.MustCompile(`dlcsync_\w+`).FindAllString(text, -1) {
		if _, ok := series[m]; !ok {
			t.Errorf("the alert uses %s, which kube-state-metrics-crs.yaml does not make", m)
		}
	}
	var used []string
	for _, m := range regexp.MustCompile(`\$labels\.(\w+)`).FindAllStringSubmatch(text, -1) {
		used = append(used, m[1])
	}
	for _, m := range regexp.MustCompile(`by \(([^)]*)\)`).FindAllStringSubmatch(text, -1) {
		for _, l := range strings.Split(m[1], ",") {
			used = append(used, strings.TrimSpace(l))
		}
	}
	used = append(used, "phase", "job_id")
	for _, l := range used {
		if !slices.Contains(labels, l) {
			t.Errorf("the alert uses label %s, which dlcsync_snapshot_phase does not have (%v)", l, labels)
		}
	}
	for _, want := range []string{"display_name", "job_id"} {
		if !strings.Contains(text, "$labels."+want) {
			t.Errorf("the alert's summary does not name the job by %s", want)
		}
	}
}

// Every metric the Grafana dashboard queries is one dlcsync serves (a histogram's series by their
// _bucket, _sum and _count names), and every panel has a query.
func TestTheGrafanaDashboardUsesServedMetrics(t *testing.T) {
	text := recipe(t, "grafana-dashboard.json")
	var dashboard struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(text), &dashboard); err != nil {
		t.Fatal(err)
	}
	served := servedMetrics(t)
	for _, m := range regexp.MustCompile(`dlcsync_\w+`).FindAllString(text, -1) {
		base := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(m, "")
		if !slices.Contains(served, m) && !slices.Contains(served, base) {
			t.Errorf("the dashboard queries %s, which dlcsync does not serve (%v)", m, served)
		}
	}
	for _, p := range dashboard.Panels {
		if p.Type != "row" && (len(p.Targets) == 0 || p.Targets[0].Expr == "") {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
	if dashboard.UID != "dlcsync" {
		t.Errorf("dashboard uid %q: want dlcsync, which links to it rely on", dashboard.UID)
	}
}
