// Package snapshot turns a PAI-DLC job into the desired state of its DLCJobSnapshot: the object
// name, labels, the redacted job data, the content hash and the convenience status fields. It is
// pure: no Kubernetes or network I/O.
package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

var invalidNameChars = regexp.MustCompile(`[^a-z0-9.-]+`)

// Name returns the object name of a job's snapshot: the job ID lowercased when that is a valid
// object name (DLC IDs such as dlc1a2b3c4d5e6f7 are), otherwise a sanitised form plus a short
// hash of the exact ID, so two IDs that sanitise alike still get different names.
func Name(jobID string) string {
	lower := strings.ToLower(jobID)
	if lower == jobID && len(validation.IsDNS1123Subdomain(lower)) == 0 {
		return lower
	}
	sum := sha256.Sum256([]byte(jobID))
	suffix := hex.EncodeToString(sum[:4])
	base := strings.Trim(invalidNameChars.ReplaceAllString(lower, "-"), "-.")
	if max := validation.DNS1123SubdomainMaxLength - len(suffix) - 1; len(base) > max {
		base = strings.Trim(base[:max], "-.")
	}
	if base == "" {
		return "job-" + suffix
	}
	return base + "-" + suffix
}

var invalidLabelChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// LabelValue sanitises a value to label syntax: at most 63 characters of [A-Za-z0-9._-],
// starting and ending with an alphanumeric. A value with nothing left is empty.
func LabelValue(v string) string {
	v = invalidLabelChars.ReplaceAllString(v, "_")
	if len(v) > validation.LabelValueMaxLength {
		v = v[:validation.LabelValueMaxLength]
	}
	return strings.Trim(v, "._-")
}

// userHashLen is the number of hex digits of the hash that UserLabelValue appends.
const userHashLen = 8

// UserLabelValue is the value of the dlc.dlcsync.io/user label of a job submitted by username:
//   - "" (no label) for an empty username;
//   - the username itself when it is a valid label value (at most 63 characters of
//     [A-Za-z0-9._-], starting and ending with an alphanumeric), e.g. pai-dlc-role;
//   - otherwise LabelValue of the username cut to 54 characters, then "-" and the first 8 hex
//     digits of the SHA-256 of the exact username, e.g. alice_1234.onaliyun.com-5f0c2a1b for
//     alice@1234.onaliyun.com, or user-<8 hex> when nothing of it is left (a name of non-ASCII letters only).
//
// The hash keeps two users apart whose names sanitise alike (a@b and a_b), so that a
// selector never mixes their jobs; the readable prefix keeps the label recognisable.
func UserLabelValue(username string) string {
	if username == "" {
		return ""
	}
	if len(validation.IsValidLabelValue(username)) == 0 {
		return username
	}
	sum := sha256.Sum256([]byte(username))
	suffix := hex.EncodeToString(sum[:])[:userHashLen]
	base := LabelValue(username)
	if max := validation.LabelValueMaxLength - userHashLen - 1; len(base) > max {
		base = strings.TrimRight(base[:max], "._-")
	}
	if base == "" {
		base = "user"
	}
	return base + "-" + suffix
}

// LabelKeys are the label keys dlcsync manages on snapshots.
var LabelKeys = []string{dlcv1alpha1.LabelStatus, dlcv1alpha1.LabelJobType, dlcv1alpha1.LabelWorkspaceID, dlcv1alpha1.LabelRegion,
	dlcv1alpha1.LabelUser, dlcv1alpha1.LabelOutcome}

// Labels are the labels a snapshot carries, for selectors. Values pass the URL userinfo
// scrub that every string of the snapshot's data passes: labels are as readable as the status.
func Labels(job *dlc.JobItem, regionID string) map[string]string {
	labels := map[string]string{}
	for key, value := range map[string]string{
		dlcv1alpha1.LabelStatus:      job.Status,
		dlcv1alpha1.LabelJobType:     job.JobType,
		dlcv1alpha1.LabelWorkspaceID: job.WorkspaceID,
		dlcv1alpha1.LabelRegion:      regionID,
	} {
		if v := LabelValue(scrubURLs(value)); v != "" {
			labels[key] = v
		}
	}
	if v := UserLabelValue(scrubURLs(job.Username)); v != "" {
		labels[dlcv1alpha1.LabelUser] = v
	}
	if o := Outcome(job.Status); o != "" {
		labels[dlcv1alpha1.LabelOutcome] = o
	}
	return labels
}

// ConvertJob copies a job of the API into the CRD's JobItem, redacts it as the options say
// (and always registry passwords, credential tokens and URL userinfo), and bounds its strings
// (MaxStringBytes each, MaxJobBytes together) so that the apiserver accepts every job. The
// input is not changed.
func ConvertJob(job *dlc.JobItem, opts Options) (*dlcv1alpha1.JobItem, error) {
	out := &dlcv1alpha1.JobItem{}
	if err := copyByName(reflect.ValueOf(out).Elem(), reflect.ValueOf(job).Elem()); err != nil {
		return nil, fmt.Errorf("converting job %s: %w", job.JobID, err)
	}
	// Redaction first (a value hidden need not be cleaned or counted), then userinfo
	// scrubbing before any cut, so that a cut never leaves half a password before its '@'.
	Redact(out, opts)
	if !dlc.IsTerminal(job.Status) {
		// The API may report a running job's Duration as it grows (dlcsim's LiveDuration),
		// which would make every sync of every running job a write. It is mirrored once the job
		// has ended, when it is final; until then readers derive it from gmtRunningTime.
		out.Duration = nil
	}
	v := reflect.ValueOf(out).Elem()
	clean(v)
	bound(v)
	return out, nil
}

// statusVersion names how Status derives a snapshot's status from its job; change it whenever
// that changes. v2: Running condition, Complete/Failed during the reservation period, reveal
// groups. v3: username, userId, startedAt, durationText and the user label.
const statusVersion = "v3\n"

// Hash is a stable digest of the job data of a snapshot: equal data, equal hash.
func Hash(job *dlcv1alpha1.JobItem) string {
	// encoding/json writes struct fields in declaration order and map keys sorted.
	data, err := json.Marshal(job)
	if err != nil {
		// A JobItem holds only JSON-encodable values; keep the signature simple for callers.
		panic(fmt.Sprintf("encoding a JobItem: %v", err))
	}
	// The version of the derived status is hashed too, so that a dlcsync that computes
	// the status differently (conditions, redaction) rewrites every snapshot once, even those
	// whose job did not change.
	sum := sha256.Sum256(append([]byte(statusVersion), data...))
	return hex.EncodeToString(sum[:12])
}

// Status fills the convenience fields and conditions of a snapshot's status from its job and
// the job's Hash (computed once by the caller, who compares it first). Conditions keep their
// lastTransitionTime unless their status changes.
func Status(job *dlcv1alpha1.JobItem, hash string, existing []metav1.Condition, now metav1.Time) dlcv1alpha1.DLCJobSnapshotStatus {
	st := dlcv1alpha1.DLCJobSnapshotStatus{
		Job:           job,
		DisplayName:   job.DisplayName,
		JobType:       job.JobType,
		Phase:         job.Status,
		SubStatus:     job.SubStatus,
		ReasonCode:    job.ReasonCode,
		ReasonMessage: job.ReasonMessage,
		WorkspaceID:   job.WorkspaceID,
		WorkspaceName: job.WorkspaceName,
		RequestGPU:    job.RequestGPU,
		Username:      job.Username,
		UserID:        job.UserID,
		CreatedAt:     parseTime(job.GmtCreateTime),
		StartedAt:     parseTime(job.GmtRunningTime),
		FinishedAt:    parseTime(job.GmtFinishTime),
		ContentHash:   hash,
		Conditions:    append([]metav1.Condition(nil), existing...),
	}
	if job.Duration != nil {
		st.Duration = *job.Duration
		st.DurationText = DurationText(*job.Duration)
	}
	for _, c := range Conditions(job.Status, job.ReasonCode, job.ReasonMessage) {
		c.LastTransitionTime = now
		meta.SetStatusCondition(&st.Conditions, c)
	}
	return st
}

// maxDurationSeconds caps what DurationText converts (a hundred years): an endpoint may send any
// int64, and seconds beyond this would overflow a time.Duration.
const maxDurationSeconds = 100 * 365 * 24 * 3600

// DurationText writes a job's Duration (seconds) the way kubectl writes ages: 45s, 7m30s, 67m,
// 5h12m, 3d4h, 2y3d (k8s.io/apimachinery's duration.HumanDuration). A negative duration, which
// the API never means, gives "".
func DurationText(seconds int64) string {
	if seconds < 0 {
		return ""
	}
	return duration.HumanDuration(time.Duration(min(seconds, maxDurationSeconds)) * time.Second)
}

// MaxRequestIDBytes is the maxLength of status.requestId; longer IDs (no real one is) are cut.
const MaxRequestIDBytes = 128

// RequestID is the form of a ListJobs RequestId that status.requestId holds: valid UTF-8, at
// most MaxRequestIDBytes bytes (so at most that many characters).
func RequestID(id string) string {
	id = strings.ToValidUTF8(id, "\uFFFD")
	if len(id) > MaxRequestIDBytes {
		id = id[:MaxRequestIDBytes]
		// Only the last rune can have been split.
		for !utf8.ValidString(id) {
			id = id[:len(id)-1]
		}
	}
	return id
}

// MaxConditionMessageBytes is the maxLength of a condition message in the CRD schema
// (metav1.Condition). A message within it in encoded bytes is within it in characters.
const MaxConditionMessageBytes = 32768

// Conditions are the conditions of a job in a status. Complete (the job succeeded) and Failed
// mirror batch/v1 Job, so `kubectl wait --for=condition=Failed` works; both are True from the
// job's reservation period on (SucceededReserving, FailedReserving), because for the user the job
// has ended then. Stopped is True once the job is Stopped, Running while it is Running. A True
// condition carries the job's reason code (when it is a valid reason) and message.
func Conditions(phase, reasonCode, reasonMessage string) []metav1.Condition {
	cond := func(t string, on bool, reason string) metav1.Condition {
		status := metav1.ConditionFalse
		msg := "The job is " + phase
		if on {
			status = metav1.ConditionTrue
			if reasonMessage != "" {
				msg = reasonMessage
			}
			if reasonCode != "" {
				reason = LabelValue(reasonCode)
			}
		}
		if reason == "" || !validReason(reason) {
			reason = "Job" + phase
		}
		if !validReason(reason) {
			reason = "JobUnknown"
		}
		msg = cut(strings.ToValidUTF8(msg, "\uFFFD"), MaxConditionMessageBytes)
		return metav1.Condition{Type: t, Status: status, Reason: reason, Message: msg}
	}
	return []metav1.Condition{
		cond(dlcv1alpha1.ConditionComplete, Outcome(phase) == OutcomeSucceeded, "JobSucceeded"),
		cond(dlcv1alpha1.ConditionFailed, Outcome(phase) == OutcomeFailed, "JobFailed"),
		cond(dlcv1alpha1.ConditionStopped, Outcome(phase) == OutcomeStopped, "JobStopped"),
		cond(dlcv1alpha1.ConditionRunning, phase == dlc.StatusRunning, "JobRunning"),
	}
}

var reasonPattern = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)

// validReason reports whether s is a valid metav1.Condition reason.
func validReason(s string) bool { return len(s) <= 1024 && reasonPattern.MatchString(s) }

func parseTime(v string) *metav1.Time {
	t, err := time.Parse(dlc.TimeLayout, v)
	if err != nil {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}

var jsonType = reflect.TypeOf(apiextensionsv1.JSON{})

// copyByName copies src into dst field by field, matching struct fields by Go name. The API
// types of internal/dlc and the CRD types of api/v1alpha1 have the same Go names and shapes; the
// exceptions are handled here: free-form objects become apiextensionsv1.JSON, and the CRD's
// history pods have no further history (a CRD schema cannot recurse).
func copyByName(dst, src reflect.Value) error {
	if src.Kind() == reflect.Interface {
		if src.IsNil() {
			return nil
		}
		src = src.Elem()
	}
	if dst.Type() == jsonType {
		raw, err := json.Marshal(src.Interface())
		if err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(apiextensionsv1.JSON{Raw: raw}))
		return nil
	}
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return nil
		}
		if dst.Kind() == reflect.Pointer {
			dst.Set(reflect.New(dst.Type().Elem()))
			return copyByName(dst.Elem(), src.Elem())
		}
		return copyByName(dst, src.Elem())
	case reflect.Struct:
		for i := 0; i < dst.NumField(); i++ {
			field := dst.Type().Field(i)
			from := src.FieldByName(field.Name)
			if !from.IsValid() {
				continue
			}
			if err := copyByName(dst.Field(i), from); err != nil {
				return fmt.Errorf("%s: %w", field.Name, err)
			}
		}
		return nil
	case reflect.Slice:
		if src.IsNil() {
			return nil
		}
		out := reflect.MakeSlice(dst.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			if err := copyByName(out.Index(i), src.Index(i)); err != nil {
				return err
			}
		}
		dst.Set(out)
		return nil
	case reflect.Map:
		if src.IsNil() {
			return nil
		}
		if dst.Kind() == reflect.Pointer && dst.Type().Elem() == jsonType {
			dst.Set(reflect.New(jsonType))
			return copyByName(dst.Elem(), src)
		}
		out := reflect.MakeMapWithSize(dst.Type(), src.Len())
		iter := src.MapRange()
		for iter.Next() {
			v := reflect.New(dst.Type().Elem()).Elem()
			if err := copyByName(v, iter.Value()); err != nil {
				return err
			}
			out.SetMapIndex(iter.Key(), v)
		}
		dst.Set(out)
		return nil
	default:
		if dst.Kind() == reflect.Pointer {
			dst.Set(reflect.New(dst.Type().Elem()))
			dst = dst.Elem()
		}
		if !src.Type().ConvertibleTo(dst.Type()) {
			return fmt.Errorf("cannot copy %s into %s", src.Type(), dst.Type())
		}
		dst.Set(src.Convert(dst.Type()))
		return nil
	}
}
