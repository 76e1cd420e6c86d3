package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

func TestUserLabelValueKeepsValidNamesAndHashesTheRest(t *testing.T) {
	long := strings.Repeat("a", 70)
	cases := []struct{ name, in, want string }{
		{"empty: no label", "", ""},
		{"a valid name as is", "pai-dlc-role", "pai-dlc-role"},
		{"63 characters as is", strings.Repeat("b", 63), strings.Repeat("b", 63)},
		{"a RAM user principal name", "alice@1234.onaliyun.com", "alice_1234.onaliyun.com-" + sha8("alice@1234.onaliyun.com")},
		{"too long: cut to 54 plus the hash", long, strings.Repeat("a", 54) + "-" + sha8(long)},
		{"non-ASCII only", "张三", "user-" + sha8("张三")},
		{"non-ASCII inside", "李alice", "alice-" + sha8("李alice")},
		{"leading and trailing punctuation", "-bob-", "bob-" + sha8("-bob-")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := UserLabelValue(c.in)
			if got != c.want {
				t.Fatalf("UserLabelValue(%q) = %q, want %q", c.in, got, c.want)
			}
			if got != "" {
				if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
					t.Fatalf("UserLabelValue(%q) = %q is not a label value: %v", c.in, got, errs)
				}
			}
		})
	}
	if UserLabelValue("a@b") == UserLabelValue("a_b") {
		t.Fatal("two users whose names sanitise alike share a label value")
	}
}

// sha8 is the first 8 hex digits of the SHA-256 of s, as the docs state the rule.
func sha8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

func FuzzUserLabelValue(f *testing.F) {
	for _, s := range []string{"", "alice", "a@b", "张三", strings.Repeat("Z", 400), "..", "-", "a b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := UserLabelValue(s)
		if (v == "") != (s == "") {
			t.Fatalf("UserLabelValue(%q) = %q: empty exactly when the name is", s, v)
		}
		if v != "" {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Fatalf("UserLabelValue(%q) = %q: %v", s, v, errs)
			}
		}
	})
}

func TestLabelsCarryTheUser(t *testing.T) {
	job := fullJob(t)
	job.Username = "alice@1234.onaliyun.com"
	labels := Labels(job, "cn-hangzhou")
	if got := labels[dlcv1alpha1.LabelUser]; got != UserLabelValue(job.Username) || got == "" {
		t.Fatalf("user label %q", got)
	}
	job.Username = ""
	if _, ok := Labels(job, "cn-hangzhou")[dlcv1alpha1.LabelUser]; ok {
		t.Fatal("a job without a Username got a user label")
	}
}

func TestDurationTextReadsLikeKubectl(t *testing.T) {
	for in, want := range map[int64]string{0: "0s", 45: "45s", 450: "7m30s", 4020: "67m", 5*3600 + 12*60: "5h12m",
		3*86400 + 4*3600: "3d4h", -5: "", 1 << 62: "100y"} {
		if got := DurationText(in); got != want {
			t.Errorf("DurationText(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestRequestIDIsBoundedAndValid(t *testing.T) {
	id := "473469C7-AA6F-4DC5-B3DB-A3DC0DE3C83E"
	if got := RequestID(id); got != id {
		t.Fatalf("RequestID(%q) = %q", id, got)
	}
	long := strings.Repeat("é", 100) // 200 bytes
	got := RequestID(long)
	if len(got) > MaxRequestIDBytes || got != strings.Repeat("é", 64) {
		t.Fatalf("RequestID cut to %d bytes: %q", len(got), got)
	}
	if got := RequestID("a\xffb"); got != "a\uFFFDb" {
		t.Fatalf("invalid UTF-8 kept: %q", got)
	}
}

func TestStatusPromotesWhoAndWhen(t *testing.T) {
	job := fullJob(t)
	job.Username, job.UserID, job.Status = "pai-dlc-role", "123456789", "Succeeded"
	job.GmtRunningTime, job.GmtFinishTime = "2025-04-16T07:26:41Z", "2025-04-16T07:28:20Z"
	d := int64(4020)
	job.Duration = &d
	conv, err := ConvertJob(job, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := Status(conv, Hash(conv), nil, metav1.Now())
	started := time.Date(2025, 4, 16, 7, 26, 41, 0, time.UTC)
	if st.Username != "pai-dlc-role" || st.UserID != "123456789" || st.StartedAt == nil || !st.StartedAt.Time.Equal(started) ||
		st.FinishedAt == nil || st.Duration != 4020 || st.DurationText != "67m" {
		t.Fatalf("status: username %q userId %q startedAt %v finishedAt %v duration %d %q", st.Username, st.UserID, st.StartedAt,
			st.FinishedAt, st.Duration, st.DurationText)
	}
	job.GmtRunningTime, job.Duration = "", nil
	conv, _ = ConvertJob(job, Options{})
	st = Status(conv, Hash(conv), nil, metav1.Now())
	if st.StartedAt != nil || st.DurationText != "" {
		t.Fatalf("a job that never ran: startedAt %v, durationText %q", st.StartedAt, st.DurationText)
	}
}

func TestLabelsCarryNoURLUserinfo(t *testing.T) {
	job := fullJob(t)
	job.Username = "https://alice:pw1@example.com"
	job.JobType = "see https://bob:pw2@example.com/x"
	for key, value := range Labels(job, "cn-hangzhou") {
		if strings.Contains(value, "alice") || strings.Contains(value, "pw1") || strings.Contains(value, "bob") || strings.Contains(value, "pw2") {
			t.Errorf("label %s=%s carries URL userinfo", key, value)
		}
	}
}
