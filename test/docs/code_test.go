package docs_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// The binaries whose flags the docs name, by the name go build gives them.
const (
	binManager = "manager"
	binDlcsim  = "dlcsim"
	binPlugin  = "kubectl-dlcsync"
	binDemo    = "demo"
	binBench   = "bench"
	binImage   = "image"
	binWatcher = "failure-watcher"
)

// binaries are the packages of those binaries.
var binaries = map[string]string{binManager: "./cmd/manager", binDlcsim: "./cmd/dlcsim", binPlugin: "./cmd/kubectl-dlcsync",
	binDemo: "./cmd/demo", binBench: "./cmd/bench", binImage: "./hack/image", binWatcher: "./examples/failure-watcher"}

// column is a printer column: the name kubectl shows upper-cased, and whether only -o wide shows it.
type column struct {
	name string
	wide bool
}

// known is every name of the code that the docs may mention, read from the code itself: the
// binaries' --help, the CRDs, the API and controllers packages' constants, the metrics they
// register, the chart's values and the Makefile.
type known struct {
	flags      map[string]map[string]bool // binary → its flags, without dashes
	verbFlags  map[string]map[string]bool // plugin command → its flags (its own and the global ones)
	crdColumns map[string][]column        // a resource's plural, singular, kind and short names → its printer columns
	plugin     [][]column                 // the plugin's tables
	keys       map[string]bool            // dlc.dlcsync.io/ labels, annotations, finalizers and the group/version
	reasons    map[string]bool            // condition reasons and event reasons
	actions    map[string]bool            // event actions
	conditions map[string]bool            // condition types of both kinds
	phases     map[string]bool            // job statuses
	metrics    map[string]string          // metric name → counter, gauge, histogram, summary
	recipes    map[string]bool            // metrics the kube-state-metrics recipe defines
	values     map[string]any             // charts/dlcsync/values.yaml
	schema     map[string]any             // charts/dlcsync/values.schema.json
	make       map[string]bool            // Makefile targets
	literals   []eventLiteral             // event reasons the controllers emit by name
	jobEvents  map[string]bool            // the reasons of job events (snapshot.TransitionEvent)
}

// eventLiteral is a reason the controllers emit as a literal or a controllers constant, not
// one of the API's reason constants (those have their rows in the reasons table).
type eventLiteral struct{ reason, where string }

// loadKnown reads the names of the code under root, running the binaries built in bin.
func loadKnown(root, bin string) (*known, error) {
	k := &known{flags: map[string]map[string]bool{}, verbFlags: map[string]map[string]bool{},
		crdColumns: map[string][]column{}, keys: map[string]bool{}, reasons: map[string]bool{}, actions: map[string]bool{},
		conditions: map[string]bool{}, phases: map[string]bool{}, metrics: map[string]string{}, recipes: map[string]bool{},
		make: map[string]bool{}, jobEvents: map[string]bool{}}
	for b := range binaries {
		flags, err := helpFlags(filepath.Join(bin, b), "--help")
		if err != nil {
			return nil, err
		}
		k.flags[b] = flags
	}
	if err := k.loadPluginCommands(filepath.Join(bin, binPlugin)); err != nil {
		return nil, err
	}
	steps := []struct {
		what string
		load func(string) error
	}{
		{"the CRDs' printer columns", k.loadCRDColumns},
		{"the plugin's tables", k.loadPluginTables},
		{"the API's and controllers' constants", k.loadConstants},
		{"the metrics", k.loadMetrics},
		{"the kube-state-metrics recipe", k.loadRecipeMetrics},
		{"the chart's values", k.loadValues},
		{"the Makefile", k.loadMakeTargets},
	}
	for _, s := range steps {
		if err := s.load(root); err != nil {
			return nil, fmt.Errorf("reading %s: %w", s.what, err)
		}
	}
	// Note: the job events' reasons come from the one function that makes them, for every
	// change between two documented phases and for a phase that is not a valid reason.
	phases := append([]string{""}, dlcv1alpha1.JobStatuses...)
	for _, from := range phases {
		for _, to := range append(phases[1:], "not-a.reason") {
			reason, _ := snapshot.TransitionEvent(from, to)
			k.reasons[reason], k.jobEvents[reason] = true, true
		}
	}
	for _, p := range dlcv1alpha1.JobStatuses {
		k.phases[p] = true
	}
	k.phases[dlcv1alpha1.JobStatusOther] = true
	k.keys[dlcv1alpha1.GroupVersion.String()] = true
	return k, nil
}

// helpFlagRE matches a flag's line in Go's flag usage ("  -name type") and pflag's
// ("  -n, --name type", "      --name type"); usage text lines start with a tab or more spaces
// and a word.
var helpFlagRE = regexp.MustCompile(`^ {2,}(?:-[A-Za-z0-9], )?--?([A-Za-z0-9][A-Za-z0-9._-]*)`)

// helpFlags runs a binary with args (ending in --help) and returns the flags its usage lists.
// Note: its exit code is not looked at, since pflag's --help is an error for some of them.
func helpFlags(binary string, args ...string) (map[string]bool, error) {
	out, err := exec.Command(binary, args...).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("running %s %s: %w", filepath.Base(binary), strings.Join(args, " "), err)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if m := helpFlagRE.FindStringSubmatch(line); m != nil {
			flags[m[1]] = true
		}
	}
	if len(flags) < 2 {
		return nil, fmt.Errorf("%s %s lists %d flags; its usage format changed?\n%s", filepath.Base(binary),
			strings.Join(args, " "), len(flags), out)
	}
	return flags, nil
}

// loadPluginCommands reads the plugin's commands from its root usage and each command's flags
// from its own.
func (k *known) loadPluginCommands(binary string) error {
	out, err := exec.Command(binary, "--help").CombinedOutput()
	if err != nil {
		return fmt.Errorf("running the plugin's --help: %w: %s", err, out)
	}
	_, list, ok := strings.Cut(string(out), "Available Commands:\n")
	if !ok {
		return fmt.Errorf("the plugin's --help lists no commands:\n%s", out)
	}
	for _, line := range strings.Split(list, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			break
		}
		verb := fields[0]
		if verb == "help" || verb == "completion" {
			continue // cobra's own
		}
		flags, err := helpFlags(binary, verb, "--help")
		if err != nil {
			return err
		}
		k.verbFlags[verb] = flags
		for f := range flags {
			k.flags[binPlugin][f] = true
		}
	}
	if len(k.verbFlags) < 3 {
		return fmt.Errorf("found only %d plugin commands", len(k.verbFlags))
	}
	return nil
}

func (k *known) loadCRDColumns(root string) error {
	files, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRDs in config/crd/bases: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var crd struct {
			Spec struct {
				Names struct {
					Plural, Singular, Kind string
					ShortNames             []string
				}
				Versions []struct {
					AdditionalPrinterColumns []struct {
						Name     string
						Priority int32
					}
				}
			}
		}
		if err := yaml.Unmarshal(data, &crd); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		var columns []column
		for _, v := range crd.Spec.Versions {
			for _, c := range v.AdditionalPrinterColumns {
				columns = append(columns, column{name: strings.ToUpper(c.Name), wide: c.Priority > 0})
			}
		}
		n := crd.Spec.Names
		for _, name := range append([]string{n.Plural, n.Singular, strings.ToLower(n.Kind)}, n.ShortNames...) {
			k.crdColumns[name] = columns
		}
	}
	return nil
}

// fset holds the positions of every file goFiles parsed, for messages.
var fset = token.NewFileSet()

// goFiles parses the non-test Go files of a folder.
func goFiles(dir string) ([]*ast.File, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// stringLit is the value of a string literal, or "" for anything else.
func stringLit(e ast.Expr) string {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return ""
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		return ""
	}
	return s
}

// loadPluginTables reads every []metav1.TableColumnDefinition literal of the plugin: one per
// table, whatever its variable is called.
func (k *known) loadPluginTables(root string) error {
	files, err := goFiles(filepath.Join(root, "cmd", "kubectl-dlcsync"))
	if err != nil {
		return err
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			arr, ok := lit.Type.(*ast.ArrayType)
			if !ok {
				return true
			}
			if sel, ok := arr.Elt.(*ast.SelectorExpr); !ok || sel.Sel.Name != "TableColumnDefinition" {
				return true
			}
			var table []column
			for _, elt := range lit.Elts {
				c := column{}
				for _, field := range elt.(*ast.CompositeLit).Elts {
					kv := field.(*ast.KeyValueExpr)
					switch kv.Key.(*ast.Ident).Name {
					case "Name":
						c.name = strings.ToUpper(stringLit(kv.Value))
					case "Priority":
						c.wide = true
					}
				}
				table = append(table, c)
			}
			k.plugin = append(k.plugin, table)
			return false
		})
	}
	if len(k.plugin) < 2 {
		return fmt.Errorf("found %d plugin tables", len(k.plugin))
	}
	return nil
}

// loadConstants reads the string constants of the API package (reasons, conditions, labels and
// annotations) and of the controllers (finalizers, event reasons and actions).
func (k *known) loadConstants(root string) error {
	api, err := goFiles(filepath.Join(root, "api", "v1alpha1"))
	if err != nil {
		return err
	}
	apiConsts := constants(api)
	for name, value := range apiConsts {
		switch {
		case strings.HasPrefix(name, "Reason"):
			k.reasons[value] = true
		case strings.HasPrefix(name, "Condition"):
			k.conditions[value] = true
		}
		if strings.HasPrefix(value, dlcv1alpha1.GroupVersion.Group+"/") {
			k.keys[value] = true
		}
	}
	ctrl, err := goFiles(filepath.Join(root, "controllers"))
	if err != nil {
		return err
	}
	ctrlConsts := constants(ctrl)
	for _, value := range ctrlConsts {
		if strings.HasPrefix(value, dlcv1alpha1.GroupVersion.Group+"/") {
			k.keys[value] = true
		}
	}
	// Eventf(regarding, related, type, reason, action, note, args...): a reason or action given by
	// name is a literal, a controllers constant or an API constant; one in a variable is a
	// failure reason (an API constant) or a job event's (TransitionEvent, read in loadKnown).
	resolve := func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			return stringLit(e), true
		case *ast.Ident:
			v, ok := ctrlConsts[e.Name]
			return v, ok
		case *ast.SelectorExpr:
			v, ok := apiConsts[e.Sel.Name]
			return v, ok
		}
		return "", false
	}
	for _, f := range ctrl {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 6 {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "Eventf" {
				return true
			}
			if reason, ok := resolve(call.Args[3]); ok {
				k.reasons[reason] = true
				if _, isAPI := call.Args[3].(*ast.SelectorExpr); !isAPI {
					k.literals = append(k.literals, eventLiteral{reason: reason, where: fmt.Sprintf("controllers/%s:%d",
						filepath.Base(fset.Position(call.Pos()).Filename), fset.Position(call.Pos()).Line)})
				}
			}
			if action, ok := resolve(call.Args[4]); ok {
				k.actions[action] = true
			}
			return true
		})
	}
	if len(k.reasons) < 15 || len(k.conditions) < 5 || len(k.keys) < 8 || len(k.literals) < 2 {
		return fmt.Errorf("found only %d reasons, %d conditions, %d keys, %d event literals", len(k.reasons),
			len(k.conditions), len(k.keys), len(k.literals))
	}
	return nil
}

// constants maps the names of a package's string constants to their values.
func constants(files []*ast.File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if v := stringLit(vs.Values[i]); v != "" {
							out[name.Name] = v
						}
					}
				}
			}
		}
	}
	return out
}

// metricKinds are the constructors of client_golang's collectors, by the kind they make.
var metricKinds = map[string]string{"NewCounter": "counter", "NewCounterVec": "counter", "NewGauge": "gauge",
	"NewGaugeVec": "gauge", "NewHistogram": "histogram", "NewHistogramVec": "histogram", "NewSummary": "summary",
	"NewSummaryVec": "summary"}

// loadMetrics reads every collector the manager's packages construct: prometheus.NewXxx with
// Opts whose Name is given, in every non-test package of controllers/ and internal/.
func (k *known) loadMetrics(root string) error {
	dirs := []string{filepath.Join(root, "controllers"), filepath.Join(root, "cmd", "manager")}
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		files, err := goFiles(dir)
		if err != nil {
			return err
		}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || metricKinds[sel.Sel.Name] == "" {
					return true
				}
				opts, ok := call.Args[0].(*ast.CompositeLit)
				if !ok {
					return true
				}
				for _, e := range opts.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok && kv.Key.(*ast.Ident).Name == "Name" {
						if name := stringLit(kv.Value); name != "" {
							k.metrics[name] = metricKinds[sel.Sel.Name]
						}
					}
				}
				return true
			})
		}
	}
	if len(k.metrics) < 5 {
		return fmt.Errorf("found only %d metrics", len(k.metrics))
	}
	return nil
}

// loadRecipeMetrics reads the metrics docs/recipes/kube-state-metrics-crs.yaml defines
// (metricNamePrefix_name): kube-state-metrics serves them, not the manager.
func (k *known) loadRecipeMetrics(root string) error {
	data, err := os.ReadFile(filepath.Join(root, "docs", "recipes", "kube-state-metrics-crs.yaml"))
	if err != nil {
		return err
	}
	var config struct {
		Spec struct {
			Resources []struct {
				MetricNamePrefix string `json:"metricNamePrefix"`
				Metrics          []struct{ Name string }
			}
		}
	}
	if err := yaml.Unmarshal(data, &config); err != nil {
		return err
	}
	for _, r := range config.Spec.Resources {
		for _, m := range r.Metrics {
			k.recipes[r.MetricNamePrefix+"_"+m.Name] = true
		}
	}
	return nil
}

func (k *known) loadValues(root string) error {
	data, err := os.ReadFile(filepath.Join(root, "charts", "dlcsync", "values.yaml"))
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, &k.values); err != nil {
		return err
	}
	data, err = os.ReadFile(filepath.Join(root, "charts", "dlcsync", "values.schema.json"))
	if err != nil {
		return err
	}
	return json.Unmarshal(data, &k.schema)
}

// makeRuleRE matches a Makefile rule's targets (not a variable assignment).
var makeRuleRE = regexp.MustCompile(`^([A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*:([^=]|$)`)

func (k *known) loadMakeTargets(root string) error {
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return err
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		if m := makeRuleRE.FindStringSubmatch(s.Text()); m != nil {
			for _, t := range strings.Fields(m[1]) {
				k.make[t] = true
			}
		}
	}
	if len(k.make) < 10 {
		return fmt.Errorf("found only %d make targets", len(k.make))
	}
	return s.Err()
}

// hasValue reports whether a dotted path names a chart value: one of values.yaml, one the schema
// declares, or a key inside a value that is a free-form map (podAnnotations, additionalLabels).
func (k *known) hasValue(path string) bool {
	parts := strings.Split(path, ".")
	var v any = k.values
	for i, p := range parts {
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		if len(m) == 0 && i > 0 {
			return true // a free-form map: its keys are the user's
		}
		if v, ok = m[p]; !ok {
			break
		}
		if i == len(parts)-1 {
			return true
		}
	}
	var s any = k.schema
	for i, p := range parts {
		m, _ := s.(map[string]any)
		props, _ := m["properties"].(map[string]any)
		next, ok := props[p]
		if !ok {
			if free, ok := m["additionalProperties"]; ok && free != false && i > 0 {
				return true
			}
			return false
		}
		s = next
	}
	return true
}

// sortedKeys is for messages that list a set.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
