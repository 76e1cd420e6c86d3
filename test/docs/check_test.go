package docs_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// problem is a name a doc mentions that the code does not define.
type problem struct {
	file string
	line int
	kind string // flag, column, key, reason, condition, metric, value, make target, command
	name string
	why  string
}

func (p problem) String() string {
	return fmt.Sprintf("%s:%d: %s %q %s", p.file, p.line, p.kind, p.name, p.why)
}

// mdLine is one line of a markdown document with what the checks need to know about it.
type mdLine struct {
	n       int
	text    string
	fenced  bool     // inside a ``` block
	prefix  string   // in a fenced block, the lines this one continues (ending in \)
	spans   []string // outside fenced blocks, the `code` spans
	heading string   // the nearest heading above (or this line's, for a heading)
	header  []string // for a table row, the cells of its table's header
	headerN int      // and the header's line
	para    string   // the paragraph (or table row) the line is part of
	cells   []string // for a table row, its cells
}

var spanRE = regexp.MustCompile("`([^`]+)`")

// scan splits a markdown document into lines, tracking fences, headings and tables.
func scan(text string) []mdLine {
	var out []mdLine
	var fenced bool
	var heading, prefix string
	var header []string
	var headerN int
	raw := strings.Split(text, "\n")
	for i, t := range raw {
		l := mdLine{n: i + 1, text: t}
		trimmed := strings.TrimSpace(t)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fenced, prefix = !fenced, ""
			out = append(out, l)
			continue
		}
		if fenced {
			l.fenced, l.prefix, l.heading = true, prefix, heading
			if strings.HasSuffix(trimmed, `\`) {
				prefix += strings.TrimSuffix(trimmed, `\`) + " "
			} else {
				prefix = ""
			}
			out = append(out, l)
			continue
		}
		if strings.HasPrefix(t, "#") {
			heading = strings.TrimSpace(strings.TrimLeft(t, "#"))
		}
		l.heading = heading
		for _, m := range spanRE.FindAllStringSubmatch(t, -1) {
			l.spans = append(l.spans, m[1])
		}
		if strings.HasPrefix(trimmed, "|") {
			cells := splitRow(trimmed)
			l.cells = cells // a header or separator too, so that each row is its own paragraph
			switch {
			case header == nil && i+1 < len(raw) && strings.HasPrefix(strings.TrimSpace(raw[i+1]), "|-"):
				header, headerN = cells, i+1
			case header != nil && !strings.HasPrefix(trimmed, "|-"):
				l.header, l.headerN = header, headerN
			}
		} else {
			header = nil
		}
		out = append(out, l)
	}
	// Paragraphs: runs of prose lines between blank lines, fences and headings; a table row is
	// its own.
	for i := 0; i < len(out); {
		j := i + 1
		if prose(out[i]) && out[i].cells == nil {
			for j < len(out) && prose(out[j]) && out[j].cells == nil && !strings.HasPrefix(out[j].text, "#") {
				j++
			}
		}
		var para []string
		for _, l := range out[i:j] {
			para = append(para, l.text)
		}
		for n := i; n < j; n++ {
			out[n].para = strings.Join(para, "\n")
		}
		i = j
	}
	return out
}

// prose is a line of text outside a fenced block.
func prose(l mdLine) bool {
	t := strings.TrimSpace(l.text)
	return !l.fenced && t != "" && !strings.HasPrefix(t, "```") && !strings.HasPrefix(t, "~~~")
}

// splitRow splits a table row into trimmed cells, keeping | inside `code` (e.g. `-o wide|yaml`).
func splitRow(row string) []string {
	var cells []string
	var cell strings.Builder
	code := false
	for _, r := range strings.Trim(row, "|") {
		switch {
		case r == '`':
			code = !code
		case r == '|' && !code:
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
			continue
		}
		cell.WriteRune(r)
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

// mentions counts the names check looked at, by kind, so that a test can tell a check that
// passes from one that found nothing to look at.
var mentions = map[string]int{}

// check returns every name of file's text that k does not know, in the order of the text.
func check(k *known, file, text string) []problem {
	lines := scan(text)
	var out []problem
	for _, c := range []func(*known, string, []mdLine) []problem{checkFlags, checkMakeTargets, checkColumns, checkKeys,
		checkReasons, checkMetrics, checkValues} {
		out = append(out, c(k, file, lines)...)
	}
	return out
}

// flagRE matches a long flag; a trailing -* (`--zap-*`) stands for every flag with that prefix.
var flagRE = regexp.MustCompile(`(?:^|[\s(\[="'{,|])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(-\*)?`)

// commands are how code names a command, in the order they are tried at one position: the
// plugin (with its verb) before kubectl, kube-controller-manager before manager. A flag belongs to
// the last command before it in its code (a fenced line with the lines it continues, or one code
// span): a binary of dlcsync, whose --help is read, or a tool of externalFlags.
var commands = []struct{ re, tool string }{
	{`kubectl[ -]dlcsync(?:\s+[a-z]+)?`, binPlugin},
	{`kube-controller-manager`, "kube-controller-manager"},
	{`kube-state-metrics`, "kube-state-metrics"},
	{`dlcsim`, binDlcsim},
	{`make bench(?:-quick)?|BENCH_ARGS|cmd/bench`, binBench},
	{`make demo|DEMO_ARGS|cmd/demo`, binDemo},
	{`hack/image|make image(?:-push)?`, binImage},
	{`failure-watcher`, binWatcher},
	{`cmd/manager|make run|\bmanager\b`, binManager},
	{`\bkubectl\b`, "kubectl"},
	{`\bhelm\b`, "helm"},
	{`\bgit\b`, "git"},
	{`\bgo\b`, "go"},
}

var commandRE = func() *regexp.Regexp {
	var alts []string
	for _, c := range commands {
		alts = append(alts, "("+c.re+")")
	}
	return regexp.MustCompile(strings.Join(alts, "|"))
}()

// pluginVerbRE reads the verb of a plugin command.
var pluginVerbRE = regexp.MustCompile(`^kubectl[ -]dlcsync\s+([a-z]+)$`)

// externalFlags are the flags the docs give to other tools' commands. dlcsync cannot ask those
// tools (they need not be installed), so they are listed by hand: add one when a doc shows a new
// command, after checking the tool has it.
var externalFlags = map[string][]string{
	"kubectl": {"namespace", "for", "timeout", "overwrite", "server-side", "force-conflicts", "cascade", "all", "type",
		"from-literal", "field-selector", "no-headers", "watch", "watch-only", "context", "kubeconfig", "all-namespaces",
		"selector", "output", "filename", "dry-run", "show-labels", "label-columns", "ignore-not-found", "wait",
		// kubectl krew install's (docs/cli.md, release.md: a manifest and an archive not yet published).
		"manifest", "archive"},
	"helm":                    {"namespace", "create-namespace", "set", "set-string", "set-json", "install", "values", "reuse-values", "take-ownership", "version", "wait"},
	"git":                     {"always", "dirty", "tags"},
	"go":                      {"fuzz"},
	"kube-controller-manager": {"controllers"},
	"kube-state-metrics":      {"custom-resource-state-config-file"},
}

// formerFlags are flags a doc names because they are gone, to say what replaced them.
var formerFlags = map[string][]string{binPlugin: {"access-key-secret"}}

// defaultBinary is the binary a flag without a command in its line belongs to: the one the
// document or the section is about; "" for any.
func defaultBinary(file, heading string) string {
	switch {
	case strings.HasSuffix(file, "cli.md"):
		return binPlugin
	case strings.HasSuffix(file, "dlcsim.md"):
		return binDlcsim
	case strings.Contains(heading, "Manager flags"):
		return binManager
	}
	return ""
}

// binaryWords are how prose names a binary: a flag outside its document's binary passes when
// its line names the binary it is on ("the manager's `--allowed-endpoints`").
var binaryWords = map[string]*regexp.Regexp{
	binManager: regexp.MustCompile(`\bmanager\b`),
	binDlcsim:  regexp.MustCompile(`\b(dlcsim|simulator)\b`),
	binPlugin:  regexp.MustCompile(`\b(plugin|kubectl dlcsync)\b`),
	binDemo:    regexp.MustCompile(`\bdemo\b`),
	binBench:   regexp.MustCompile(`\bbench\b`),
}

func hasFlag(set map[string]bool, name string, glob bool) bool {
	if !glob {
		return set[name]
	}
	for f := range set {
		if strings.HasPrefix(f, name+"-") {
			return true
		}
	}
	return false
}

// codeOf is the code text of a line, as pieces: a fenced line with what it continues, or each
// code span.
func codeOf(l mdLine) []string {
	if l.fenced {
		return []string{l.prefix + l.text}
	}
	return l.spans
}

// checkFlags: a flag in code belongs to the command before it in its code line, or else to the
// binary the document or section is about, and must be one of that command's flags. A flag of
// no known command must be a flag of one of dlcsync's binaries or of the tools listed above.
func checkFlags(k *known, file string, lines []mdLine) []problem {
	var out []problem
	for _, l := range lines {
		for _, code := range codeOf(l) {
			for _, m := range flagRE.FindAllStringSubmatchIndex(code, -1) {
				name, glob := code[m[2]:m[3]], m[4] >= 0
				mentions["flag"]++
				if p := checkFlag(k, l, file, code[:m[2]], name, glob); p != nil {
					out = append(out, *p)
				}
			}
			for _, m := range pluginCommandRE.FindAllStringSubmatch(code, -1) {
				if k.verbFlags[m[1]] == nil && !pluginArgs[m[1]] {
					out = append(out, problem{file: file, line: l.n, kind: "command", name: "kubectl dlcsync " + m[1],
						why: "is not a command of the plugin (" + strings.Join(sortedKeys(k.verbFlags), ", ") + ")"})
				}
			}
		}
	}
	return out
}

// pluginCommandRE reads the plugin's verb where a command line shows one.
var pluginCommandRE = regexp.MustCompile(`kubectl[ -]dlcsync\s+([a-z]+)`)

// pluginArgs are words after kubectl dlcsync that are not verbs: cobra's own commands, and the
// docs' words for the plugin ("kubectl dlcsync answers").
var pluginArgs = map[string]bool{"help": true, "completion": true, "answers": true}

func checkFlag(k *known, l mdLine, file, context, name string, glob bool) *problem {
	shown := "--" + name
	if glob {
		shown += "-*"
	}
	bad := func(why string) *problem {
		return &problem{file: file, line: l.n, kind: "flag", name: shown, why: why}
	}
	if found := commandRE.FindAllStringSubmatch(context, -1); len(found) > 0 {
		last := found[len(found)-1]
		tool := ""
		for i, c := range commands {
			if last[i+1] != "" {
				tool = c.tool
				break
			}
		}
		if tool == binPlugin {
			if m := pluginVerbRE.FindStringSubmatch(last[0]); m != nil && k.verbFlags[m[1]] != nil {
				if !hasFlag(k.verbFlags[m[1]], name, glob) {
					return bad("is not a flag of kubectl dlcsync " + m[1])
				}
				return nil
			}
		}
		if _, ours := binaries[tool]; ours {
			if !hasFlag(k.flags[tool], name, glob) {
				return bad("is not a flag of " + tool + " (its --help)")
			}
			return nil
		}
		if !slices.Contains(externalFlags[tool], name) {
			return bad("is not in externalFlags' list for " + tool)
		}
		return nil
	}
	if b := defaultBinary(file, l.heading); b != "" {
		if hasFlag(k.flags[b], name, glob) || slices.Contains(formerFlags[b], name) {
			return nil
		}
		for other, words := range binaryWords {
			if other != b && hasFlag(k.flags[other], name, glob) && words.MatchString(l.text) {
				return nil
			}
		}
		return bad("is not a flag of " + b + ", which this part of the docs is about")
	}
	for b := range binaries {
		if hasFlag(k.flags[b], name, glob) {
			return nil
		}
	}
	for _, list := range externalFlags {
		if slices.Contains(list, name) {
			return nil
		}
	}
	return bad("is a flag of none of dlcsync's binaries nor of the tools in externalFlags")
}

// makeRE matches `make` and its targets, up to a variable, a flag or the end of the command.
var makeRE = regexp.MustCompile(`\bmake((?:\s+[a-z][a-z0-9-]*)+)`)

func checkMakeTargets(k *known, file string, lines []mdLine) []problem {
	var out []problem
	for _, l := range lines {
		for _, code := range codeOf(l) {
			for _, m := range makeRE.FindAllStringSubmatch(code, -1) {
				for _, target := range strings.Fields(m[1]) {
					mentions["make target"]++
					if !k.make[target] {
						out = append(out, problem{file: file, line: l.n, kind: "make target", name: target, why: "is not a target of the Makefile"})
					}
				}
			}
		}
	}
	return out
}

// getRE matches a shown kubectl get or kubectl dlcsync get command, whose next line is the header
// of the table it prints.
var getRE = regexp.MustCompile(`^\$ kubectl (dlcsync )?get\s+([a-z]+)\S*(.*)$`)

var wideRE = regexp.MustCompile(`-o\s*wide|--output[= ]wide`)

// pluginResources are the plugin's names of what `get` lists (cmd/kubectl-dlcsync/get.go).
var pluginResources = map[string]bool{"queries": true, "jq": true, "jobqueries": true, "jobs": true, "djs": true,
	"snapshots": true, "dlcjobsnapshots": true}

// checkColumns: the header of a table that a shown `kubectl get jq|djs` prints names printer
// columns of that CRD (those without priority unless -o wide), and one that `kubectl dlcsync get`
// prints names columns of one of the plugin's tables; a REASON shown there is a reason. A
// `Columns: `A B C“ line names columns of the CRDs.
func checkColumns(k *known, file string, lines []mdLine) []problem {
	var out []problem
	for i, l := range lines {
		if !l.fenced {
			if strings.Contains(l.text, "Columns:") && !strings.HasSuffix(file, "cli.md") {
				for _, s := range l.spans {
					out = append(out, checkColumnList(k, file, l.n, s)...)
				}
			}
			continue
		}
		m := getRE.FindStringSubmatch(l.text)
		if m == nil || i+1 >= len(lines) || !lines[i+1].fenced || strings.Contains(m[3], "-L") ||
			strings.Contains(m[3], "custom-columns") || strings.Contains(m[3], "-o ") && !wideRE.MatchString(m[3]) {
			continue
		}
		wide := wideRE.MatchString(m[3])
		tables, ok := columnTables(k, m[1], m[2])
		if !ok {
			continue
		}
		header := lines[i+1].text
		names := regexp.MustCompile(`\S+(?: \S+)*`).FindAllStringIndex(header, -1)
		for _, name := range missingColumns(tables, header, names, wide) {
			out = append(out, problem{file: file, line: lines[i+1].n, kind: "column", name: name,
				why: "is not a column " + strings.TrimSpace("kubectl "+m[1]+"get "+m[2]) + " prints" + map[bool]string{false: " without -o wide"}[wide]})
		}
		out = append(out, checkReasonColumn(k, file, lines[i+2:], header, names)...)
	}
	return out
}

// columnTables are the column sets `kubectl [plugin] get resource` may print: the plugin's
// tables, or the CRD's printer columns; false for a resource neither knows.
func columnTables(k *known, plugin, resource string) ([][]column, bool) {
	switch {
	case plugin != "" && pluginResources[resource]:
		return k.plugin, true
	case plugin == "" && k.crdColumns[resource] != nil:
		return [][]column{k.crdColumns[resource]}, true
	}
	return nil, false
}

// missingColumns are the header's columns (but NAME and NAMESPACE) that the table matching the
// header best does not print.
func missingColumns(tables [][]column, header string, names [][]int, wide bool) []string {
	var missing []string
	best := -1
	for t, table := range tables {
		var miss []string
		for _, n := range names {
			name := header[n[0]:n[1]]
			mentions["column"]++
			if name == "NAME" || name == "NAMESPACE" {
				continue
			}
			if !hasColumn(table, name, wide) {
				miss = append(miss, name)
			}
		}
		if best < 0 || len(miss) < len(missing) {
			best, missing = t, miss
		}
	}
	return missing
}

// checkReasonColumn checks that the REASON of each row printed under header is a reason.
func checkReasonColumn(k *known, file string, rows []mdLine, header string, names [][]int) []problem {
	var out []problem
	for _, n := range names {
		if header[n[0]:n[1]] != "REASON" {
			continue
		}
		for _, row := range rows {
			if !row.fenced || strings.HasPrefix(row.text, "$") || strings.TrimSpace(row.text) == "" || len(row.text) <= n[0] {
				break
			}
			value := strings.Fields(row.text[n[0]:])[0]
			if !k.reasons[value] && value != "<none>" {
				out = append(out, problem{file: file, line: row.n, kind: "reason", name: value, why: "is not a reason of the API or an event"})
			}
		}
	}
	return out
}

func hasColumn(table []column, name string, wide bool) bool {
	for _, c := range table {
		if c.name == name && (wide || !c.wide) {
			return true
		}
	}
	return false
}

// checkColumnList reads `NAME REGION LAST SUCCESS ...` (columns one space apart) greedily: two
// words as one column where the CRDs have such a column.
func checkColumnList(k *known, file string, n int, span string) []problem {
	words := strings.Fields(span)
	if len(words) < 2 || strings.ToUpper(span) != span || strings.ContainsAny(span, "=.:/-") {
		return nil
	}
	all := map[string]bool{"NAME": true, "NAMESPACE": true}
	for _, columns := range k.crdColumns {
		for _, c := range columns {
			all[c.name] = true
		}
	}
	var out []problem
	for i := 0; i < len(words); i++ {
		if i+1 < len(words) && all[words[i]+" "+words[i+1]] {
			i++
			continue
		}
		if !all[words[i]] {
			out = append(out, problem{file: file, line: n, kind: "column", name: words[i], why: "is not a printer column of the CRDs"})
		}
	}
	return out
}

var keyRE = regexp.MustCompile(`dlc\.dlcsync\.io/[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?`)

// checkKeys: every dlc.dlcsync.io/ name (label, annotation, finalizer, group/version) is a
// constant of the API or the controllers.
func checkKeys(k *known, file string, lines []mdLine) []problem {
	var out []problem
	for _, l := range lines {
		for _, key := range keyRE.FindAllString(l.text, -1) {
			mentions["key"]++
			if !k.keys[key] {
				out = append(out, problem{file: file, line: l.n, kind: "key", name: key,
					why: "is not a label, annotation or finalizer constant of api/v1alpha1 or controllers"})
			}
		}
	}
	return out
}

var (
	// reasonInlineRE: `reason=X`, `reason: X`, reason `X`, `X` reason, `X` event.
	reasonInlineRE = regexp.MustCompile("\\breason(?:[=:]\\s*\"?|\\s+`)([A-Z][A-Za-z]+)|`([A-Z][A-Za-z]+)`\\s+(?:reason|event)\\b")
	actionRE       = regexp.MustCompile("\\baction `([A-Z][A-Za-z]+)`")
	conditionRE    = regexp.MustCompile(`\bcondition=([A-Za-z]+)`)
	wordRE         = regexp.MustCompile(`^[A-Z][A-Za-z]+$`)
)

// checkReasons: what the docs present as a reason (a row of a table headed Reason, `reason=X`,
// reason `X`, a word in backticks in a section about events) is a reason of the API or of an
// event the code emits; a table of reasons is headed by condition types; `condition=X` names a
// condition type.
func checkReasons(k *known, file string, lines []mdLine) []problem {
	var out []problem
	add := func(l mdLine, kind, name, why string) {
		out = append(out, problem{file: file, line: l.n, kind: kind, name: name, why: why})
	}
	for i, l := range lines {
		if l.header != nil && l.header[0] == "Reason" {
			mentions["reason"]++
			if reason := strings.Trim(l.cells[0], "`"); !k.reasons[reason] {
				add(l, "reason", reason, "is not a reason of the API or an event")
			}
			if i > 0 && lines[i-1].header == nil {
				for _, h := range l.header[1:] {
					if h != "Cause" && h != "Next" && h != "Status" && !k.conditions[h] {
						add(lines[l.headerN-1], "condition", h, "is not a condition type of the API")
					}
				}
			}
		}
		for _, m := range reasonInlineRE.FindAllStringSubmatch(l.text, -1) {
			mentions["reason"]++
			if reason := m[1] + m[2]; !k.reasons[reason] {
				add(l, "reason", reason, "is not a reason of the API or an event")
			}
		}
		for _, m := range actionRE.FindAllStringSubmatch(l.text, -1) {
			if !k.actions[m[1]] && strings.Contains(l.para, "event") {
				add(l, "action", m[1], "is not an action of the events the code emits")
			}
		}
		for _, m := range conditionRE.FindAllStringSubmatch(l.text, -1) {
			mentions["condition"]++
			if !k.conditions[m[1]] {
				add(l, "condition", m[1], "is not a condition type of the API")
			}
		}
		if l.heading == "Events" && !l.fenced {
			for _, s := range l.spans {
				if wordRE.MatchString(s) && !k.reasons[s] && !k.actions[s] && !k.phases[s] && !k.conditions[s] {
					add(l, "reason", s, "in a section about events is not a reason, action, phase or condition of the code")
				}
			}
		}
	}
	return out
}

// Note: not after a '-' or '/': kubectl-dlcsync_v1.2.3_linux_amd64.tar.gz is an archive's name.
var metricRE = regexp.MustCompile(`(?:^|[^-/\w])(dlcsync_[a-z0-9_]*[a-z0-9])`)

// checkMetrics: every dlcsync_ name is a metric the code registers (a histogram's _bucket, _sum
// and _count series included) or one the kube-state-metrics recipe defines.
func checkMetrics(k *known, file string, lines []mdLine) []problem {
	var out []problem
	for _, l := range lines {
		for _, m := range metricRE.FindAllStringSubmatch(l.text, -1) {
			name := m[1]
			mentions["metric"]++
			if !k.isMetric(name) {
				out = append(out, problem{file: file, line: l.n, kind: "metric", name: name,
					why: "is registered by no collector of the code nor defined by docs/recipes/kube-state-metrics-crs.yaml"})
			}
		}
	}
	return out
}

func (k *known) isMetric(name string) bool {
	if k.metrics[name] != "" || k.recipes[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if kind := k.metrics[base]; ok && (kind == "histogram" || kind == "summary" && suffix != "_bucket") {
			return true
		}
	}
	return false
}

var (
	// valuePathRE is a chart value's path: lowerCamel words joined by dots.
	valuePathRE = regexp.MustCompile(`^[a-z][A-Za-z0-9]*(?:\.[a-z][A-Za-z0-9]*)*$`)
	// chartValueRE: the chart's `x`, chart value `x`, chart's `extraEnv`.
	chartValueRE = regexp.MustCompile("chart(?:'s| value)\\s+`([^`]+)`")
	setRE        = regexp.MustCompile(`--set(?:-string)?[ =]([A-Za-z0-9.]+)=`)
	chartRE      = regexp.MustCompile(`\b(chart|helm|values)\b`)
	// fileRE is a file name that reads like a path of values (values.schema.json).
	fileRE = regexp.MustCompile(`\.(json|yaml|yml|md|tgz|tar|txt|go|lua)$`)
)

// checkValues: a chart value the docs name exists in values.yaml or values.schema.json. A chart
// value is a `path` after "the chart's", a cell of a table column headed "Chart value", a key
// of `--set`, or a dotted `path` whose first word is a top-level value (`serviceMonitor.enabled`).
func checkValues(k *known, file string, lines []mdLine) []problem {
	var out []problem
	bad := func(l mdLine, path string) {
		out = append(out, problem{file: file, line: l.n, kind: "value", name: path, why: "is not in charts/dlcsync/values.yaml or values.schema.json"})
	}
	for _, l := range lines {
		var paths []string
		for i, h := range l.header {
			if h == "Chart value" && i < len(l.cells) {
				for _, m := range spanRE.FindAllStringSubmatch(l.cells[i], -1) {
					paths = append(paths, m[1])
				}
			}
		}
		for _, m := range chartValueRE.FindAllStringSubmatch(l.text, -1) {
			paths = append(paths, m[1])
		}
		for _, code := range codeOf(l) {
			for _, m := range setRE.FindAllStringSubmatch(code, -1) {
				paths = append(paths, m[1])
			}
		}
		// Note: only in a paragraph about the chart, since `image.digest` may be a file too.
		for _, s := range l.spans {
			if first, _, dotted := strings.Cut(s, "."); dotted && valuePathRE.MatchString(s) && k.values[first] != nil &&
				chartRE.MatchString(l.para) {
				paths = append(paths, s)
			}
		}
		for _, p := range paths {
			mentions["value"]++
			if p, _, _ = strings.Cut(p, ":"); valuePathRE.MatchString(p) && !fileRE.MatchString(p) && !k.hasValue(p) {
				bad(l, p)
			}
		}
	}
	return out
}
