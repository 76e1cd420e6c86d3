package dlcsim

import (
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// TestListParamsCoverEveryParameterTheClientSends: the parameter table and the client's request
// name the same parameters, so no parameter is silently ignored by the simulator.
func TestListParamsCoverEveryParameterTheClientSends(t *testing.T) {
	// Every field of a request set to a non-zero value, by reflection, so that a field added to
	// the client later is part of the comparison.
	var req dlc.ListJobsRequest
	v := reflect.ValueOf(&req).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
		default:
			t.Fatalf("field %s of kind %s", v.Type().Field(i).Name, f.Kind())
		}
	}
	sent := slices.Sorted(maps.Keys(req.Query()))
	var parsed []string
	for _, p := range listParams {
		parsed = append(parsed, p.name)
	}
	slices.Sort(parsed)
	if !slices.Equal(sent, parsed) {
		t.Fatalf("the client sends %v\nthe simulator parses %v", sent, parsed)
	}
}
