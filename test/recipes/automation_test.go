package recipes_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/kube-openapi/pkg/validation/spec"
	sigsyaml "sigs.k8s.io/yaml"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/testenv"
	"github.com/dlcsync/dlcsync/test/recipes/tektonschema"
)

// schemaSet is a set of published schema definitions (JSON Schema or OpenAPI), by name.
type schemaSet map[string]map[string]any

// argoEventsSchemas are Argo Events' published definitions (testdata/argo-events-schema.json).
func argoEventsSchemas(t *testing.T) schemaSet {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "argo-events-schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Definitions schemaSet `json:"definitions"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Definitions
}

// tektonTriggersSchemas are Tekton Triggers' published OpenAPI definitions (tektonschema), named
// by their Go type path.
func tektonTriggersSchemas(t *testing.T) schemaSet {
	t.Helper()
	out := schemaSet{}
	ref := func(path string) spec.Ref { return spec.MustCreateRef("#/definitions/" + path) }
	for name, def := range tektonschema.GetOpenAPIDefinitions(ref) {
		raw, err := json.Marshal(def.Schema)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		out[name] = m
	}
	return out
}

// check walks value against a schema strictly: every key of an object must be a property the
// schema declares (or fit its additionalProperties), required properties must be there, and
// scalars must have the declared type. A reference the set does not hold (a type of another
// project, such as a Kubernetes PodSpec in Tekton's set) is taken as free-form and named in
// opaque, so a test can say what it could not check.
func (s schemaSet) check(path string, schema map[string]any, value any, opaque map[string]bool) []string {
	if ref, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/definitions/")
		def, found := s[name]
		if !found {
			opaque[name] = true
			return nil
		}
		return s.check(path, def, value, opaque)
	}
	var errs []string
	switch v := value.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		additional, _ := schema["additionalProperties"].(map[string]any)
		if props == nil && additional == nil {
			return nil // free-form (an object of any shape, e.g. a resource template)
		}
		for key, child := range v {
			switch sub, ok := props[key].(map[string]any); {
			case ok:
				errs = append(errs, s.check(path+"."+key, sub, child, opaque)...)
			case additional != nil:
				errs = append(errs, s.check(path+"."+key, additional, child, opaque)...)
			default:
				errs = append(errs, fmt.Sprintf("%s.%s: no such field", path, key))
			}
		}
		required, _ := schema["required"].([]any)
		for _, r := range required {
			if _, ok := v[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s.%s: required", path, r))
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, child := range v {
				errs = append(errs, s.check(fmt.Sprintf("%s[%d]", path, i), items, child, opaque)...)
			}
		}
	default:
		if want, ok := schema["type"].(string); ok && !scalarIs(want, v) {
			errs = append(errs, fmt.Sprintf("%s: %v is not a %s", path, v, want))
		}
	}
	return errs
}

func scalarIs(want string, v any) bool {
	switch want {
	case "string":
		_, ok := v.(string)
		return ok
	case "integer", "number":
		_, ok := v.(float64)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	}
	return true
}

// documents reads the YAML documents of a recipe as JSON-shaped maps.
func documents(t *testing.T, name string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "recipes", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if doc != nil {
			out = append(out, doc)
		}
	}
	return out
}

// checkRecipe checks every document of a recipe: its JobQuery decoded strictly into dlcsync's
// type, the consumer's objects against the consumer's published schema (by kind).
func checkRecipe(t *testing.T, name string, schemas schemaSet, defs map[string]string) []string {
	t.Helper()
	var kinds []string
	opaque := map[string]bool{}
	for _, doc := range documents(t, name) {
		kind, _ := doc["kind"].(string)
		kinds = append(kinds, kind)
		if kind == "JobQuery" {
			raw, _ := json.Marshal(doc)
			var q dlcv1alpha1.JobQuery
			if err := sigsyaml.UnmarshalStrict(raw, &q); err != nil {
				t.Errorf("%s: the JobQuery: %v", name, err)
			}
			if q.Spec.CloudEvents == nil || q.Spec.CloudEvents.Sink.URI == "" {
				t.Errorf("%s: the JobQuery sends no CloudEvents", name)
			}
			continue
		}
		def, ok := defs[kind]
		if !ok {
			t.Errorf("%s: no published schema for kind %s", name, kind)
			continue
		}
		for _, e := range schemas.check(kind, schemas[def], doc, opaque) {
			t.Errorf("%s: %s", name, e)
		}
	}
	if len(opaque) > 0 {
		t.Logf("%s: references outside the published set, taken as free-form: %v", name, keys(opaque))
	}
	return kinds
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var argoKinds = map[string]string{
	"EventSource": "io.argoproj.events.v1alpha1.EventSource",
	"Sensor":      "io.argoproj.events.v1alpha1.Sensor",
}

const tektonTypes = "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1."

var tektonKinds = map[string]string{
	"EventListener":   tektonTypes + "EventListener",
	"TriggerBinding":  tektonTypes + "TriggerBinding",
	"TriggerTemplate": tektonTypes + "TriggerTemplate",
}

// The Argo Events recipe (a webhook EventSource and a Sensor that starts a Job per failure) is
// valid against Argo Events' published schema; its JobQuery sends CloudEvents to the EventSource.
func TestTheArgoEventsRecipeMatchesArgoEventsSchema(t *testing.T) {
	kinds := checkRecipe(t, "argo-events.yaml", argoEventsSchemas(t), argoKinds)
	if !slices.Equal(kinds, []string{"JobQuery", "EventSource", "Sensor"}) {
		t.Fatalf("kinds %v", kinds)
	}
}

// The Tekton Triggers recipe is valid against Tekton Triggers' published OpenAPI definitions.
func TestTheTektonTriggersRecipeMatchesTektonsSchema(t *testing.T) {
	kinds := checkRecipe(t, "tekton-triggers.yaml", tektonTriggersSchemas(t), tektonKinds)
	if !slices.Equal(kinds, []string{"JobQuery", "EventListener", "TriggerBinding", "TriggerTemplate"}) {
		t.Fatalf("kinds %v", kinds)
	}
}

// The checker is not vacuous: a misspelt field, a missing required one and a wrong type are
// found, in both schema sets.
func TestTheSchemaCheckFindsMistakes(t *testing.T) {
	argo := argoEventsSchemas(t)
	var sensor map[string]any
	if err := sigsyaml.Unmarshal([]byte(`{apiVersion: argoproj.io/v1alpha1, kind: Sensor, metadata: {name: s},
spec: {dependency: [{name: d, eventSourceName: e, eventName: n}], triggers: [{template: {name: t, k8s: {operation: create, source: {resource: {}}}}}]}}`), &sensor); err != nil {
		t.Fatal(err)
	}
	errs := argo.check("Sensor", argo[argoKinds["Sensor"]], sensor, map[string]bool{})
	if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, "spec.dependency: no such field") }) {
		t.Errorf("a misspelt Sensor field passed: %v", errs)
	}
	tekton := tektonTriggersSchemas(t)
	var binding map[string]any
	if err := sigsyaml.Unmarshal([]byte(`{apiVersion: triggers.tekton.dev/v1beta1, kind: TriggerBinding, metadata: {name: b},
spec: {params: [{name: 1, valu: x}]}}`), &binding); err != nil {
		t.Fatal(err)
	}
	errs = tekton.check("TriggerBinding", tekton[tektonKinds["TriggerBinding"]], binding, map[string]bool{})
	for _, want := range []string{"valu: no such field", "name: 1 is not a string", "value: required"} {
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("%q not found in %v", want, errs)
		}
	}
}
