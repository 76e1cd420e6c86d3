package dlcsim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

var (
	adminID = dlcsim.Identity{AccessKeyID: "admin-key", AccessKeySecret: "admin-secret", UserID: "u0", Username: "root", Admin: true}
	alice   = dlcsim.Identity{AccessKeyID: "alice-key", AccessKeySecret: "alice-secret", UserID: "u1", Username: "alice"}
	bob     = dlcsim.Identity{AccessKeyID: "bob-key", AccessKeySecret: "bob-secret", UserID: "u2", Username: "bob"}
	denied  = dlcsim.Identity{AccessKeyID: "denied-key", AccessKeySecret: "denied-secret", UserID: "u9", Username: "eve", AllowListJobs: dlc.Ptr(false)}
)

func ts(t time.Time) string { return dlc.FormatTime(t) }

// fixture is five jobs whose attributes each filter case relies on.
func fixture(now time.Time) []dlcsim.Job {
	i32 := func(v int32) *int32 { return &v }
	i64 := func(v int64) *int64 { return &v }
	yes, no := true, false
	return []dlcsim.Job{
		{JobItem: dlc.JobItem{
			JobID: "dlcj1", DisplayName: "tf-mnist-test", JobType: "TFJob", Status: "Running", WorkspaceID: "268",
			UserID: "u1", Username: "alice", Accessibility: "PUBLIC", ResourceID: "quota1", ResourceQuotaName: "vision-GPU",
			UseOversoldResource: &yes, RequestGPU: "8", RequestCPU: i64(32), Priority: i32(5), Duration: i64(3600),
			UserCommand: "python train.py --epochs 3", TemplateID: "tml1", GmtCreateTime: ts(now.Add(-time.Hour)),
			JobSpecs: []dlc.JobSpec{{Type: "Worker", Image: "registry.cn-hangzhou.aliyuncs.com/pai/pytorch-training:2.1",
				AssignNodeSpec: &dlc.AssignNodeSpec{EnableAssignNode: &yes}}},
			Settings: &dlc.JobSettings{Caller: "local", BusinessUserID: "b1", PipelineID: "flow-1",
				Tags: map[string]string{"team": "vision", "env": "prod"}, OversoldType: "AcceptQuotaOverSold"},
		}},
		{JobItem: dlc.JobItem{
			JobID: "dlcj2", DisplayName: "job-Test2", JobType: "PyTorchJob", Status: "Failed", WorkspaceID: "268",
			UserID: "u2", Username: "bob", Accessibility: "PUBLIC", ReasonCode: "JobFailed",
			ReasonMessage: "RuntimeError: CUDA out of memory", RequestGPU: "1", Priority: i32(1), Duration: i64(60),
			GmtCreateTime: ts(now.Add(-2 * time.Hour)), GmtFinishTime: ts(now.Add(-time.Hour)),
			JobSpecs: []dlc.JobSpec{{Type: "Worker", Image: "tensorflow:2.14", UseSpotInstance: &yes}},
		}, Description: "nightly run"},
		{JobItem: dlc.JobItem{
			JobID: "dlcj3", DisplayName: "图像分类训练", JobType: "PyTorchJob", Status: "Succeeded", WorkspaceID: "1024",
			UserID: "u1", Username: "alice", Accessibility: "PRIVATE", ResourceID: "quota2", ReasonCode: "JobFailedOnce",
			ReasonMessage: "训练进程异常退出：显存不足", RequestGPU: "0", GmtCreateTime: ts(now.Add(-72 * time.Hour)),
			GmtFinishTime: ts(now.Add(-48 * time.Hour)), JobSpecs: []dlc.JobSpec{{AssignNodeSpec: &dlc.AssignNodeSpec{EnableAssignNode: &no}}},
		}},
		{JobItem: dlc.JobItem{
			JobID: "dlcj4", DisplayName: "bert-finetune", JobType: "XGBoostJob", Status: "Stopped", WorkspaceID: "1024",
			UserID: "u2", Username: "bob", Accessibility: "PRIVATE", GmtCreateTime: ts(now.Add(-240 * time.Hour)),
		}},
		{JobItem: dlc.JobItem{
			JobID: "DLCUPPERID", DisplayName: "queued-one", JobType: "TFJob", Status: "Queuing", WorkspaceID: "268",
			UserID: "u3", Username: "carol", Accessibility: "PUBLIC", GmtCreateTime: ts(now.Add(-30 * time.Minute)),
		}},
	}
}

type harness struct {
	sim *dlcsim.Server
	url string
	now time.Time
}

func newHarness(t *testing.T) *harness {
	var opts dlcsim.Options
	t.Helper()
	if opts.Identities == nil {
		opts.Identities = []dlcsim.Identity{adminID, alice, bob, denied}
	}
	sim := dlcsim.New(opts)
	now := time.Now()
	sim.Upsert(fixture(now)...)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &harness{sim: sim, url: srv.URL, now: now}
}

func (h *harness) client(t *testing.T, id dlcsim.Identity) *dlc.Client {
	t.Helper()
	c, err := dlc.NewClient(dlc.Config{RegionID: "cn-hangzhou", Endpoint: h.url, Retry: dlc.RetryPolicy{MaxAttempts: 1},
		Static: &dlc.StaticCredentials{AccessKeyID: id.AccessKeyID, AccessKeySecret: id.AccessKeySecret, SecurityToken: id.SecurityToken}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// raw sends a query exactly as given through a darabonba-openapi client (V3 signing), returning
// the decoded body or darabonba's error.
func (h *harness) raw(t *testing.T, id dlcsim.Identity, query map[string]string) (map[string]any, error) {
	t.Helper()
	c, err := openapi.NewClient(&openapi.Config{AccessKeyId: dara.String(id.AccessKeyID), AccessKeySecret: dara.String(id.AccessKeySecret),
		Endpoint: dara.String(strings.TrimPrefix(h.url, "http://")), Protocol: dara.String("http")})
	if err != nil {
		t.Fatal(err)
	}
	c.DisableSDKError = dara.Bool(true)
	q := map[string]*string{}
	for k, v := range query {
		q[k] = dara.String(v)
	}
	res, err := c.CallApiWithCtx(context.Background(), &openapi.Params{Action: dara.String("ListJobs"), Version: dara.String("2020-12-03"),
		Protocol: dara.String("HTTP"), Pathname: dara.String("/api/v1/jobs"), Method: dara.String("GET"), AuthType: dara.String("AK"),
		Style: dara.String("ROA"), ReqBodyType: dara.String("json"), BodyType: dara.String("string")},
		&openapi.OpenApiRequest{Query: q}, &dara.RuntimeOptions{})
	if err != nil {
		return nil, err
	}
	var body map[string]any
	dec := json.NewDecoder(strings.NewReader(res["body"].(string)))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body, nil
}

func idsOf(jobs []dlc.JobItem) []string {
	out := make([]string, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j.JobID)
	}
	slices.Sort(out)
	return out
}

// filterCase is a listing and the jobs it must return.
type filterCase struct {
	name string
	as   dlcsim.Identity
	req  dlc.ListJobsRequest
	want []string
}

// textAndTimeFilterCases are the filters on a job's text, type, status and times.
func textAndTimeFilterCases(now time.Time) []filterCase {
	wide := dlc.Ptr(ts(now.Add(-15 * 24 * time.Hour)))
	return []filterCase{
		{"DisplayName is a case-insensitive substring", adminID, dlc.ListJobsRequest{DisplayName: dlc.Ptr("test")}, []string{"dlcj1", "dlcj2"}},
		{"DisplayName wildcard (default mode) with a glob", adminID, dlc.ListJobsRequest{DisplayName: dlc.Ptr("tf-*")}, []string{"dlcj1"}},
		{"DisplayName in Chinese", adminID, dlc.ListJobsRequest{DisplayName: dlc.Ptr("分类")}, []string{"dlcj3"}},
		{"DisplayNameSearchMode prefix", adminID, dlc.ListJobsRequest{DisplayName: dlc.Ptr("TF"), DisplayNameSearchMode: dlc.Ptr("prefix")}, []string{"dlcj1"}},
		{"DisplayNameSearchMode term is exact", adminID, dlc.ListJobsRequest{DisplayName: dlc.Ptr("tf-mnist-test"), DisplayNameSearchMode: dlc.Ptr("term")}, []string{"dlcj1"}},
		{"DisplayNameSearchMode term rejects a part", adminID, dlc.ListJobsRequest{DisplayName: dlc.Ptr("tf-mnist"), DisplayNameSearchMode: dlc.Ptr("term")}, nil},
		{"DisplayNameSearchMode fulltext matches words", adminID, dlc.ListJobsRequest{DisplayName: dlc.Ptr("test mnist"), DisplayNameSearchMode: dlc.Ptr("fulltext")}, []string{"dlcj1"}},
		{"DisplayNameSearchMode wildcard ?", adminID, dlc.ListJobsRequest{DisplayName: dlc.Ptr("job-test?"), DisplayNameSearchMode: dlc.Ptr("wildcard")}, []string{"dlcj2"}},
		{"Description", adminID, dlc.ListJobsRequest{Description: dlc.Ptr("NIGHTLY")}, []string{"dlcj2"}},
		{"JobType", adminID, dlc.ListJobsRequest{JobType: dlc.Ptr("PyTorchJob")}, []string{"dlcj2", "dlcj3"}},
		{"Status", adminID, dlc.ListJobsRequest{Status: dlc.Ptr("Failed")}, []string{"dlcj2"}},
		{"the default window is the last 7 days of creation", adminID, dlc.ListJobsRequest{}, []string{"DLCUPPERID", "dlcj1", "dlcj2", "dlcj3"}},
		{"StartTime widens the window", adminID, dlc.ListJobsRequest{StartTime: wide}, []string{"DLCUPPERID", "dlcj1", "dlcj2", "dlcj3", "dlcj4"}},
		{"EndTime bounds the window", adminID, dlc.ListJobsRequest{StartTime: wide, EndTime: dlc.Ptr(ts(now.Add(-24 * time.Hour)))}, []string{"dlcj3", "dlcj4"}},
		{"TimeRangeField GmtFinishTime", adminID, dlc.ListJobsRequest{TimeRangeField: dlc.Ptr("GmtFinishTime"),
			StartTime: dlc.Ptr(ts(now.Add(-90 * time.Minute))), EndTime: dlc.Ptr(ts(now))}, []string{"dlcj2"}},
	}
}

// scopeFilterCases are the filters on whose, where and how a job runs.
func scopeFilterCases(now time.Time) []filterCase {
	wide := dlc.Ptr(ts(now.Add(-15 * 24 * time.Hour)))
	return []filterCase{
		{"ShowOwn lists the caller's own jobs", alice, dlc.ListJobsRequest{ShowOwn: dlc.Ptr(true)}, []string{"dlcj1", "dlcj3"}},
		{"FromAllWorkspaces with ShowOwn ignores WorkspaceId", alice, dlc.ListJobsRequest{ShowOwn: dlc.Ptr(true), FromAllWorkspaces: dlc.Ptr(true),
			WorkspaceID: dlc.Ptr("268")}, []string{"dlcj1", "dlcj3"}},
		{"WorkspaceId", adminID, dlc.ListJobsRequest{WorkspaceID: dlc.Ptr("268")}, []string{"DLCUPPERID", "dlcj1", "dlcj2"}},
		{"ResourceId", adminID, dlc.ListJobsRequest{ResourceID: dlc.Ptr("quota1")}, []string{"dlcj1"}},
		{"ResourceIds", adminID, dlc.ListJobsRequest{ResourceIDs: []string{"quota1", "quota2"}}, []string{"dlcj1", "dlcj3"}},
		{"ResourceQuotaName is a case-insensitive substring", adminID, dlc.ListJobsRequest{ResourceQuotaName: dlc.Ptr("gpu")}, []string{"dlcj1"}},
		{"BusinessUserId", adminID, dlc.ListJobsRequest{BusinessUserID: dlc.Ptr("b1")}, []string{"dlcj1"}},
		{"Caller", adminID, dlc.ListJobsRequest{Caller: dlc.Ptr("local")}, []string{"dlcj1"}},
		{"Tags: one tag", adminID, dlc.ListJobsRequest{Tags: map[string]string{"team": "vision"}}, []string{"dlcj1"}},
		{"Tags: all must match", adminID, dlc.ListJobsRequest{Tags: map[string]string{"team": "vision", "env": "dev"}}, nil},
		{"PipelineId", adminID, dlc.ListJobsRequest{PipelineID: dlc.Ptr("flow-1")}, []string{"dlcj1"}},
		{"JobId is case-insensitive", adminID, dlc.ListJobsRequest{JobID: dlc.Ptr("dlcupperid")}, []string{"DLCUPPERID"}},
		{"JobId wins over JobIds", adminID, dlc.ListJobsRequest{JobID: dlc.Ptr("dlcj1"), JobIDs: []string{"dlcj2"}}, []string{"dlcj1"}},
		{"JobIds", adminID, dlc.ListJobsRequest{JobIDs: []string{"dlcj1", "dlcj2"}}, []string{"dlcj1", "dlcj2"}},
		{"UserIdForFilter", adminID, dlc.ListJobsRequest{UserIDForFilter: dlc.Ptr("u2")}, []string{"dlcj2"}},
		{"Username is a case-insensitive substring", adminID, dlc.ListJobsRequest{Username: dlc.Ptr("ALI")}, []string{"dlcj1", "dlcj3"}},
		{"Accessibility", adminID, dlc.ListJobsRequest{Accessibility: dlc.Ptr("PRIVATE")}, []string{"dlcj3"}},
		{"PRIVATE jobs are hidden from other users", bob, dlc.ListJobsRequest{StartTime: wide}, []string{"DLCUPPERID", "dlcj1", "dlcj2", "dlcj4"}},
		{"OversoldInfo", adminID, dlc.ListJobsRequest{OversoldInfo: dlc.Ptr("AcceptQuotaOverSold-true")}, []string{"dlcj1"}},
		{"PaymentType Spot", adminID, dlc.ListJobsRequest{PaymentType: dlc.Ptr("Spot")}, []string{"dlcj2"}},
		{"PaymentType PrePaid", adminID, dlc.ListJobsRequest{PaymentType: dlc.Ptr("PrePaid")}, []string{"dlcj1", "dlcj3"}},
		{"PaymentType PostPaid", adminID, dlc.ListJobsRequest{PaymentType: dlc.Ptr("PostPaid")}, []string{"DLCUPPERID"}},
		{"ReasonSearch English words", adminID, dlc.ListJobsRequest{ReasonSearch: dlc.Ptr("out of memory")}, []string{"dlcj2"}},
		{"ReasonSearch Chinese", adminID, dlc.ListJobsRequest{ReasonSearch: dlc.Ptr("显存不足")}, []string{"dlcj3"}},
		{"ReasonSearch matches words, not parts", adminID, dlc.ListJobsRequest{ReasonSearch: dlc.Ptr("memo")}, nil},
		{"UserCommandSearch", adminID, dlc.ListJobsRequest{UserCommandSearch: dlc.Ptr("python train.py")}, []string{"dlcj1"}},
		{"ImageSearch", adminID, dlc.ListJobsRequest{ImageSearch: dlc.Ptr("pytorch")}, []string{"dlcj1"}},
		{"NumericRange RequestGPU min", adminID, dlc.ListJobsRequest{NumericRangeField: dlc.Ptr("RequestGPU"), NumericRangeMin: dlc.Ptr(int64(2))}, []string{"dlcj1"}},
		{"NumericRange RequestGPU max (inclusive)", adminID, dlc.ListJobsRequest{NumericRangeField: dlc.Ptr("RequestGPU"), NumericRangeMax: dlc.Ptr(int64(1))}, []string{"dlcj2", "dlcj3"}},
		{"NumericRange Priority exact", adminID, dlc.ListJobsRequest{NumericRangeField: dlc.Ptr("Priority"), NumericRangeMin: dlc.Ptr(int64(5)), NumericRangeMax: dlc.Ptr(int64(5))}, []string{"dlcj1"}},
		{"NumericRange RequestCPU", adminID, dlc.ListJobsRequest{NumericRangeField: dlc.Ptr("RequestCPU"), NumericRangeMin: dlc.Ptr(int64(16))}, []string{"dlcj1"}},
		{"NumericRange Duration", adminID, dlc.ListJobsRequest{NumericRangeField: dlc.Ptr("Duration"), NumericRangeMin: dlc.Ptr(int64(100))}, []string{"dlcj1"}},
		{"EnableAssignNode true", adminID, dlc.ListJobsRequest{EnableAssignNode: dlc.Ptr(true)}, []string{"dlcj1"}},
		{"EnableAssignNode false", adminID, dlc.ListJobsRequest{EnableAssignNode: dlc.Ptr(false)}, []string{"DLCUPPERID", "dlcj2", "dlcj3"}},
		{"TemplateId", adminID, dlc.ListJobsRequest{TemplateID: dlc.Ptr("tml1")}, []string{"dlcj1"}},
	}
}

func TestEveryFilterParameterSelectsTheDocumentedJobs(t *testing.T) {
	h := newHarness(t)
	for _, tc := range append(textAndTimeFilterCases(h.now), scopeFilterCases(h.now)...) {
		t.Run(tc.name, func(t *testing.T) { checkFilterCase(t, h, tc) })
	}
	checkEveryRequestCounted(t, h)
}

// checkFilterCase lists tc through the client, then through a bare darabonba-openapi client.
func checkFilterCase(t *testing.T, h *harness, tc filterCase) {
	t.Helper()
	req := tc.req
	req.PageSize = dlc.Ptr(int32(100))
	resp, err := h.client(t, tc.as).ListJobs(context.Background(), &req)
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOf(resp.Jobs); !slices.Equal(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
		t.Fatalf("got %v, want %v", got, tc.want)
	}
	if resp.TotalCount != int64(len(tc.want)) {
		t.Fatalf("TotalCount %d, want %d", resp.TotalCount, len(tc.want))
	}
	// The same parameters through a bare darabonba-openapi client.
	query := map[string]string{}
	for k, v := range req.Query() {
		query[k] = *v
	}
	if _, ok := query["ShowOwn"]; !ok {
		query["ShowOwn"] = "false"
	}
	body, err := h.raw(t, tc.as, query)
	if err != nil {
		t.Fatal(err)
	}
	if got := body["TotalCount"].(json.Number).String(); got != strconv.Itoa(len(tc.want)) {
		t.Fatalf("raw request: TotalCount %s, want %d", got, len(tc.want))
	}
}

// checkEveryRequestCounted: the simulator's stats counted the parameters, and every request by
// the AccessKey it names.
func checkEveryRequestCounted(t *testing.T, h *harness) {
	t.Helper()
	stats := h.sim.Stats()
	for _, p := range []string{"DisplayName", "Tags", "NumericRangeField", "ShowOwn", "PageSize"} {
		if stats.ByParameter[p] == 0 {
			t.Errorf("stats did not count parameter %s: %v", p, stats.ByParameter)
		}
	}
	var byKey int64
	for _, n := range stats.ByAccessKey {
		byKey += n
	}
	if byKey != stats.Requests || stats.ByAccessKey[""] != 0 {
		t.Errorf("requests by AccessKey %v do not add up to the %d requests, each naming its key", stats.ByAccessKey, stats.Requests)
	}
}

func TestShowOwnDefaultsToTrueLikeTheAPIMetadataSays(t *testing.T) {
	h := newHarness(t)
	body, err := h.raw(t, alice, map[string]string{"PageSize": "100"})
	if err != nil {
		t.Fatal(err)
	}
	if body["TotalCount"].(json.Number).String() != "2" {
		t.Fatalf("without ShowOwn alice saw %v jobs, want her own 2", body["TotalCount"])
	}
}

func TestSortingAndPaging(t *testing.T) {
	h := newHarness(t)
	list := func(sortBy, order string, page, size int32) []string {
		resp, err := h.client(t, adminID).ListJobs(context.Background(), &dlc.ListJobsRequest{
			SortBy: dlc.Ptr(sortBy), Order: dlc.Ptr(order), PageNumber: dlc.Ptr(page), PageSize: dlc.Ptr(size)})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, 0, len(resp.Jobs))
		for _, j := range resp.Jobs {
			out = append(out, j.JobID)
		}
		return out
	}
	if got := list("GmtCreateTime", "desc", 1, 10); !slices.Equal(got, []string{"DLCUPPERID", "dlcj1", "dlcj2", "dlcj3"}) {
		t.Errorf("default order newest first: %v", got)
	}
	if got := list("GmtCreateTime", "asc", 1, 10); !slices.Equal(got, []string{"dlcj3", "dlcj2", "dlcj1", "DLCUPPERID"}) {
		t.Errorf("asc: %v", got)
	}
	if got := list("DisplayName", "asc", 1, 10); !slices.Equal(got, []string{"dlcj2", "DLCUPPERID", "dlcj1", "dlcj3"}) {
		t.Errorf("by DisplayName: %v", got)
	}
	if got := list("Status", "asc", 1, 10); !slices.Equal(got, []string{"dlcj2", "DLCUPPERID", "dlcj1", "dlcj3"}) {
		t.Errorf("by Status: %v", got)
	}
	// Equal JobType: the JobId breaks the tie, in the requested direction.
	if got := list("JobType", "asc", 1, 10); !slices.Equal(got, []string{"dlcj2", "dlcj3", "DLCUPPERID", "dlcj1"}) {
		t.Errorf("by JobType: %v", got)
	}
	if got := list("GmtCreateTime", "desc", 2, 3); !slices.Equal(got, []string{"dlcj3"}) {
		t.Errorf("page 2 of 3: %v", got)
	}
	if got := list("GmtCreateTime", "desc", 3, 3); len(got) != 0 {
		t.Errorf("a page past the end: %v", got)
	}
}

func TestResponsesUseTheReferenceJSONTypes(t *testing.T) {
	h := newHarness(t)
	body, err := h.raw(t, adminID, map[string]string{"JobId": "dlcj1", "ShowOwn": "false"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := body["RequestId"].(string); !ok {
		t.Fatalf("RequestId: %T", body["RequestId"])
	}
	if _, ok := body["TotalCount"].(json.Number); !ok {
		t.Fatalf("TotalCount: %T", body["TotalCount"])
	}
	job := body["Jobs"].([]any)[0].(map[string]any)
	for field, want := range map[string]string{"RequestGPU": "string", "Duration": "number", "RequestCPU": "number", "Priority": "number",
		"UseOversoldResource": "bool", "GmtCreateTime": "string", "JobSpecs": "array", "Settings": "object"} {
		var got string
		switch job[field].(type) {
		case string:
			got = "string"
		case json.Number:
			got = "number"
		case bool:
			got = "bool"
		case []any:
			got = "array"
		case map[string]any:
			got = "object"
		}
		if got != want {
			t.Errorf("%s is a JSON %s, the reference says %s", field, got, want)
		}
	}
	if _, ok := job["Description"]; ok {
		t.Error("Description is not a JobItem field and must not be served")
	}

	empty, err := h.raw(t, adminID, map[string]string{"JobId": "nope", "ShowOwn": "false"})
	if err != nil {
		t.Fatal(err)
	}
	if jobs, ok := empty["Jobs"].([]any); !ok || len(jobs) != 0 {
		t.Fatalf("empty page: Jobs = %#v, want []", empty["Jobs"])
	}
}

func TestInvalidParametersAreRefusedWithTheROAErrorBody(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		param string
		query map[string]string
	}{
		{"PageSize", map[string]string{"PageSize": "0"}},
		{"PageSize", map[string]string{"PageSize": "101"}},
		{"PageSize", map[string]string{"PageSize": "ten"}},
		{"PageNumber", map[string]string{"PageNumber": "0"}},
		{"PageNumber", map[string]string{"PageNumber": "1001"}},
		{"Status", map[string]string{"Status": "Done"}},
		{"Status", map[string]string{"Status": "Running,Failed"}},
		{"JobType", map[string]string{"JobType": "SparkJob"}},
		{"SortBy", map[string]string{"SortBy": "Priority"}},
		{"Order", map[string]string{"Order": "up"}},
		{"StartTime", map[string]string{"StartTime": "yesterday"}},
		{"StartTime", map[string]string{"StartTime": "2025-01-01T00:00:00+08:00"}},
		{"StartTime", map[string]string{"StartTime": "2025-02-01T00:00:00Z", "EndTime": "2025-01-01T00:00:00Z"}},
		{"EndTime", map[string]string{"EndTime": "2025-13-01T00:00:00Z"}},
		{"TimeRangeField", map[string]string{"TimeRangeField": "GmtStartTime"}},
		{"NumericRangeMin", map[string]string{"NumericRangeField": "RequestGPU", "NumericRangeMin": "8", "NumericRangeMax": "2"}},
		{"NumericRangeField", map[string]string{"NumericRangeField": "Memory", "NumericRangeMin": "1"}},
		{"NumericRangeField", map[string]string{"NumericRangeMin": "1"}},
		{"NumericRangeMax", map[string]string{"NumericRangeField": "Priority", "NumericRangeMax": "high"}},
		{"Tags", map[string]string{"Tags": "team=vision"}},
		{"Tags", map[string]string{"Tags": `["vision"]`}},
		{"Tags", map[string]string{"Tags": `{"team":1}`}},
		{"DisplayNameSearchMode", map[string]string{"DisplayName": "x", "DisplayNameSearchMode": "regex"}},
		{"DisplayName", map[string]string{"DisplayName": strings.Repeat("x", 1025)}},
		{"Accessibility", map[string]string{"Accessibility": "public"}},
		{"OversoldInfo", map[string]string{"OversoldInfo": "AcceptQuotaOverSold"}},
		{"PaymentType", map[string]string{"PaymentType": "Free"}},
		{"EnableAssignNode", map[string]string{"EnableAssignNode": "yes"}},
		{"ShowOwn", map[string]string{"ShowOwn": "maybe"}},
		{"FromAllWorkspaces", map[string]string{"FromAllWorkspaces": "true", "ShowOwn": "false"}},
	}
	for _, tc := range cases {
		t.Run(tc.param, func(t *testing.T) {
			_, err := h.raw(t, adminID, tc.query)
			var ce *openapi.ClientError
			if !errors.As(err, &ce) {
				t.Fatalf("%v: got %v, want a client error", tc.query, err)
			}
			if *ce.StatusCode != 400 || *ce.Code != "InvalidParameter" {
				t.Fatalf("%v: HTTP %d code %s", tc.query, *ce.StatusCode, *ce.Code)
			}
			msg, _ := ce.Data["Message"].(string)
			if !strings.Contains(msg, "The parameter "+tc.param+" is invalid") {
				t.Fatalf("message %q does not name %s", msg, tc.param)
			}
			for _, key := range []string{"RequestId", "HostId", "Recommend", "Code", "Message"} {
				if _, ok := ce.Data[key]; !ok {
					t.Fatalf("error body lacks %s: %v", key, ce.Data)
				}
			}
		})
	}
}

// expectAPIError checks that err is the gateway's answer code with HTTP status status, and
// returns it when it is a client error.
func expectAPIError(t *testing.T, err error, code string, status int) *openapi.ClientError { //nolint:unparam // the result is used once
	t.Helper()
	var ce *openapi.ClientError
	var te *openapi.ThrottlingError
	var se *openapi.ServerError
	switch {
	case errors.As(err, &te):
		if *te.Code != code || *te.StatusCode != status {
			t.Fatalf("got %s %d, want %s %d", *te.Code, *te.StatusCode, code, status)
		}
	case errors.As(err, &ce):
		if *ce.Code != code || *ce.StatusCode != status {
			t.Fatalf("got %s %d, want %s %d", *ce.Code, *ce.StatusCode, code, status)
		}
		return ce
	case errors.As(err, &se):
		if *se.Code != code || *se.StatusCode != status {
			t.Fatalf("got %s %d, want %s %d", *se.Code, *se.StatusCode, code, status)
		}
	default:
		t.Fatalf("got %v, want %s", err, code)
	}
	return nil
}

func TestGatewayErrorsUseTheReferenceCodesAndStatuses(t *testing.T) {
	h := newHarness(t)
	t.Run("unknown AccessKey", func(t *testing.T) {
		_, err := h.raw(t, dlcsim.Identity{AccessKeyID: "nobody", AccessKeySecret: "x"}, nil)
		_ = expectAPIError(t, err, "InvalidAccessKeyId.NotFound", 404)
	})
	t.Run("wrong secret", func(t *testing.T) {
		_, err := h.raw(t, dlcsim.Identity{AccessKeyID: "alice-key", AccessKeySecret: "wrong"}, nil)
		_ = expectAPIError(t, err, "SignatureDoesNotMatch", 400)
	})
	t.Run("RAM denial", func(t *testing.T) {
		_, err := h.raw(t, denied, nil)
		ce := expectAPIError(t, err, "Forbidden.RAM", 403)
		if detail, ok := ce.Data["AccessDeniedDetail"].(map[string]any); !ok || detail["AuthAction"] != "paidlc:ListJobs" {
			t.Fatalf("AccessDeniedDetail: %v", ce.Data["AccessDeniedDetail"])
		}
	})
	t.Run("throttling", func(t *testing.T) {
		h.sim.SetFaults(dlcsim.Faults{RateLimitQPS: 0.01, RateLimitBurst: 1})
		t.Cleanup(func() { h.sim.SetFaults(dlcsim.Faults{}) })
		if _, err := h.raw(t, adminID, nil); err != nil {
			t.Fatal(err)
		}
		_, err := h.raw(t, adminID, nil)
		_ = expectAPIError(t, err, "Throttling.User", 400)
		var te *openapi.ThrottlingError
		if errors.As(err, &te) && dara.Int64Value(te.RetryAfter) <= 0 {
			t.Fatalf("throttling answer carries no TimeLeft")
		}
	})
	t.Run("server error", func(t *testing.T) {
		h.sim.SetFaults(dlcsim.Faults{ServerErrorRate: 1})
		t.Cleanup(func() { h.sim.SetFaults(dlcsim.Faults{}) })
		_, err := h.raw(t, adminID, nil)
		_ = expectAPIError(t, err, "ServiceUnavailable", 503)
	})
	t.Run("failing the Nth request", func(t *testing.T) {
		h.sim.SetFaults(dlcsim.Faults{FailRequests: []int{2}, FailCode: "InternalError"})
		t.Cleanup(func() { h.sim.SetFaults(dlcsim.Faults{}) })
		if _, err := h.raw(t, adminID, nil); err != nil {
			t.Fatal(err)
		}
		_, err := h.raw(t, adminID, nil)
		_ = expectAPIError(t, err, "InternalError", 500)
		if _, err := h.raw(t, adminID, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("expired timestamp", func(t *testing.T) {
		skewed := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{adminID}, AuthNow: func() time.Time { return time.Now().Add(time.Hour) }})
		srv := httptest.NewServer(skewed.Handler())
		defer srv.Close()
		_, err := (&harness{url: srv.URL}).raw(t, adminID, nil)
		_ = expectAPIError(t, err, "InvalidTimeStamp.Expired", 400)
	})
	stats := h.sim.Stats()
	if stats.SignaturesRejected < 2 || stats.ByCode["Forbidden.RAM"] != 1 || stats.Throttled != 1 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestLegacyROASigningWorksThroughDarabonba(t *testing.T) {
	h := newHarness(t)
	c, err := dlc.NewClient(dlc.Config{RegionID: "cn-hangzhou", Endpoint: h.url, SignatureAlgorithm: "v2",
		Static: &dlc.StaticCredentials{AccessKeyID: adminID.AccessKeyID, AccessKeySecret: adminID.AccessKeySecret}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.ListJobs(context.Background(), &dlc.ListJobsRequest{Tags: map[string]string{"team": "vision"}, DisplayName: dlc.Ptr("tf mnist*")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.TotalCount != 0 {
		t.Fatalf("TotalCount %d", resp.TotalCount)
	}
}

func TestEveryReferenceErrorCodeCanBeInjected(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		code   string
		status int
	}{
		{"Throttling.User", 400}, {"Throttling.Api", 400}, {"Throttling", 400},
		{"ServiceUnavailable", 503}, {"ServiceUnavailableTemporary", 503}, {"InternalError", 500}, {"InternalFailure", 500},
		{"InvalidParameter", 400}, {"MissingParameter", 400}, {"InvalidAccessKeyId.NotFound", 404}, {"InvalidAccessKeyId.Inactive", 400},
		{"SignatureDoesNotMatch", 400}, {"IncompleteSignature", 400}, {"InvalidTimeStamp.Expired", 400}, {"SignatureNonceUsed", 400},
		{"InvalidSecurityToken.Expired", 400}, {"InvalidSecurityToken.MismatchWithAccessKey", 400},
		{"Forbidden.RAM", 403}, {"NoPermission", 403}, {"Forbidden", 403},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			h.sim.SetFaults(dlcsim.Faults{FailRequests: []int{1}, FailCode: tc.code})
			t.Cleanup(func() { h.sim.SetFaults(dlcsim.Faults{}) })
			_, err := h.raw(t, adminID, nil)
			var code string
			var status int
			var ce *openapi.ClientError
			var se *openapi.ServerError
			var te *openapi.ThrottlingError
			switch {
			case errors.As(err, &te):
				code, status = *te.Code, *te.StatusCode
			case errors.As(err, &ce):
				code, status = *ce.Code, *ce.StatusCode
			case errors.As(err, &se):
				code, status = *se.Code, *se.StatusCode
			default:
				t.Fatalf("got %v", err)
			}
			if code != tc.code || status != tc.status {
				t.Fatalf("got %s %d, want %s %d", code, status, tc.code, tc.status)
			}
		})
	}
}
