package snapshot

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// Redacted replaces secret values in snapshots. Keys and names stay visible, so users see what
// exists without reading it.
const Redacted = "[REDACTED]"

// Options say what a snapshot reveals.
type Options struct {
	// Reveal lists the field groups whose values are copied as they are; every other group is
	// redacted. Registry passwords, credential tokens and URL userinfo are redacted whatever it
	// says.
	Reveal []dlcv1alpha1.RevealGroup
}

// OptionsFor are the options a JobQuery's snapshot policy asks for: its reveal list, plus
// EnvValues when the deprecated includeEnvValues is set. The caller may remove groups that the
// operator does not allow in the query's namespace.
func OptionsFor(p dlcv1alpha1.SnapshotPolicy) Options {
	reveal := slices.Clone(p.Reveal)
	if p.IncludeEnvValues && !slices.Contains(reveal, dlcv1alpha1.RevealEnvValues) {
		reveal = append(reveal, dlcv1alpha1.RevealEnvValues)
	}
	return Options{Reveal: reveal}
}

// Reveals reports whether the options keep the values of group g.
func (o Options) Reveals(g dlcv1alpha1.RevealGroup) bool { return slices.Contains(o.Reveal, g) }

// Redact replaces, in place, the values of every group the options do not reveal, and the
// credentials that are never revealed. A value already redacted stays as it is, so a job
// converted with more groups revealed can be narrowed without its API data.
func Redact(j *dlcv1alpha1.JobItem, o Options) {
	envs, commands := !o.Reveals(dlcv1alpha1.RevealEnvValues), !o.Reveals(dlcv1alpha1.RevealCommands)
	if envs {
		redactMap(j.Envs)
		redactMap(j.SystemEnvs)
	}
	if commands {
		j.UserCommand = redactString(j.UserCommand)
		j.UserScript = redactString(j.UserScript)
	}
	if !o.Reveals(dlcv1alpha1.RevealLibraries) {
		redactList(j.ThirdpartyLibs)
	}
	if s := j.Settings; s != nil && !o.Reveals(dlcv1alpha1.RevealSettings) {
		s.SanityCheckArgs = redactString(s.SanityCheckArgs)
		s.ErrorMonitoringArgs = redactString(s.ErrorMonitoringArgs)
		if s.AdvancedSettings != nil {
			s.AdvancedSettings = redactJSON(s.AdvancedSettings)
		}
	}
	for i := range j.JobSpecs {
		spec := &j.JobSpecs[i]
		if spec.ImageConfig != nil {
			spec.ImageConfig.Password = redactString(spec.ImageConfig.Password)
			spec.ImageConfig.Auth = redactString(spec.ImageConfig.Auth)
		}
		extra := spec.ExtraPodSpec
		if extra == nil {
			continue
		}
		if !o.Reveals(dlcv1alpha1.RevealPodAnnotations) {
			redactMap(extra.PodAnnotations)
		}
		for _, containers := range [][]dlcv1alpha1.ContainerSpec{extra.InitContainers, extra.SideCarContainers} {
			for c := range containers {
				if envs {
					for e := range containers[c].Env {
						containers[c].Env[e].Value = redactString(containers[c].Env[e].Value)
					}
				}
				if commands {
					redactList(containers[c].Command)
					redactList(containers[c].Args)
				}
			}
		}
		if lc := extra.Lifecycle; lc != nil && commands {
			for _, h := range []*dlcv1alpha1.LifecycleHandler{lc.PostStart, lc.PreStop} {
				if h != nil && h.Exec != nil {
					redactList(h.Exec.Command)
				}
			}
		}
	}
	if j.CredentialConfig != nil {
		for i := range j.CredentialConfig.CredentialConfigItems {
			for r := range j.CredentialConfig.CredentialConfigItems[i].Roles {
				if info := j.CredentialConfig.CredentialConfigItems[i].Roles[r].AssumeUserInfo; info != nil {
					info.AccessKeyID = redactString(info.AccessKeyID)
					info.SecurityToken = redactString(info.SecurityToken)
				}
			}
		}
	}
}

func redactMap(m map[string]string) {
	for k, v := range m {
		m[k] = redactString(v)
	}
}

// redactList keeps the length of a list (how many arguments, how many libraries) and hides
// every item.
func redactList(l []string) {
	for i := range l {
		l[i] = redactString(l[i])
	}
}

func redactString(s string) string {
	if s == "" {
		return ""
	}
	return Redacted
}

// redactJSON keeps the keys and the shape of a free-form object and replaces its string and
// number values (booleans and nulls carry no secret).
func redactJSON(raw *apiextensionsv1.JSON) *apiextensionsv1.JSON {
	return mapJSON(raw, func(k string) string { return k }, func(v any) any {
		switch v.(type) {
		case string, json.Number, float64:
			return Redacted
		}
		return v
	})
}

// mapJSON rewrites every key of a free-form object with key and every scalar with f. A value
// that does not decode (it came from our own encoder, so it always should) is replaced whole,
// never kept unredacted.
func mapJSON(raw *apiextensionsv1.JSON, key func(string) string, f func(any) any) *apiextensionsv1.JSON {
	var v any
	if err := json.Unmarshal(raw.Raw, &v); err != nil {
		return &apiextensionsv1.JSON{Raw: []byte(`{}`)}
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[key(k)] = walk(e)
			}
			return out
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
			return x
		}
		return f(v)
	}
	data, err := json.Marshal(walk(v))
	if err != nil {
		return &apiextensionsv1.JSON{Raw: []byte(`{}`)}
	}
	return &apiextensionsv1.JSON{Raw: data}
}

// userinfo matches the userinfo of anything URL-looking: scheme://userinfo@. The authority ends
// at the first '/', '?', '#' or space, and its last '@' ends the userinfo (as net/url reads it),
// so a password holding a raw '@' is caught whole.
var userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s]*@`)

// scrubURLs removes the userinfo of every URL in s: index URLs, git remotes and registry
// addresses often carry a password or token there, in any field, revealed or not.
func scrubURLs(s string) string {
	return userinfo.ReplaceAllString(s, "${1}"+Redacted+"@")
}

// stringFuncs rewrite every string of a job: key the keys of maps (free-form JSON included),
// value every other string.
type stringFuncs struct{ key, value func(string) string }

var jsonPtrType = reflect.TypeOf(&apiextensionsv1.JSON{})

// eachString applies f to every string under v (a settable value of the CRD types).
func eachString(v reflect.Value, f stringFuncs) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		if v.Type() == jsonPtrType {
			v.Set(reflect.ValueOf(mapJSON(v.Interface().(*apiextensionsv1.JSON), f.key, func(x any) any {
				if s, ok := x.(string); ok {
					return f.value(s)
				}
				return x
			})))
			return
		}
		eachString(v.Elem(), f)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			eachString(v.Field(i), f)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			eachString(v.Index(i), f)
		}
	case reflect.Map:
		if v.Len() == 0 {
			return
		}
		// Keys may change too, so the map is rebuilt; two keys that became equal (only
		// possible when both were cut or scrubbed) keep the later value.
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter := v.MapRange()
		for iter.Next() {
			key := reflect.New(v.Type().Key()).Elem()
			key.Set(iter.Key())
			if key.Kind() == reflect.String {
				key.SetString(f.key(key.String()))
			}
			val := reflect.New(v.Type().Elem()).Elem()
			val.Set(iter.Value())
			eachString(val, f)
			out.SetMapIndex(key, val)
		}
		v.Set(out)
	case reflect.String:
		if s := v.String(); s != "" {
			v.SetString(f.value(s))
		}
	}
}
