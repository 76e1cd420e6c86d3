package snapshot

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// always marks the fields that are redacted whatever a query reveals.
const always dlcv1alpha1.RevealGroup = "(always)"

// secretFields classifies the string fields of a job (paths over the Go field names of
// dlc.JobItem; [] an item of a list, {} a value of a map) that can carry a secret: the group that
// reveals them, or always. Every other string is kept as it is (URL userinfo aside).
var secretFields = map[string]dlcv1alpha1.RevealGroup{
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
	"JobSpecs[].ImageConfig.Password":                                               always,
	"JobSpecs[].ImageConfig.Auth":                                                   always,
	"CredentialConfig.CredentialConfigItems[].Roles[].AssumeUserInfo.AccessKeyID":   always,
	"CredentialConfig.CredentialConfigItems[].Roles[].AssumeUserInfo.SecurityToken": always,
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

// statusJSON is everything a snapshot's status shows of a converted job.
func statusJSON(t *testing.T, job *dlc.JobItem, opts Options) string {
	t.Helper()
	conv, err := ConvertJob(job, opts)
	if err != nil {
		t.Fatal(err)
	}
	st := Status(conv, Hash(conv), nil, metav1.Now())
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestEverySecretFieldIsRedactedUnlessItsGroupIsRevealed(t *testing.T) {
	job := &dlc.JobItem{}
	var paths []string
	secretOf := map[string]string{}
	seed(reflect.ValueOf(job).Elem(), "", map[reflect.Type]int{}, func(path string) string {
		s := fmt.Sprintf("s3cr3t%03dx", len(secretOf))
		secretOf[path] = s
		return s
	}, &paths)
	if len(paths) < 150 {
		t.Fatalf("seeded only %d strings; the walk misses fields", len(paths))
	}
	for path := range secretFields {
		if _, ok := secretOf[path]; !ok {
			t.Errorf("secretFields names %s, which is no string field of a job", path)
		}
	}
	// Deeper history pods than the CRD holds are not copied at all.
	copied := func(path string) bool { return strings.Count(path, "HistoryPods") < 2 }

	cases := map[string]Options{"nothing revealed": {}, "everything revealed": {Reveal: dlcv1alpha1.RevealGroups}}
	for _, g := range dlcv1alpha1.RevealGroups {
		cases["only "+string(g)] = Options{Reveal: []dlcv1alpha1.RevealGroup{g}}
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			out := statusJSON(t, job, opts)
			for _, path := range paths {
				group, secret := secretFields[path]
				want := copied(path) && (!secret || (group != always && opts.Reveals(group)))
				if got := strings.Contains(out, secretOf[path]); got != want {
					t.Errorf("%s (group %q): shown %v, want %v", path, group, got, want)
				}
			}
			// Keys stay visible, so users see which variables and annotations exist.
			for _, key := range []string{"KEY_Envs", "KEY_SystemEnvs", "KEY_JobSpecs_ExtraPodSpec_PodAnnotations", "KEY_Settings_AdvancedSettings"} {
				if !strings.Contains(out, `"`+key+`"`) {
					t.Errorf("key %s hidden", key)
				}
			}
		})
	}
}

func TestURLUserinfoIsRedactedInEveryFieldEvenWhenRevealed(t *testing.T) {
	job := &dlc.JobItem{}
	var paths []string
	n := 0
	seed(reflect.ValueOf(job).Elem(), "", map[reflect.Type]int{}, func(string) string {
		n++
		// A raw '@' in the password, and the URL in the middle of a command line.
		return fmt.Sprintf("pip install -i https://alice:pa@ss%03d@pypi.example.com/simple x", n)
	}, &paths)
	out := statusJSON(t, job, Options{Reveal: dlcv1alpha1.RevealGroups})
	if strings.Contains(out, "pa@ss") || strings.Contains(out, "alice") {
		t.Fatalf("userinfo leaked: %s", regexp.MustCompile(`.{40}(pa@ss|alice).{20}`).FindString(out))
	}
	if !strings.Contains(out, "https://"+Redacted+"@pypi.example.com/simple") {
		t.Fatalf("the URL itself was not kept: %.400s", out)
	}
}

func TestScrubURLs(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@host/p":                       "https://[REDACTED]@host/p",
		"git clone https://ghp_TOKEN@github.com/x.git": "git clone https://[REDACTED]@github.com/x.git",
		"https://host:443@evil.example":                "https://[REDACTED]@evil.example",
		"HTTP://U:P@H":                                 "HTTP://[REDACTED]@H",
		"https://host/path@v1 and mailto:a@b":          "https://host/path@v1 and mailto:a@b",
		"a=https://x:y@h1;b=s3://k:s@h2/b":             "a=https://[REDACTED]@h1;b=s3://[REDACTED]@h2/b",
		"no url here user:pw@host":                     "no url here user:pw@host",
	} {
		if got := scrubURLs(in); got != want {
			t.Errorf("scrubURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOptionsForFoldsTheDeprecatedIncludeEnvValues(t *testing.T) {
	o := OptionsFor(dlcv1alpha1.SnapshotPolicy{IncludeEnvValues: true})
	if !o.Reveals(dlcv1alpha1.RevealEnvValues) || o.Reveals(dlcv1alpha1.RevealCommands) {
		t.Fatalf("includeEnvValues: %v", o.Reveal)
	}
	o = OptionsFor(dlcv1alpha1.SnapshotPolicy{IncludeEnvValues: true, Reveal: []dlcv1alpha1.RevealGroup{dlcv1alpha1.RevealEnvValues, dlcv1alpha1.RevealCommands}})
	if len(o.Reveal) != 2 {
		t.Fatalf("EnvValues twice: %v", o.Reveal)
	}
	if o := OptionsFor(dlcv1alpha1.SnapshotPolicy{}); len(o.Reveal) != 0 {
		t.Fatalf("default reveals %v", o.Reveal)
	}
}
