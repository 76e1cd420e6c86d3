package v1alpha1_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

var (
	testEnv *envtest.Environment
	// k8s writes with strict field validation, as kubectl does by default, so that unknown
	// fields are rejected instead of silently pruned.
	k8s client.Client
)

func TestMain(m *testing.M) {
	env, cfg, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testEnv = env
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	k8s = client.WithFieldValidation(c, "Strict")
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// fromYAML decodes one object in YAML into an unstructured object in namespace default.
func fromYAML(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.NewYAMLOrJSONDecoder(strings.NewReader(doc), 4096).Decode(&obj.Object); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	obj.SetNamespace("default")
	return obj
}

// validQuery is a JobQuery that the API accepts; invalid cases replace or add one piece of it.
const validQuery = `
apiVersion: dlc.dlcsync.io/v1alpha1
kind: JobQuery
metadata:
  name: NAME
spec:
  regionId: cn-hangzhou
  credentials:
    secretRef:
      name: dlc-credentials
`

func query(name, specExtra string) string {
	return strings.Replace(validQuery, "NAME", name, 1) + specExtra
}

// invalidJobQuery is a JobQuery the apiserver must refuse, and what its message must say.
type invalidJobQuery struct {
	name string
	doc  string
	// every substring must occur in the error message
	want []string
}

// invalidJobQueries are the cases of TestJobQueryRejectsInvalidSpecsWithAMessageNamingTheField.
var invalidJobQueries = []invalidJobQuery{
	{"missing region", `
apiVersion: dlc.dlcsync.io/v1alpha1
kind: JobQuery
metadata: {name: no-region}
spec:
  credentials: {secretRef: {name: s}}
`, []string{"spec.regionId", "Required"}},
	{"bad region syntax", strings.Replace(query("bad-region", ""), "cn-hangzhou", "CN_Hangzhou", 1),
		[]string{"spec.regionId"}},
	{"both credential kinds", strings.Replace(query("both-creds", ""), "      name: dlc-credentials",
		"      name: dlc-credentials\n    ambient: {}", 1),
		[]string{"spec.credentials", "exactly one of credentials.secretRef or credentials.ambient"}},
	{"neither credential kind", strings.Replace(query("no-creds", ""), "    secretRef:\n      name: dlc-credentials", "    {}", 1),
		[]string{"spec.credentials", "exactly one of"}},
	{"secretRef with a namespace", strings.Replace(query("secret-ns", ""), "      name: dlc-credentials",
		"      name: dlc-credentials\n      namespace: other", 1),
		[]string{`unknown field "spec.credentials.secretRef.namespace"`}},
	{"secretRef without a name", strings.Replace(query("secret-noname", ""), "      name: dlc-credentials",
		"      accessKeyIdKey: id", 1),
		[]string{"spec.credentials.secretRef.name", "Required"}},
	{"interval below 10s", query("short-interval", "  interval: 5s\n"),
		[]string{"spec.interval", "interval must be at least 10s"}},
	{"interval not a duration", query("word-interval", "  interval: soon\n"),
		[]string{"spec.interval"}},
	{"full resync more often than the interval", query("short-full", "  interval: 10m\n  fullResyncInterval: 5m\n"),
		[]string{"spec", "fullResyncInterval must be 0 (list in full at every sync) or at least interval"}},
	{"full resync above 720h", query("long-full", "  fullResyncInterval: 721h\n"),
		[]string{"spec.fullResyncInterval", "fullResyncInterval must be at most 720h"}},
	{"interval 0", query("zero-interval", "  interval: \"0\"\n"),
		[]string{"spec.interval", "interval must be at least 10s"}},
	{"interval above a week", query("long-interval", "  interval: 169h\n"),
		[]string{"spec.interval", "interval must be at most 168h"}},
	{"full resync not a duration", query("word-full", "  fullResyncInterval: hourly\n"),
		[]string{"spec.fullResyncInterval"}},
	{"unknown status", query("bad-status", "  filter:\n    status: Done\n"),
		[]string{"spec.filter.status", "Unsupported value"}},
	{"unknown job type", query("bad-type", "  filter:\n    jobType: SparkJob\n"),
		[]string{"spec.filter.jobType", "Unsupported value"}},
	// Jobs report MPIJob, RayJob and SlurmJob, but the reference documents only five values
	// for the JobType parameter.
	{"a job type the reference does not document as a filter", query("mpi-type", "  filter:\n    jobType: MPIJob\n"),
		[]string{"spec.filter.jobType", "Unsupported value", `"ElasticBatchJob"`}},
	{"a time field the reference does not document", query("running-field",
		"  filter:\n    timeRange: {field: GmtRunningTime, within: 24h}\n"),
		[]string{"spec.filter.timeRange.field", "Unsupported value", `"GmtCreateTime", "GmtFinishTime"`}},
	{"a numeric field the reference does not document", query("duration-range",
		"  filter:\n    numericRange: {field: Duration, min: 1}\n"),
		[]string{"spec.filter.numericRange.field", "Unsupported value", `"RequestGPU"`}},
	{"unknown sort field", query("bad-sort", "  sortBy: Priority\n"),
		[]string{"spec.sortBy", "Unsupported value"}},
	{"unknown order", query("bad-order", "  order: up\n"),
		[]string{"spec.order", "Unsupported value"}},
	{"unknown prune policy", query("bad-prune", "  snapshot:\n    prunePolicy: Keep\n"),
		[]string{"spec.snapshot.prunePolicy", "Unsupported value"}},
	{"numericRange min above max", query("bad-range", "  filter:\n    numericRange: {field: RequestGPU, min: 8, max: 2}\n"),
		[]string{"spec.filter.numericRange", "numericRange.min must be less than or equal to numericRange.max"}},
	{"numericRange without bounds", query("empty-range", "  filter:\n    numericRange: {field: RequestGPU}\n"),
		[]string{"spec.filter.numericRange", "needs min, max or both"}},
	{"numericRange on an unknown field", query("range-field", "  filter:\n    numericRange: {field: Memory, min: 1}\n"),
		[]string{"spec.filter.numericRange.field", "Unsupported value"}},
	{"within together with start", query("within-start",
		"  filter:\n    timeRange: {within: 24h, start: \"2026-01-01T00:00:00Z\"}\n"),
		[]string{"spec.filter.timeRange", "mutually exclusive"}},
	{"start after end", query("start-after-end",
		"  filter:\n    timeRange: {start: \"2026-02-01T00:00:00Z\", end: \"2026-01-01T00:00:00Z\"}\n"),
		[]string{"spec.filter.timeRange", "timeRange.start must be before timeRange.end"}},
	{"bad start time", query("bad-start", "  filter:\n    timeRange: {start: yesterday}\n"),
		[]string{"spec.filter.timeRange.start"}},
	{"maxJobs 0", query("zero-max", "  maxJobs: 0\n"),
		[]string{"spec.maxJobs", "greater than or equal to 1"}},
	{"maxJobs 20000", query("huge-max", "  maxJobs: 20000\n"),
		[]string{"spec.maxJobs", "less than or equal to 10000"}},
	{"unknown spec field", query("unknown-field", "  pageSize: 100\n"),
		[]string{`unknown field "spec.pageSize"`}},
	{"endpoint with another scheme", query("ftp-endpoint", "  endpoint: ftp://example.com\n"),
		[]string{"spec.endpoint", "http:// or https:// URL"}},
	{"endpoint with a path", query("path-endpoint", "  endpoint: https://example.com/api\n"),
		[]string{"spec.endpoint", "no path"}},
	{"fromAllWorkspaces with showOwn false", query("all-ws", "  filter:\n    fromAllWorkspaces: true\n    showOwn: false\n"),
		[]string{"spec.filter", "filter.fromAllWorkspaces lists the caller's own jobs only: remove showOwn: false"}},
	{"search mode without a name", query("mode-only", "  filter:\n    displayNameSearchMode: prefix\n"),
		[]string{"spec.filter", "filter.displayNameSearchMode requires a non-empty filter.displayName"}},
	{"search mode with an empty name", query("mode-empty", "  filter:\n    displayName: \"\"\n    displayNameSearchMode: term\n"),
		[]string{"spec.filter", "filter.displayNameSearchMode requires a non-empty filter.displayName"}},
	{"bad accessibility", query("bad-access", "  filter:\n    accessibility: public\n"),
		[]string{"spec.filter.accessibility", "Unsupported value"}},
	{"comma inside jobIds", query("comma-ids", "  filter:\n    jobIds: [\"a,b\"]\n"),
		[]string{"spec.filter.jobIds[0]"}},
	// url() reads this as host evil.example with userinfo "host:443": credentials would go there.
	{"endpoint whose host hides behind userinfo", query("userinfo-host", "  endpoint: https://host:443@evil.example\n"),
		[]string{"spec.endpoint", "endpoint must not contain userinfo"}},
	{"endpoint with a password", query("userinfo-pw", "  endpoint: https://user:pw@pai-dlc.cn-hangzhou.aliyuncs.com\n"),
		[]string{"spec.endpoint", "endpoint must not contain userinfo"}},
	{"endpoint with a query", query("query-endpoint", "  endpoint: https://example.com?x=1\n"),
		[]string{"spec.endpoint", "endpoint must not contain a query"}},
	{"endpoint with an empty query", query("empty-query-endpoint", "  endpoint: https://example.com?\n"),
		[]string{"spec.endpoint", "endpoint must not contain a query"}},
	{"endpoint with a fragment", query("fragment-endpoint", "  endpoint: https://example.com#top\n"),
		[]string{"spec.endpoint", "endpoint must not contain a fragment"}},
	{"end without start", query("end-only", "  filter:\n    timeRange: {end: \"2026-01-01T00:00:00Z\"}\n"),
		[]string{"spec.filter.timeRange", "timeRange.end needs timeRange.start: set start too, or use within"}},
	{"start equal to end", query("start-is-end",
		"  filter:\n    timeRange: {start: \"2026-01-01T00:00:00Z\", end: \"2026-01-01T00:00:00Z\"}\n"),
		[]string{"spec.filter.timeRange", "timeRange.start must be before timeRange.end"}},
	{"the same instant written in two zones", query("same-instant",
		"  filter:\n    timeRange: {start: \"2026-01-01T00:00:00Z\", end: \"2026-01-01T01:00:00+01:00\"}\n"),
		[]string{"spec.filter.timeRange", "timeRange.start must be before timeRange.end"}},
	// As strings start < end; as instants end (23:30Z the day before) is earlier.
	{"start after end once zones are read", query("zone-inverted",
		"  filter:\n    timeRange: {start: \"2026-01-01T00:00:00Z\", end: \"2026-01-01T00:30:00+01:00\"}\n"),
		[]string{"spec.filter.timeRange", "timeRange.start must be before timeRange.end"}},
	{"within above a year", query("long-within", "  filter:\n    timeRange: {within: 8761h}\n"),
		[]string{"spec.filter.timeRange.within", "timeRange.within must be at most 8760h"}},
	{"within of a century", query("century-within", "  filter:\n    timeRange: {within: 876000h}\n"),
		[]string{"spec.filter.timeRange.within", "timeRange.within must be at most 8760h"}},
	{"within zero", query("zero-within", "  filter:\n    timeRange: {within: 0s}\n"),
		[]string{"spec.filter.timeRange.within", "timeRange.within must be positive"}},
	{"tag key too long", query("long-tag-key", "  filter:\n    tags: {"+strings.Repeat("k", 129)+": v}\n"),
		[]string{"spec.filter.tags", "filter.tags keys must be 1 to 128 characters"}},
	{"empty tag key", query("empty-tag-key", "  filter:\n    tags: {\"\": v}\n"),
		[]string{"spec.filter.tags", "filter.tags keys must be 1 to 128 characters"}},
	{"tag value too long", query("long-tag-value", "  filter:\n    tags: {team: "+strings.Repeat("v", 129)+"}\n"),
		[]string{"spec.filter.tags", "filter.tags values must be at most 128 characters"}},
	{"21 tags", query("many-tags", "  filter:\n    tags: {"+tags(21)+"}\n"),
		[]string{"spec.filter.tags", "must have at most 20 items"}},
	{"unknown reveal group", query("bad-reveal", "  snapshot:\n    reveal: [Passwords]\n"),
		[]string{"spec.snapshot.reveal[0]", "Unsupported value", "EnvValues"}},
	{"reveal group twice", query("twice-reveal", "  snapshot:\n    reveal: [Commands, Commands]\n"),
		[]string{"spec.snapshot.reveal[1]", "Duplicate value"}},
	{"roleArn not a RAM role ARN", strings.Replace(query("bad-role", ""), "    secretRef:\n      name: dlc-credentials",
		"    ambient: {roleArn: \"arn:aws:iam::1:role/x\"}", 1),
		[]string{"spec.credentials.ambient.roleArn"}},
}

func TestJobQueryRejectsInvalidSpecsWithAMessageNamingTheField(t *testing.T) {
	ctx := context.Background()
	for _, tc := range invalidJobQueries {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := k8s.Create(ctx, fromYAML(t, tc.doc))
			g.Expect(err).To(HaveOccurred(), "the apiserver accepted an invalid JobQuery")
			t.Logf("rejected: %v", err)
			for _, want := range tc.want {
				g.Expect(err.Error()).To(ContainSubstring(want))
			}
		})
	}
}

// TestJobQueryRefusesSecretKeyNamesThatCoincide: the author of a JobQuery, who may not be able to
// read the Secret, chooses which of its keys fills each role. One key in two roles would send a
// value where another belongs: the AccessKey secret as the x-acs-security-token header or as the
// AccessKey ID, in clear, to the endpoint. The defaults count: securityTokenKey: accessKeySecret
// alone names the secret twice.
func TestJobQueryRefusesSecretKeyNamesThatCoincide(t *testing.T) {
	const idAndSecret = "secretRef.accessKeyIdKey and accessKeySecretKey must name different keys"
	const secretAndToken = "secretRef.accessKeySecretKey and securityTokenKey must name different keys"
	const idAndToken = "secretRef.accessKeyIdKey and securityTokenKey must name different keys"
	ctx := context.Background()
	for name, tc := range map[string]struct {
		keys string
		want []string
	}{
		"token-is-the-default-secret": {"securityTokenKey: accessKeySecret", []string{secretAndToken}},
		"id-is-the-default-secret":    {"accessKeyIdKey: accessKeySecret", []string{idAndSecret}},
		"secret-is-the-default-id":    {"accessKeySecretKey: accessKeyId", []string{idAndSecret}},
		"id-is-the-default-token":     {"accessKeyIdKey: securityToken", []string{idAndToken}},
		"secret-and-token-named-alike": {"accessKeySecretKey: sk\n      securityTokenKey: sk",
			[]string{secretAndToken}},
		"one-key-for-all-three": {"accessKeyIdKey: k\n      accessKeySecretKey: k\n      securityTokenKey: k",
			[]string{idAndSecret, secretAndToken, idAndToken}},
		// Distinct names, roles swapped: the secret's conventional key is never sent as a header.
		"id-and-secret-swapped": {"accessKeyIdKey: accessKeySecret\n      accessKeySecretKey: accessKeyId",
			[]string{"secretRef.accessKeyIdKey must not name accessKeySecret"}},
		"token-is-the-default-secret-with-a-custom-secret": {"accessKeySecretKey: sk\n      securityTokenKey: accessKeySecret",
			[]string{"secretRef.securityTokenKey must not name accessKeySecret"}},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			doc := strings.Replace(query("keys-"+name, ""), "      name: dlc-credentials",
				"      name: dlc-credentials\n      "+tc.keys, 1)
			err := k8s.Create(ctx, fromYAML(t, doc))
			g.Expect(err).To(HaveOccurred(), "the apiserver accepted secretRef keys %q", tc.keys)
			g.Expect(err.Error()).To(ContainSubstring("spec.credentials.secretRef"))
			for _, want := range tc.want {
				g.Expect(err.Error()).To(ContainSubstring(want))
			}
		})
	}
	// Three names of the author's choosing, each in one role, are fine.
	g := NewWithT(t)
	doc := strings.Replace(query("keys-distinct", ""), "      name: dlc-credentials",
		"      name: dlc-credentials\n      accessKeyIdKey: id\n      accessKeySecretKey: secret\n      securityTokenKey: token", 1)
	g.Expect(k8s.Create(ctx, fromYAML(t, doc))).To(Succeed())
}

func TestJobQueryAcceptsAMinimalSpecAndAppliesDefaults(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(k8s.Create(ctx, fromYAML(t, query("minimal", "")))).To(Succeed())

	var got dlcv1alpha1.JobQuery
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "minimal"}, &got)).To(Succeed())
	g.Expect(got.Spec.Interval.Duration).To(Equal(time.Minute))
	g.Expect(got.Spec.SortBy).To(Equal("GmtCreateTime"))
	g.Expect(got.Spec.Order).To(Equal("desc"))
	g.Expect(got.Spec.MaxJobs).To(Equal(int32(1000)))
	g.Expect(got.Spec.Suspend).To(BeFalse())
	g.Expect(got.Spec.Snapshot.PrunePolicy).To(Equal(dlcv1alpha1.PrunePolicyDelete))
	g.Expect(got.Spec.Snapshot.DeletionPolicy).To(Equal(dlcv1alpha1.DeletionPolicyDelete))
	g.Expect(got.Spec.Snapshot.IncludeEnvValues).To(BeFalse())
	g.Expect(got.Spec.Credentials.SecretRef.AccessKeyIDKey).To(Equal("accessKeyId"))
	g.Expect(got.Spec.Credentials.SecretRef.AccessKeySecretKey).To(Equal("accessKeySecret"))
	g.Expect(got.Spec.Credentials.SecretRef.SecurityTokenKey).To(Equal("securityToken"))
	g.Expect(got.Spec.Filter.TimeRange).NotTo(BeNil())
	g.Expect(got.Spec.Filter.TimeRange.Field).To(Equal("GmtCreateTime"))
	g.Expect(got.Spec.Filter.TimeRange.Within.Duration).To(Equal(168 * time.Hour))
	g.Expect(got.Spec.FullResyncInterval).To(BeNil(), "unset means hourly; a stored 1h default would fail the rule for intervals above 1h")
}

func TestJobQueryAcceptsEveryFilterField(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	full := query("every-filter", `  endpoint: http://127.0.0.1:8080
  interval: 10s
  sortBy: DisplayName
  order: asc
  maxJobs: 10000
  snapshot: {includeEnvValues: true, prunePolicy: Retain, deletionPolicy: Orphan}
  filter:
    displayName: mnist
    displayNameSearchMode: prefix
    description: nightly
    jobType: PyTorchJob
    status: Running
    workspaceId: "268"
    fromAllWorkspaces: true
    showOwn: true
    resourceId: r1
    resourceIds: [r1, r2]
    businessUserId: b1
    caller: local
    tags: {team: vision}
    pipelineId: flow-1
    jobId: dlc1
    jobIds: [dlc1, dlc2]
    userIdForFilter: "123"
    username: alice
    resourceQuotaName: quota
    accessibility: PUBLIC
    oversoldInfo: AcceptQuotaOverSold-true
    paymentType: Spot
    reasonSearch: OOM
    userCommandSearch: train.py
    imageSearch: pytorch
    enableAssignNode: false
    templateId: tml1
    numericRange: {field: RequestGPU, min: 0, max: 8}
    timeRange: {field: GmtFinishTime, start: "2026-01-01T00:00:00Z", end: "2026-02-01T00:00:00Z"}
`)
	g.Expect(k8s.Create(ctx, fromYAML(t, full))).To(Succeed())
	var got dlcv1alpha1.JobQuery
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "every-filter"}, &got)).To(Succeed())
	g.Expect(got.Spec.Filter.ResourceIDs).To(Equal([]string{"r1", "r2"}))
	g.Expect(got.Spec.Filter.TimeRange.Within).To(BeNil(), "an absolute window must not get the default within")
	g.Expect(*got.Spec.Filter.EnableAssignNode).To(BeFalse())

	ambient := strings.Replace(query("ambient", ""), "    secretRef:\n      name: dlc-credentials", "    ambient: {}", 1)
	g.Expect(k8s.Create(ctx, fromYAML(t, ambient))).To(Succeed())
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "ambient"}, &got)).To(Succeed())
	g.Expect(got.Spec.Credentials.Ambient).NotTo(BeNil())
}

func TestConfigSamplesAreValid(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	for _, name := range []string{"dlc_v1alpha1_jobquery.yaml", "dlc_v1alpha1_jobquery_failed_pytorch.yaml", "dlc_v1alpha1_jobquery_suspended.yaml"} {
		data, err := os.ReadFile(testenv.RepoRoot() + "/config/samples/" + name)
		g.Expect(err).NotTo(HaveOccurred())
		obj := fromYAML(t, string(data))
		obj.SetName("sample-" + obj.GetName())
		g.Expect(k8s.Create(ctx, obj)).To(Succeed(), name)
	}
}

func TestDLCJobSnapshotIdentityIsImmutable(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	snap := &dlcv1alpha1.DLCJobSnapshot{}
	snap.Namespace, snap.Name = "default", "dlc1a2b3c4d5e6f7"
	snap.Spec = dlcv1alpha1.DLCJobSnapshotSpec{JobID: "dlc1a2b3c4d5e6f7", RegionID: "cn-hangzhou"}
	g.Expect(k8s.Create(ctx, snap)).To(Succeed())

	changed := snap.DeepCopy()
	changed.Spec.JobID = "dlcother"
	err := k8s.Update(ctx, changed)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("spec.jobId is immutable"))

	changed = snap.DeepCopy()
	changed.Spec.RegionID = "cn-beijing"
	err = k8s.Update(ctx, changed)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("spec.regionId is immutable"))

	missing := &dlcv1alpha1.DLCJobSnapshot{}
	missing.Namespace, missing.Name = "default", "no-job-id"
	missing.Spec.RegionID = "cn-hangzhou"
	err = k8s.Create(ctx, missing)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("spec.jobId"))
}

// kubectl runs the kubectl built beside the control plane against the test apiserver.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	user, err := testEnv.AddUser(envtest.User{Name: "tester", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := user.Kubectl()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := k.Run(args...)
	if err != nil {
		errText, _ := io.ReadAll(stderr)
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, errText)
	}
	out, _ := io.ReadAll(stdout)
	return string(out)
}

func TestKubectlShowsThePrinterColumns(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(k8s.Create(ctx, fromYAML(t, query("columns", "  interval: 30s\n")))).To(Succeed())
	var q dlcv1alpha1.JobQuery
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "columns"}, &q)).To(Succeed())
	lastSuccess, lastSync := metav1.NewTime(time.Now().Add(-3*time.Hour)), metav1.NewTime(time.Now().Add(-20*time.Second))
	q.Status = dlcv1alpha1.JobQueryStatus{
		MatchedJobs: 7, Snapshots: 5, LastSuccessfulSyncTime: &lastSuccess, LastSyncTime: &lastSync,
		LastSyncStats: &dlcv1alpha1.SyncStats{Mode: dlcv1alpha1.SyncModeIncremental},
		Conditions: []metav1.Condition{{Type: dlcv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: dlcv1alpha1.ReasonUnauthorized, Message: "ListJobs failed: InvalidAccessKeyId", LastTransitionTime: lastSuccess}},
	}
	g.Expect(k8s.Status().Update(ctx, &q)).To(Succeed())

	snap := &dlcv1alpha1.DLCJobSnapshot{}
	snap.Namespace, snap.Name = "default", "dlccolumns"
	snap.Spec = dlcv1alpha1.DLCJobSnapshotSpec{JobID: "dlcColumns", RegionID: "cn-hangzhou"}
	created, started := metav1.NewTime(time.Now().Add(-50*time.Hour)), metav1.NewTime(time.Now().Add(-49*time.Hour))
	snap.Status = dlcv1alpha1.DLCJobSnapshotStatus{
		DisplayName: "tf-mnist", JobType: "TFJob", Phase: "Running", RequestGPU: "2", Duration: 4020, DurationText: "67m",
		Username: "pai-dlc-role", UserID: "123456789", CreatedAt: &created, StartedAt: &started,
		WorkspaceName: "ws-a", ReasonCode: "JobRunning", MatchedBy: []string{"columns"}, RequestID: "473469C7-AA6F",
		// A condition that disagrees with phase proves PHASE reads the phase, not a condition.
		Conditions: []metav1.Condition{{Type: "Failed", Status: "False", Reason: "JobNotFailed", Message: "-", LastTransitionTime: metav1.Now()}},
	}
	// As dlcsync writes it: one create, its status in it (no status subresource).
	g.Expect(k8s.Create(ctx, snap)).To(Succeed())

	// A stuck query reads stuck: not ready, why, and a last success hours ago even though it
	// attempted a sync seconds ago.
	jq := kubectl(t, "get", "jq", "-n", "default", "columns")
	g.Expect(jq).To(MatchRegexp(`NAME\s+REGION\s+READY\s+REASON\s+MATCHED\s+SNAPSHOTS\s+LAST SUCCESS\s+INTERVAL\s+AGE\n`))
	g.Expect(jq).To(MatchRegexp(`columns\s+cn-hangzhou\s+False\s+Unauthorized\s+7\s+5\s+3h\s+30s\s+`))
	jqWide := kubectl(t, "get", "jobqueries", "-n", "default", "columns", "-o", "wide")
	g.Expect(jqWide).To(MatchRegexp(`AGE\s+LAST SYNC\s+MODE\s+SUSPENDED\s+STATUS\n`))
	g.Expect(jqWide).To(MatchRegexp(`\s+(19|20|21)s\s+Incremental\s+ListJobs failed: InvalidAccessKeyId`))

	djs := kubectl(t, "get", "djs", "-n", "default", "dlccolumns")
	g.Expect(djs).To(MatchRegexp(`NAME\s+DISPLAY NAME\s+TYPE\s+USER\s+PHASE\s+STARTED\s+DURATION\n`))
	g.Expect(djs).To(MatchRegexp(`dlccolumns\s+tf-mnist\s+TFJob\s+pai-dlc-role\s+Running\s+2d1h\s+67m\n`))
	djsWide := kubectl(t, "get", "dlcjobsnapshots", "-n", "default", "dlccolumns", "-o", "wide")
	g.Expect(djsWide).To(MatchRegexp(`DURATION\s+JOB ID\s+CREATED\s+FINISHED\s+SECONDS\s+GPU\s+WORKSPACE\s+REASON\s+QUERY\n`))
	g.Expect(djsWide).To(MatchRegexp(`67m\s+dlcColumns\s+2d2h\s+4020\s+2\s+ws-a\s+JobRunning\s+\["columns"\]`))

	// The category makes `kubectl get dlc` list both kinds.
	all := kubectl(t, "get", "dlc", "-n", "default")
	g.Expect(all).To(ContainSubstring("jobquery.dlc.dlcsync.io/columns"))
	g.Expect(all).To(ContainSubstring("dlcjobsnapshot.dlc.dlcsync.io/dlccolumns"))
}

func TestKubectlExplainDocumentsTheFilter(t *testing.T) {
	g := NewWithT(t)
	out := kubectl(t, "explain", "jobquery.spec.filter")
	for _, field := range []string{"displayName", "jobType", "numericRange", "timeRange", "tags", "showOwn", "reasonSearch"} {
		g.Expect(out).To(ContainSubstring(field))
	}
	g.Expect(out).To(ContainSubstring("holds the ListJobs filter parameters"))
	out = kubectl(t, "explain", "dlcjobsnapshot.status.job.jobSpecs.resourceConfig")
	g.Expect(out).To(ContainSubstring("gpuType"))
}

// TestJobQueryAcceptsTheEdgesOfEachNewRule: every rule that refuses something lets its nearest
// valid neighbour through.
func TestJobQueryAcceptsTheEdgesOfEachNewRule(t *testing.T) {
	ctx := context.Background()
	for name, extra := range map[string]string{
		"endpoint-with-port":    "  endpoint: https://pai-dlc.cn-hangzhou.aliyuncs.com:443\n",
		"endpoint-with-slash":   "  endpoint: http://127.0.0.1:8080/\n",
		"start-only":            "  filter:\n    timeRange: {start: \"2026-01-01T00:00:00Z\"}\n",
		"start-before-end-zone": "  filter:\n    timeRange: {start: \"2026-01-01T00:30:00+01:00\", end: \"2026-01-01T00:00:00Z\"}\n",
		"one-second-window":     "  filter:\n    timeRange: {start: \"2026-01-01T00:00:00Z\", end: \"2026-01-01T00:00:01Z\"}\n",
		"within-a-year":         "  filter:\n    timeRange: {within: 8760h}\n",
		"twenty-tags":           "  filter:\n    tags: {" + tags(20) + "}\n",
		"interval-2h-alone":     "  interval: 2h\n",
		"interval-a-week":       "  interval: 168h\n",
		"full-resync-0":         "  fullResyncInterval: \"0\"\n",
		"full-resync-0s":        "  interval: 2h\n  fullResyncInterval: 0s\n",
		"full-resync-interval":  "  interval: 2h\n  fullResyncInterval: 2h\n",
		"full-resync-720h":      "  fullResyncInterval: 720h\n",
		"all-workspaces-alone":  "  filter:\n    fromAllWorkspaces: true\n",
		"all-workspaces-own":    "  filter:\n    fromAllWorkspaces: true\n    showOwn: true\n",
		"own-false-alone":       "  filter:\n    fromAllWorkspaces: false\n    showOwn: false\n",
		"search-mode-one-char":  "  filter:\n    displayName: a\n    displayNameSearchMode: term\n",
		"every-job-type":        "  filter:\n    jobType: ElasticBatchJob\n",
		"finish-time-window":    "  filter:\n    timeRange: {field: GmtFinishTime, within: 24h}\n",
		"longest-tags":          "  filter:\n    tags: {" + strings.Repeat("k", 128) + ": " + strings.Repeat("v", 128) + ", empty: \"\"}\n",
		"reveal-everything":     "  snapshot:\n    includeEnvValues: true\n    reveal: [EnvValues, Commands, Settings, Libraries, PodAnnotations]\n",
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(k8s.Create(ctx, fromYAML(t, query("edge-"+name, extra)))).To(Succeed())
		})
	}
	g := NewWithT(t)
	var got dlcv1alpha1.JobQuery
	// Defaults must never violate a rule: no fullResyncInterval default that a long interval fails.
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "edge-interval-2h-alone"}, &got)).To(Succeed())
	g.Expect(got.Spec.Interval.Duration).To(Equal(2 * time.Hour))
	g.Expect(got.Spec.FullResyncInterval).To(BeNil())
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "edge-full-resync-0"}, &got)).To(Succeed())
	g.Expect(got.Spec.FullResyncInterval.Duration).To(Equal(time.Duration(0)))
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "edge-reveal-everything"}, &got)).To(Succeed())
	g.Expect(got.Spec.Snapshot.Reveal).To(Equal(dlcv1alpha1.RevealGroups))
	g.Expect(got.Spec.Snapshot.IncludeEnvValues).To(BeTrue())
}

// TestJobStatusCountsHoldEveryStatusAndOther: the controller counts every status of the
// reference and folds unknown ones into Other; the status schema must take all 14 keys.
func TestJobStatusCountsHoldEveryStatusAndOther(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(k8s.Create(ctx, fromYAML(t, query("all-statuses", "")))).To(Succeed())
	var q dlcv1alpha1.JobQuery
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "all-statuses"}, &q)).To(Succeed())
	q.Status.JobStatusCounts = map[string]int32{dlcv1alpha1.JobStatusOther: 1}
	for i, s := range dlcv1alpha1.JobStatuses {
		q.Status.JobStatusCounts[s] = int32(i + 1)
	}
	g.Expect(q.Status.JobStatusCounts).To(HaveLen(14))
	g.Expect(k8s.Status().Update(ctx, &q)).To(Succeed())
	var got dlcv1alpha1.JobQuery
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "all-statuses"}, &got)).To(Succeed())
	g.Expect(got.Status.JobStatusCounts).To(Equal(q.Status.JobStatusCounts))
}

// tags is n distinct tags in YAML flow style.
func tags(n int) string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("k%d: v", i)
	}
	return strings.Join(out, ", ")
}
