package snapshot

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/snapshot/snapshottest"
)

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
	secretOf := map[string]string{}
	paths := snapshottest.Seed(job, func(path string) string {
		s := fmt.Sprintf("s3cr3t%03dx", len(secretOf))
		secretOf[path] = s
		return s
	})
	if len(paths) < 150 {
		t.Fatalf("seeded only %d strings; the walk misses fields", len(paths))
	}
	for path := range snapshottest.SecretFields {
		if _, ok := secretOf[path]; !ok {
			t.Errorf("snapshottest.SecretFields names %s, which is no string field of a job", path)
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
				group, secret := snapshottest.SecretFields[path]
				want := copied(path) && (!secret || (group != snapshottest.Always && opts.Reveals(group)))
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
	n := 0
	snapshottest.Seed(job, func(string) string {
		n++
		// A raw '@' in the password, and the URL in the middle of a command line.
		return fmt.Sprintf("pip install -i https://alice:pa@ss%03d@pypi.example.com/simple x", n)
	})
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
