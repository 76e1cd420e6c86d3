package v1alpha1_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dlcsync/dlcsync/internal/testenv"
)

// TestEveryReasonIsDocumented: every Reason* constant of the API, the values users see in
// conditions and events, has its row in docs/operating.md's table of reasons.
func TestEveryReasonIsDocumented(t *testing.T) {
	root := testenv.RepoRoot()
	docs, err := os.ReadFile(filepath.Join(root, "docs", "operating.md"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, "api", "v1alpha1", "constants.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	reasons := 0
	ast.Inspect(file, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			if !strings.HasPrefix(name.Name, "Reason") || i >= len(spec.Values) {
				continue
			}
			lit, ok := spec.Values[i].(*ast.BasicLit)
			if !ok {
				continue
			}
			value, _ := strconv.Unquote(lit.Value)
			reasons++
			if !strings.Contains(string(docs), "| `"+value+"` |") {
				t.Errorf("reason %s (%q) has no row in docs/operating.md", name.Name, value)
			}
		}
		return true
	})
	if reasons < 15 {
		t.Fatalf("found only %d reasons in constants.go", reasons)
	}
}
