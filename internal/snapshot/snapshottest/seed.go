// Package snapshottest seeds every string field of a job and says which of them can carry a
// secret, for the redaction tests of internal/snapshot and the end-to-end leak test of the
// controllers.
package snapshottest

import (
	"reflect"
	"strings"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// Always marks the fields that are redacted whatever a query reveals.
const Always dlcv1alpha1.RevealGroup = "(always)"

// SecretFields classifies the string fields of a job (paths over the Go field names of
// dlc.JobItem; [] an item of a list, {} a value of a map) that can carry a secret: the group that
// reveals them, or always. Every other string is kept as it is (URL userinfo aside).
var SecretFields = map[string]dlcv1alpha1.RevealGroup{
	"Envs{}":                       dlcv1alpha1.RevealEnvValues,
	"SystemEnvs{}":                 dlcv1alpha1.RevealEnvValues,
	"UserCommand":                  dlcv1alpha1.RevealCommands,
	"UserScript":                   dlcv1alpha1.RevealCommands,
	"ThirdpartyLibs[]":             dlcv1alpha1.RevealLibraries,
	"Settings.AdvancedSettings{}":  dlcv1alpha1.RevealSettings,
	"Settings.SanityCheckArgs":     dlcv1alpha1.RevealSettings,
	"Settings.ErrorMonitoringArgs": dlcv1alpha1.RevealSettings,
	"JobSpecs[].ExtraPodSpec.InitContainers[].Env[].Value":                          dlcv1alpha1.RevealEnvValues,
	"JobSpecs[].ExtraPodSpec.SideCarContainers[].Env[].Value":                       dlcv1alpha1.RevealEnvValues,
	"JobSpecs[].ExtraPodSpec.InitContainers[].Command[]":                            dlcv1alpha1.RevealCommands,
	"JobSpecs[].ExtraPodSpec.InitContainers[].Args[]":                               dlcv1alpha1.RevealCommands,
	"JobSpecs[].ExtraPodSpec.SideCarContainers[].Command[]":                         dlcv1alpha1.RevealCommands,
	"JobSpecs[].ExtraPodSpec.SideCarContainers[].Args[]":                            dlcv1alpha1.RevealCommands,
	"JobSpecs[].ExtraPodSpec.Lifecycle.PostStart.Exec.Command[]":                    dlcv1alpha1.RevealCommands,
	"JobSpecs[].ExtraPodSpec.Lifecycle.PreStop.Exec.Command[]":                      dlcv1alpha1.RevealCommands,
	"JobSpecs[].ExtraPodSpec.PodAnnotations{}":                                      dlcv1alpha1.RevealPodAnnotations,
	"JobSpecs[].ImageConfig.Password":                                               Always,
	"JobSpecs[].ImageConfig.Auth":                                                   Always,
	"CredentialConfig.CredentialConfigItems[].Roles[].AssumeUserInfo.AccessKeyID":   Always,
	"CredentialConfig.CredentialConfigItems[].Roles[].AssumeUserInfo.SecurityToken": Always,
}

// seed sets every string under v (a job of the API) to value(path), allocating pointers and
// giving every list one item and every map one entry, and returns the paths it set. A type
// may nest in itself once (history pods), as the API's data does.
func seed(v reflect.Value, path string, stack map[reflect.Type]int, value func(path string) string, paths *[]string) {
	switch v.Kind() {
	case reflect.Pointer:
		if stack[v.Type().Elem()] >= 2 {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		seed(v.Elem(), path, stack, value, paths)
	case reflect.Struct:
		stack[v.Type()]++
		defer func() { stack[v.Type()]-- }()
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() {
				continue // not part of the API
			}
			name := v.Type().Field(i).Name
			if path != "" {
				name = path + "." + name
			}
			seed(v.Field(i), name, stack, value, paths)
		}
	case reflect.Slice:
		if stack[v.Type().Elem()] >= 2 {
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		seed(v.Index(0), path+"[]", stack, value, paths)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		elem := reflect.New(v.Type().Elem()).Elem()
		if elem.Kind() == reflect.Interface {
			elem.Set(reflect.ValueOf(value(path + "{}")))
			*paths = append(*paths, path+"{}")
		} else {
			seed(elem, path+"{}", stack, value, paths)
		}
		m.SetMapIndex(reflect.ValueOf("KEY_"+strings.NewReplacer(".", "_", "[]", "", "{}", "").Replace(path)), elem)
		v.Set(m)
	case reflect.String:
		v.SetString(value(path))
		*paths = append(*paths, path)
	}
}

// Seed sets every string of job to value(path), allocating every pointer and giving every list
// one item and every map one entry (key KEY_<path>), and returns the paths it set.
func Seed(job *dlc.JobItem, value func(path string) string) []string {
	var paths []string
	seed(reflect.ValueOf(job).Elem(), "", map[reflect.Type]int{}, value, &paths)
	return paths
}
