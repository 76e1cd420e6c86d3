package dlc

import (
	"net/url"
	"testing"
)

// wire encodes a request's query as darabonba puts it on the wire (url.Values.Encode).
func wire(r *ListJobsRequest) string {
	v := url.Values{}
	for k, p := range r.Query() {
		v.Set(k, *p)
	}
	return v.Encode()
}

func TestQueryEncodesEveryParameterAsTheSDKDoes(t *testing.T) {
	cases := []struct {
		name string
		req  ListJobsRequest
		want string
	}{
		{"DisplayName", ListJobsRequest{DisplayName: Ptr("tf mnist*~")}, "DisplayName=tf+mnist%2A~"},
		{"DisplayNameSearchMode", ListJobsRequest{DisplayNameSearchMode: Ptr("prefix")}, "DisplayNameSearchMode=prefix"},
		{"Description", ListJobsRequest{Description: Ptr("nightly run")}, "Description=nightly+run"},
		{"JobType", ListJobsRequest{JobType: Ptr("PyTorchJob")}, "JobType=PyTorchJob"},
		{"Status", ListJobsRequest{Status: Ptr("Running")}, "Status=Running"},
		{"StartTime", ListJobsRequest{StartTime: Ptr("2025-04-16T07:25:34Z")}, "StartTime=2025-04-16T07%3A25%3A34Z"},
		{"EndTime", ListJobsRequest{EndTime: Ptr("2025-04-17T00:00:00Z")}, "EndTime=2025-04-17T00%3A00%3A00Z"},
		{"TimeRangeField", ListJobsRequest{TimeRangeField: Ptr("GmtFinishTime")}, "TimeRangeField=GmtFinishTime"},
		{"PageNumber", ListJobsRequest{PageNumber: Ptr(int32(1))}, "PageNumber=1"},
		{"PageSize", ListJobsRequest{PageSize: Ptr(int32(50))}, "PageSize=50"},
		{"SortBy", ListJobsRequest{SortBy: Ptr("GmtCreateTime")}, "SortBy=GmtCreateTime"},
		{"Order", ListJobsRequest{Order: Ptr("asc")}, "Order=asc"},
		{"ShowOwn", ListJobsRequest{ShowOwn: Ptr(true)}, "ShowOwn=true"},
		{"FromAllWorkspaces", ListJobsRequest{FromAllWorkspaces: Ptr(false)}, "FromAllWorkspaces=false"},
		{"WorkspaceId", ListJobsRequest{WorkspaceID: Ptr("12345")}, "WorkspaceId=12345"},
		{"ResourceId", ListJobsRequest{ResourceID: Ptr("r1")}, "ResourceId=r1"},
		{"ResourceIds", ListJobsRequest{ResourceIDs: []string{"r1", "r2"}}, "ResourceIds=r1%2Cr2"},
		{"ResourceQuotaName", ListJobsRequest{ResourceQuotaName: Ptr("quota")}, "ResourceQuotaName=quota"},
		{"BusinessUserId", ListJobsRequest{BusinessUserID: Ptr("b1")}, "BusinessUserId=b1"},
		{"Caller", ListJobsRequest{Caller: Ptr("local")}, "Caller=local"},
		{"Tags", ListJobsRequest{Tags: map[string]string{"team": "a b", "env": "prod"}},
			"Tags=%7B%22env%22%3A%22prod%22%2C%22team%22%3A%22a+b%22%7D"},
		{"Tags keeps HTML characters", ListJobsRequest{Tags: map[string]string{"k": "<&>"}}, "Tags=%7B%22k%22%3A%22%3C%26%3E%22%7D"},
		{"empty Tags", ListJobsRequest{Tags: map[string]string{}}, "Tags=%7B%7D"},
		{"PipelineId", ListJobsRequest{PipelineID: Ptr("flow-1")}, "PipelineId=flow-1"},
		{"JobId", ListJobsRequest{JobID: Ptr("dlc1")}, "JobId=dlc1"},
		{"JobIds", ListJobsRequest{JobIDs: []string{"dlc1", "dlc2"}}, "JobIds=dlc1%2Cdlc2"},
		{"UserIdForFilter", ListJobsRequest{UserIDForFilter: Ptr("123")}, "UserIdForFilter=123"},
		{"Username", ListJobsRequest{Username: Ptr("alice")}, "Username=alice"},
		{"Accessibility", ListJobsRequest{Accessibility: Ptr("PUBLIC")}, "Accessibility=PUBLIC"},
		{"OversoldInfo", ListJobsRequest{OversoldInfo: Ptr("AcceptQuotaOverSold-true")}, "OversoldInfo=AcceptQuotaOverSold-true"},
		{"PaymentType", ListJobsRequest{PaymentType: Ptr("Spot")}, "PaymentType=Spot"},
		{"ReasonSearch", ListJobsRequest{ReasonSearch: Ptr("OOM")}, "ReasonSearch=OOM"},
		{"UserCommandSearch", ListJobsRequest{UserCommandSearch: Ptr("python train.py")}, "UserCommandSearch=python+train.py"},
		{"ImageSearch", ListJobsRequest{ImageSearch: Ptr("pytorch")}, "ImageSearch=pytorch"},
		{"NumericRangeField", ListJobsRequest{NumericRangeField: Ptr("RequestGPU")}, "NumericRangeField=RequestGPU"},
		{"NumericRangeMin", ListJobsRequest{NumericRangeMin: Ptr(int64(4))}, "NumericRangeMin=4"},
		{"NumericRangeMax", ListJobsRequest{NumericRangeMax: Ptr(int64(-1))}, "NumericRangeMax=-1"},
		{"EnableAssignNode is a string true/false", ListJobsRequest{EnableAssignNode: Ptr(true)}, "EnableAssignNode=true"},
		{"TemplateId", ListJobsRequest{TemplateID: Ptr("tmlabc123")}, "TemplateId=tmlabc123"},
		{"an empty string is sent as Key=", ListJobsRequest{Caller: Ptr("")}, "Caller="},
		{"unset parameters are not sent", ListJobsRequest{}, ""},
		{"the reference's measured example", ListJobsRequest{
			DisplayName: Ptr("tf mnist*~"), FromAllWorkspaces: Ptr(false), JobIDs: []string{"dlc1", "dlc2"},
			NumericRangeMin: Ptr(int64(4)), PageNumber: Ptr(int32(1)), PageSize: Ptr(int32(50)), ShowOwn: Ptr(true),
			StartTime: Ptr("2025-04-16T07:25:34Z"), Tags: map[string]string{"env": "prod", "team": "a b"},
		}, "DisplayName=tf+mnist%2A~&FromAllWorkspaces=false&JobIds=dlc1%2Cdlc2&NumericRangeMin=4&PageNumber=1&PageSize=50" +
			"&ShowOwn=true&StartTime=2025-04-16T07%3A25%3A34Z&Tags=%7B%22env%22%3A%22prod%22%2C%22team%22%3A%22a+b%22%7D"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := wire(&tc.req); got != tc.want {
				t.Errorf("query\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

func TestCloneDoesNotShareMapsOrSlices(t *testing.T) {
	orig := &ListJobsRequest{Tags: map[string]string{"a": "b"}, JobIDs: []string{"x"}, ResourceIDs: []string{"r"}}
	c := orig.Clone()
	c.Tags["a"], c.JobIDs[0], c.ResourceIDs[0] = "changed", "changed", "changed"
	if orig.Tags["a"] != "b" || orig.JobIDs[0] != "x" || orig.ResourceIDs[0] != "r" {
		t.Fatalf("Clone shares state with the original: %+v", orig)
	}
}

func TestResolveEndpoint(t *testing.T) {
	cases := []struct {
		region, endpoint, host, protocol string
		wantErr                          bool
	}{
		{"cn-hangzhou", "", "pai-dlc.cn-hangzhou.aliyuncs.com", "https", false},
		{"ap-southeast-1", "", "pai-dlc.ap-southeast-1.aliyuncs.com", "https", false},
		{"cn-qingdao", "", "pai-dlc.aliyuncs.com", "https", false},
		{"cn-hangzhou", "http://127.0.0.1:8080", "127.0.0.1:8080", "http", false},
		{"cn-hangzhou", "https://dlc.example.com/", "dlc.example.com", "https", false},
		{"cn-hangzhou", "ftp://x", "", "", true},
		{"cn-hangzhou", "http://host/path", "", "", true},
		{"", "", "", "", true},
	}
	for _, tc := range cases {
		host, protocol, err := ResolveEndpoint(tc.region, tc.endpoint)
		if (err != nil) != tc.wantErr || host != tc.host || protocol != tc.protocol {
			t.Errorf("ResolveEndpoint(%q, %q) = %q, %q, %v", tc.region, tc.endpoint, host, protocol, err)
		}
	}
}
