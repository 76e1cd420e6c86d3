package snapshot

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

func fullJob(t *testing.T) *dlc.JobItem {
	t.Helper()
	raw, err := os.ReadFile("../dlc/testdata/full_response.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := dlc.DecodeListJobsResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &resp.Jobs[0]
}

func TestNameKeepsValidIDsAndSanitisesTheRest(t *testing.T) {
	cases := map[string]string{
		"dlc1a2b3c4d5e6f7":                 "dlc1a2b3c4d5e6f7",
		"dlc-20210126170216-mtl37ge7gkvdz": "dlc-20210126170216-mtl37ge7gkvdz",
	}
	for id, want := range cases {
		if got := Name(id); got != want {
			t.Errorf("Name(%q) = %q, want %q", id, got, want)
		}
	}
	// IDs that are not valid names get a sanitised name and a hash of the exact ID.
	seen := map[string]string{}
	for _, id := range []string{"DLCUPPER", "dlcupper_", "DLC_Upper", "job/with/slashes", "-leading", "trailing.", "中文", strings.Repeat("x", 300), "A", "a_"} {
		name := Name(id)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("Name(%q) = %q is not a valid name: %v", id, name, errs)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("%q and %q share the name %q", id, other, name)
		}
		seen[name] = id
		if Name(id) != name {
			t.Errorf("Name(%q) is not stable", id)
		}
	}
}

func TestLabelValueIsAlwaysValid(t *testing.T) {
	for in, want := range map[string]string{"Failed": "Failed", "PyTorchJob": "PyTorchJob", "268": "268", "推荐算法": "", "a b/c": "a_b_c", "-x-": "x"} {
		if got := LabelValue(in); got != want {
			t.Errorf("LabelValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzNameAndLabelValue(f *testing.F) {
	for _, s := range []string{"dlc1a2b3", "DLC", "a/b", "", "中文", strings.Repeat("Z", 400), "..", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return
		}
		if errs := validation.IsDNS1123Subdomain(Name(s)); len(errs) > 0 {
			t.Fatalf("Name(%q) = %q: %v", s, Name(s), errs)
		}
		if v := LabelValue(s); v != "" {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Fatalf("LabelValue(%q) = %q: %v", s, v, errs)
			}
		}
	})
}

func TestConvertJobCopiesEveryField(t *testing.T) {
	job := fullJob(t)
	got, err := ConvertJob(job, Options{Reveal: dlcv1alpha1.RevealGroups})
	if err != nil {
		t.Fatal(err)
	}
	// Every field of the full example is set, so every field of the CRD type must be set after
	// the copy, except the CRD's missing nested history, which cannot recurse.
	var zero []string
	walkZero(reflect.ValueOf(*got), "job", &zero)
	if len(zero) > 0 {
		t.Fatalf("fields not copied: %v", zero)
	}
	if got.JobSpecs[0].ResourceConfig.GPUType != "Tesla-V100-16G" || *got.JobSpecs[0].SpotSpec.SpotDiscountLimit != 0.8 ||
		got.Pods[0].HistoryPods[0].PodID != job.Pods[0].HistoryPods[0].PodID || got.RequestGPU != "1" {
		t.Fatalf("values differ: %+v", got)
	}
	var adv map[string]any
	if err := json.Unmarshal(got.Settings.AdvancedSettings.Raw, &adv); err != nil || adv["ReplicaSpec"] == nil {
		t.Fatalf("AdvancedSettings: %s %v", got.Settings.AdvancedSettings.Raw, err)
	}
}

// walkZero lists the zero-valued fields under v.
func walkZero(v reflect.Value, path string, zero *[]string) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			*zero = append(*zero, path)
			return
		}
		walkZero(v.Elem(), path, zero)
	case reflect.Struct:
		if v.Type().PkgPath() != reflect.TypeOf(dlcv1alpha1.JobItem{}).PkgPath() {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			walkZero(v.Field(i), path+"."+v.Type().Field(i).Name, zero)
		}
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			*zero = append(*zero, path)
			return
		}
		if v.Kind() == reflect.Slice {
			walkZero(v.Index(0), path+"[0]", zero)
		}
	case reflect.String:
		if v.Len() == 0 {
			*zero = append(*zero, path)
		}
	}
}

func TestConvertJobRedactsSecrets(t *testing.T) {
	job := fullJob(t)
	redacted, err := ConvertJob(job, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if redacted.Envs["A"] != Redacted || redacted.SystemEnvs["S"] != Redacted ||
		redacted.JobSpecs[0].ExtraPodSpec.InitContainers[0].Env[0].Value != Redacted {
		t.Fatalf("env values kept: %v %v", redacted.Envs, redacted.SystemEnvs)
	}
	// the deprecated includeEnvValues reveals env values (only)
	withEnv, _ := ConvertJob(job, OptionsFor(dlcv1alpha1.SnapshotPolicy{IncludeEnvValues: true}))
	if withEnv.Envs["A"] != "1" {
		t.Fatalf("includeEnvValues dropped values: %v", withEnv.Envs)
	}
	for _, j := range []*dlcv1alpha1.JobItem{redacted, withEnv} {
		ic := j.JobSpecs[0].ImageConfig
		info := j.CredentialConfig.CredentialConfigItems[0].Roles[0].AssumeUserInfo
		if ic.Password != Redacted || ic.Auth != Redacted || info.SecurityToken != Redacted || info.AccessKeyID != Redacted {
			t.Fatalf("credentials kept: %+v %+v", ic, info)
		}
	}
	if job.Envs["A"] != "1" {
		t.Fatal("ConvertJob changed its input")
	}
}

func TestHashChangesWithTheDataOnly(t *testing.T) {
	job := fullJob(t)
	a, _ := ConvertJob(job, Options{})
	b, _ := ConvertJob(job, Options{})
	if Hash(a) != Hash(b) {
		t.Fatal("equal data, different hashes")
	}
	job.Status = "Failed"
	c, _ := ConvertJob(job, Options{})
	if Hash(a) == Hash(c) {
		t.Fatal("a status change did not change the hash")
	}
}

func TestStatusAndConditionsFollowThePhase(t *testing.T) {
	job := fullJob(t)
	job.Status, job.ReasonCode, job.ReasonMessage = "Failed", "JobFailed", "OOMKilled"
	conv, _ := ConvertJob(job, Options{})
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := Status(conv, Hash(conv), nil, t0)
	if st.Phase != "Failed" || st.Duration != 243 || st.CreatedAt == nil || st.FinishedAt == nil || st.ContentHash == "" {
		t.Fatalf("status: %+v", st)
	}
	byType := map[string]metav1.Condition{}
	for _, c := range st.Conditions {
		byType[c.Type] = c
	}
	if byType["Failed"].Status != "True" || byType["Failed"].Reason != "JobFailed" || byType["Failed"].Message != "OOMKilled" ||
		byType["Complete"].Status != "False" || byType["Stopped"].Status != "False" {
		t.Fatalf("conditions: %+v", st.Conditions)
	}
	// A later status with the same phase keeps the transition times.
	t1 := metav1.NewTime(t0.Add(time.Hour))
	again := Status(conv, Hash(conv), st.Conditions, t1)
	for _, c := range again.Conditions {
		if !c.LastTransitionTime.Equal(&t0) {
			t.Fatalf("%s moved its lastTransitionTime without a transition", c.Type)
		}
	}
	job.Status = "Running"
	running, _ := ConvertJob(job, Options{})
	later := Status(running, Hash(running), st.Conditions, t1)
	for _, c := range later.Conditions {
		if c.Type == "Failed" && (c.Status != "False" || !c.LastTransitionTime.Equal(&t1)) {
			t.Fatalf("Failed after the job runs again: %+v", c)
		}
	}
}

// FuzzHash: for any job the API could send (any body the decoder accepts), converting and
// hashing never fails or panics, the hash is stable across calls and across a JSON round trip
// of the converted job (what a snapshot stores and reads back), and a changed status changes it.
func FuzzHash(f *testing.F) {
	if raw, err := os.ReadFile("../dlc/testdata/full_response.json"); err == nil {
		f.Add(raw)
	}
	for _, seed := range []string{`{"Jobs":[{"JobId":"a","Status":"Running","Envs":{"K":"v"}}]}`,
		`{"Jobs":[{"JobId":"b","DisplayName":"\u00ff\u4e2d","Settings":{"AdvancedSettings":{"x":[1,{"y":null}]}}}]}`,
		`{"Jobs":[{"JobId":"c","Pods":[{"HistoryPods":[{"PodId":"p"}]}],"Duration":"12"}]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := dlc.DecodeListJobsResponse(body)
		if err != nil {
			return
		}
		for i := range resp.Jobs {
			job := &resp.Jobs[i]
			converted, err := ConvertJob(job, Options{})
			if err != nil {
				t.Fatalf("ConvertJob: %v", err)
			}
			h := Hash(converted)
			if Hash(converted) != h {
				t.Fatal("Hash is not stable")
			}
			data, err := json.Marshal(converted)
			if err != nil {
				t.Fatal(err)
			}
			var back dlcv1alpha1.JobItem
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			if Hash(&back) != h {
				t.Fatalf("the hash changed across a JSON round trip:\n%s", data)
			}
			changed := *converted
			changed.Status += "x"
			if Hash(&changed) == h {
				t.Fatal("a changed status kept the hash")
			}
		}
	})
}

func TestOversizeAndInvalidStringsAreBoundedAndValid(t *testing.T) {
	huge := strings.Repeat("中", (1<<20)/3) // 1 MiB of 3-byte runes
	job := &dlc.JobItem{JobID: "dlcbig", DisplayName: huge, ReasonMessage: "bad \xff\xfe bytes", UserCommand: "python train.py"}
	// Commands revealed: the point here is that short valid strings pass unchanged.
	got, err := ConvertJob(job, Options{Reveal: []dlcv1alpha1.RevealGroup{dlcv1alpha1.RevealCommands}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.DisplayName) > MaxStringBytes+64 || !strings.HasSuffix(got.DisplayName, "[cut by dlcsync: 1048575 bytes]") {
		t.Fatalf("a 1 MiB string was kept at %d bytes, ending %q", len(got.DisplayName), got.DisplayName[len(got.DisplayName)-40:])
	}
	for name, s := range map[string]string{"DisplayName": got.DisplayName, "ReasonMessage": got.ReasonMessage} {
		if !utf8.ValidString(s) {
			t.Errorf("%s is not valid UTF-8", name)
		}
	}
	if got.ReasonMessage != "bad \uFFFD bytes" || got.UserCommand != "python train.py" {
		t.Fatalf("strings changed: %q %q", got.ReasonMessage, got.UserCommand)
	}
	if st := Status(got, Hash(got), nil, metav1.Now()); len(st.DisplayName) > MaxStringBytes+64 {
		t.Fatal("the status repeats the whole display name")
	}
}
