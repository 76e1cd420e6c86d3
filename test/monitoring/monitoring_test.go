package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunRemovingManagerBinary(m)) }

var (
	admin  = dlcsim.Identity{AccessKeyID: "mon-admin", AccessKeySecret: "mon-admin-secret", UserID: "1001", Username: "admin", Admin: true}
	denied = dlcsim.Identity{AccessKeyID: "mon-denied", AccessKeySecret: "mon-denied-secret", UserID: "1002", Username: "eve",
		AllowListJobs: dlc.Ptr(false)}
)

// Every PromQL expression dlcsync ships (the alerts of docs/recipes/prometheusrule.yaml, which the
// chart installs, and every query and variable of docs/recipes/grafana-dashboard.json) parses, and
// names only metrics, and labels of those metrics, that the real manager exposes on /metrics once
// it has synced, failed, opened a breaker and sent (and dropped) CloudEvents.
func TestShippedQueriesNameOnlyWhatTheManagerExposes(t *testing.T) {
	families := scrapeABusyManager(t)
	exprs := shippedExpressions(t)
	if len(exprs) < 15 {
		t.Fatalf("found %d expressions in the rule and the dashboard; want them all", len(exprs))
	}
	for where, expr := range exprs {
		for _, problem := range checkExpr(expr, families) {
			t.Errorf("%s: %s\n  %s", where, problem, expr)
		}
	}
}

// The check finds what it is for: a metric the manager does not serve, a label a metric lacks,
// a grouping by a label of no metric inside, an expression that does not parse.
func TestTheCheckFindsMistakes(t *testing.T) {
	families := map[string]labelSet{"dlcsync_jobs": {"namespace": true, "query": true, "phase": true}}
	for _, expr := range []string{
		`sum(dlcsync_job)`,
		`sum by (phase) (dlcsync_jobs{credential="x"})`,
		`sum by (workspace) (dlcsync_jobs)`,
		`sum by (phase (dlcsync_jobs)`,
	} {
		if len(checkExpr(expr, families)) == 0 {
			t.Errorf("no problem found in %s", expr)
		}
	}
	if problems := checkExpr(`sum by (phase) (dlcsync_jobs{namespace=~".*"})`, families); len(problems) > 0 {
		t.Errorf("problems in a right expression: %v", problems)
	}
}

// labelSet is the label names a metric family's series carry.
type labelSet map[string]bool

// scrapeABusyManager runs the manager binary with plain-HTTP metrics and gives it every kind of
// work the shipped queries look at, then returns its metric families by name.
func scrapeABusyManager(t *testing.T) map[string]labelSet {
	g := NewWithT(t)
	env, k8s := testenv.StartWithClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)

	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{admin, denied}, Seed: 9})
	jobs := sim.Generate(20)
	for _, j := range jobs {
		sim.Patch(j.JobID, func(j *dlcsim.Job) { j.Status = dlc.StatusRunning })
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	sink := testenv.StartReceiver(t, "127.0.0.1:0")
	sink.SetDown(true)

	port, err := testenv.FreePort()
	g.Expect(err).NotTo(HaveOccurred())
	metricsAddr := "127.0.0.1:" + strconv.Itoa(port)
	mgr := testenv.StartManager(t, env, nil, "--metrics-bind-address", metricsAddr, "--metrics-secure=false",
		"--allowed-sinks", testenv.LoopbackEndpoints, "--cloudevents-backlog", "1")

	// A query that syncs and sends CloudEvents to a sink that is down (transitions dropped).
	g.Expect(testenv.CreateTenant(ctx, k8s, "team", admin.AccessKeyID, admin.AccessKeySecret)).To(Succeed())
	q := testenv.JobQuery("team", "all", srv.URL)
	q.Spec.Filter.ShowOwn = dlc.Ptr(false)
	q.Spec.CloudEvents = &dlcv1alpha1.CloudEventsSpec{Sink: dlcv1alpha1.Sink{URI: sink.URL}}
	g.Expect(k8s.Create(ctx, q)).To(Succeed())
	waitReason(ctx, t, k8s, mgr, "team", "all", dlcv1alpha1.ReasonSynced, "")
	for _, j := range jobs[:5] {
		sim.Patch(j.JobID, func(j *dlcsim.Job) { j.Status = dlc.StatusFailed })
	}
	waitReason(ctx, t, k8s, mgr, "team", "all", dlcv1alpha1.ReasonSynced, requestSync(ctx, t, k8s, "team", "all"))

	// A query whose RAM identity may not list jobs: three refusals open its breaker.
	g.Expect(testenv.CreateTenant(ctx, k8s, "refused", denied.AccessKeyID, denied.AccessKeySecret)).To(Succeed())
	g.Expect(k8s.Create(ctx, testenv.JobQuery("refused", "denied", srv.URL))).To(Succeed())
	waitReason(ctx, t, k8s, mgr, "refused", "denied", dlcv1alpha1.ReasonForbidden, "")
	for range 3 {
		waitReason(ctx, t, k8s, mgr, "refused", "denied", "", requestSync(ctx, t, k8s, "refused", "denied"))
	}

	var families map[string]labelSet
	g.Eventually(func(g Gomega) {
		families = scrape(g, "http://"+metricsAddr+"/metrics")
		for _, name := range []string{"dlcsync_circuit_breaker_state", "dlcsync_cloudevents_dropped_total", "dlcsync_cloudevents_sent_total"} {
			g.Expect(families).To(HaveKey(name))
		}
	}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed(), func() string { return mgr.Tail(30) })
	return families
}

// requestSync asks for a sync now (the requestedAt annotation) and returns its value.
func requestSync(ctx context.Context, t *testing.T, k8s client.Client, namespace, name string) string {
	t.Helper()
	value, err := testenv.RequestSync(ctx, k8s, namespace, name)
	if err != nil {
		t.Fatal(err)
	}
	return value
}

// waitReason waits until the query handled the requestedAt value handled ("" for none) and, when
// reason is set, its Ready condition has that reason.
func waitReason(ctx context.Context, t *testing.T, k8s client.Client, mgr *testenv.Process, namespace, name, reason, handled string) {
	t.Helper()
	_, err := testenv.WaitReady(ctx, k8s, namespace, name, reason, handled, time.Minute)
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), func() string { return mgr.Tail(30) })
}

// scrape reads the metric families of a /metrics endpoint: each family's label names, with le
// for the buckets of a histogram.
func scrape(g Gomega, url string) map[string]labelSet {
	resp, err := http.Get(url) //nolint:gosec,noctx // the test's own loopback endpoint
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	textParser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := textParser.TextToMetricFamilies(strings.NewReader(string(body)))
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]labelSet{}
	for name, family := range parsed {
		labels := labelSet{}
		for _, m := range family.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		if family.GetType() == dto.MetricType_HISTOGRAM {
			out[name+"_bucket"] = labelSet{"le": true}
			for l := range labels {
				out[name+"_bucket"][l] = true
			}
			out[name+"_sum"], out[name+"_count"] = labels, labels
		}
		out[name] = labels
	}
	return out
}

// grafanaVariables are the dashboard's variables and macros, replaced by values PromQL accepts.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*", "$query", ".*")

// labelValues is a Grafana variable query: label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// shippedExpressions are the PromQL expressions of the rule and the dashboard, by where they are.
func shippedExpressions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	root := testenv.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, "docs", "recipes", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert string `json:"alert"`
					Expr  string `json:"expr"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	if err := sigsyaml.Unmarshal(data, &rule); err != nil {
		t.Fatal(err)
	}
	for _, group := range rule.Spec.Groups {
		for _, r := range group.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	data, err = os.ReadFile(filepath.Join(root, "docs", "recipes", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dashboard); err != nil {
		t.Fatal(err)
	}
	for _, p := range dashboard.Panels {
		for _, target := range p.Targets {
			out[fmt.Sprintf("panel %q %s", p.Title, target.RefID)] = grafanaVariables.Replace(target.Expr)
		}
	}
	for _, v := range dashboard.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, v.Definition)
			continue
		}
		// The label must be one of the selector's: count by (label) says so.
		out["variable "+v.Name] = fmt.Sprintf("count by (%s) (%s)", m[2], grafanaVariables.Replace(m[1]))
	}
	return out
}

// checkExpr parses expr and lists what it names that families lack: metrics, labels of matchers,
// and labels an aggregation groups by that no metric under it carries.
func checkExpr(expr string, families map[string]labelSet) []string {
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return []string{"does not parse: " + err.Error()}
	}
	var problems []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			labels, ok := families[n.Name]
			if !ok {
				problems = append(problems, fmt.Sprintf("metric %s is not exposed", n.Name))
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name != model.MetricNameLabel && !labels[m.Name] {
					problems = append(problems, fmt.Sprintf("metric %s has no label %s", n.Name, m.Name))
				}
			}
		case *parser.AggregateExpr:
			under := labelSet{}
			parser.Inspect(n.Expr, func(inner parser.Node, _ []parser.Node) error {
				if vs, ok := inner.(*parser.VectorSelector); ok {
					for l := range families[vs.Name] {
						under[l] = true
					}
				}
				return nil
			})
			for _, l := range n.Grouping {
				if !under[l] {
					problems = append(problems, fmt.Sprintf("%s groups by %s, which no metric under it has (%v)", n.Op, l, slices.Sorted(maps.Keys(under))))
				}
			}
		}
		return nil
	})
	return problems
}
