package snapshot

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/snapshot/snapshottest"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

// mib is 1 MiB of text that JSON escapes heavily ('<' and '"' grow to 6 and 2 bytes) with
// multi-byte runes, the worst case for a limit counted in bytes.
var mib = strings.Repeat("a<é\"z", (1<<20)/6)

// everyStringHuge is a job whose every string is 1 MiB, but for a valid ID and the given status.
func everyStringHuge(status string) *dlc.JobItem {
	job := &dlc.JobItem{}
	snapshottest.Seed(job, func(string) string { return mib })
	job.JobID, job.Status = "dlceverystringhuge", status
	return job
}

// hugeFailure is a failed job with a 1 MiB reason message and a 1 MiB command, in plain ASCII,
// where a byte is a character: the case that reaches the schema's maxLength in characters.
func hugeFailure() *dlc.JobItem {
	ascii := strings.Repeat("line 1 in train.py\n", (1<<20)/19)
	return &dlc.JobItem{JobID: "dlchugefailure", Status: dlc.StatusFailed, ReasonCode: "JobFailed",
		ReasonMessage: "Traceback: " + ascii, UserCommand: "python train.py " + ascii, DisplayName: "huge"}
}

func TestCutMarksAndFitsEncodedBytes(t *testing.T) {
	for _, limit := range []int{minCut, 100, 1000, MaxConditionMessageBytes} {
		got := cut(mib, limit)
		if jsonLen(got) > limit || !utf8.ValidString(got) || !strings.HasSuffix(got, markCut(len(mib))) {
			t.Errorf("cut to %d: %d encoded bytes, valid %v, ends %q", limit, jsonLen(got), utf8.ValidString(got), got[max(0, len(got)-40):])
		}
		if enc, _ := json.Marshal(got); len(enc)-2 != jsonLen(got) {
			t.Errorf("jsonLen %d disagrees with encoding/json %d", jsonLen(got), len(enc)-2)
		}
	}
	if cut("short", 10) != "short" {
		t.Error("a short string was cut")
	}
}

func TestAJobWithEveryStringHugeFitsTheBudgetAndKeepsShortFields(t *testing.T) {
	job := everyStringHuge(dlc.StatusFailed)
	conv, err := ConvertJob(job, Options{Reveal: dlcv1alpha1.RevealGroups})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(conv)
	// The strings fit MaxJobBytes; keys, field names and punctuation come on top.
	if len(data) > MaxJobBytes+64<<10 {
		t.Fatalf("the job encodes to %d bytes", len(data))
	}
	if conv.JobID != job.JobID || conv.Status != dlc.StatusFailed {
		t.Fatalf("short fields were cut: %q %q", conv.JobID, conv.Status)
	}
	if !strings.HasSuffix(conv.ReasonMessage, markCut(len(mib))) || !strings.HasSuffix(conv.Pods[0].HistoryPods[0].PodID, markCut(len(mib))) {
		t.Fatalf("long fields not visibly cut: %q", conv.ReasonMessage[max(0, len(conv.ReasonMessage)-40):])
	}
	st := Status(conv, Hash(conv), nil, metav1.Now())
	whole, _ := json.Marshal(st)
	if len(whole) > 3*MaxJobBytes/2 {
		t.Fatalf("the status encodes to %d bytes", len(whole))
	}
}

func TestOneHugeStringIsCutAloneAndTheRestStays(t *testing.T) {
	job := hugeFailure()
	job.UserCommand = "python train.py"
	conv, err := ConvertJob(job, Options{Reveal: dlcv1alpha1.RevealGroups})
	if err != nil {
		t.Fatal(err)
	}
	if conv.UserCommand != "python train.py" || jsonLen(conv.ReasonMessage) > MaxStringBytes ||
		!strings.HasSuffix(conv.ReasonMessage, markCut(len(job.ReasonMessage))) {
		t.Fatalf("cut: command %q, reason %d bytes", conv.UserCommand, len(conv.ReasonMessage))
	}
}

func TestWaterLevelCutsTheLongestFirst(t *testing.T) {
	for _, tc := range []struct {
		lengths        []int
		budget, expect int
	}{
		{[]int{10, 20, 1000}, 100, 70},
		{[]int{500, 500, 10}, 210, 100},
		{[]int{50, 50}, 10, minCut},
	} {
		if got := waterLevel(tc.lengths, tc.budget); got != tc.expect {
			t.Errorf("waterLevel(%v, %d) = %d, want %d", tc.lengths, tc.budget, got, tc.expect)
		}
	}
}

// TestTheAPIServerAcceptsEveryJob converts huge jobs and writes them as the controller does (a
// create, then a server-side apply of the status in the controller's statusApply shape, see
// controllers/snapshots.go) to a real apiserver, which enforces the CRD schema and the request
// size limits.
func TestTheAPIServerAcceptsEveryJob(t *testing.T) {
	g := NewWithT(t)
	env, cfg, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = env.Stop() }()
	k8s, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		job  *dlc.JobItem
		opts Options
	}{
		{"1 MiB reason message and command, defaults", hugeFailure(), Options{}},
		{"1 MiB reason message and command, commands revealed", hugeFailure(), Options{Reveal: []dlcv1alpha1.RevealGroup{dlcv1alpha1.RevealCommands}}},
		{"every string 1 MiB, everything revealed", everyStringHuge(dlc.StatusFailed), Options{Reveal: dlcv1alpha1.RevealGroups}},
		{"every string 1 MiB, reserving", everyStringHuge(dlc.StatusFailedReserving), Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			name := Name(tc.job.JobID + tc.job.Status + string(rune('a'+len(tc.opts.Reveal))))
			conv, err := ConvertJob(tc.job, tc.opts)
			g.Expect(err).NotTo(HaveOccurred())
			status := Status(conv, Hash(conv), nil, metav1.Now())
			status.MatchedBy, status.Matching = []string{"q"}, true
			// As dlcsync writes a new snapshot: one create carrying the status (no subresource).
			snap := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
				Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: tc.job.JobID, RegionID: "cn-hangzhou"}, Status: status}
			body, err := json.Marshal(snap)
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("create body: %d bytes", len(body))
			g.Expect(k8s.Create(ctx, snap, client.FieldOwner("dlcsync"))).To(Succeed())

			var got dlcv1alpha1.DLCJobSnapshot
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &got)).To(Succeed())
			g.Expect(got.Status.Phase).To(Equal(tc.job.Status))
			g.Expect(got.Status.ContentHash).To(Equal(Hash(conv)))
			marker := markCut(len(tc.job.ReasonMessage))
			g.Expect(got.Status.ReasonMessage).To(HaveSuffix(marker))
			g.Expect(got.Status.Job.ReasonMessage).To(HaveSuffix(marker))
			var failed *metav1.Condition
			for i := range got.Status.Conditions {
				if got.Status.Conditions[i].Type == dlcv1alpha1.ConditionFailed {
					failed = &got.Status.Conditions[i]
				}
			}
			g.Expect(failed).NotTo(BeNil())
			g.Expect(failed.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(failed.Message).To(HaveSuffix(marker))
			if tc.opts.Reveals(dlcv1alpha1.RevealCommands) {
				g.Expect(got.Status.Job.UserCommand).To(HavePrefix(tc.job.UserCommand[:20]))
				g.Expect(got.Status.Job.UserCommand).To(HaveSuffix(markCut(len(tc.job.UserCommand))))
			} else {
				g.Expect(got.Status.Job.UserCommand).To(Equal(Redacted))
			}
			stored, _ := json.Marshal(&got)
			t.Logf("stored object: %d bytes", len(stored))
			g.Expect(len(stored)).To(BeNumerically("<", 1<<20), "well below etcd's 1.5 MiB")
		})
	}
}
