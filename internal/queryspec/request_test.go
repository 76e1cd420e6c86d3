package queryspec

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

func TestBuildRequestSendsEveryFilterField(t *testing.T) {
	start := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	end := metav1.NewTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	spec := &dlcv1alpha1.JobQuerySpec{
		SortBy: "DisplayName", Order: "asc",
		Filter: dlcv1alpha1.JobFilter{
			DisplayName: "mnist", DisplayNameSearchMode: "prefix", Description: "d", JobType: "PyTorchJob", Status: "Running",
			WorkspaceID: "268", FromAllWorkspaces: dlc.Ptr(true), ShowOwn: dlc.Ptr(true), ResourceID: "r1",
			ResourceIDs: []string{"r1", "r2"}, BusinessUserID: "b", Caller: "local", Tags: map[string]string{"team": "a"},
			PipelineID: "flow-1", JobID: "dlc1", JobIDs: []string{"dlc1", "dlc2"}, UserIDForFilter: "u", Username: "alice",
			ResourceQuotaName: "q", Accessibility: "PUBLIC", OversoldInfo: "ForceQuotaOverSold", PaymentType: "Spot",
			ReasonSearch: "OOM", UserCommandSearch: "train", ImageSearch: "pytorch", EnableAssignNode: dlc.Ptr(false),
			TemplateID: "tml1", NumericRange: &dlcv1alpha1.NumericRange{Field: "RequestGPU", Min: dlc.Ptr(int64(1)), Max: dlc.Ptr(int64(8))},
			TimeRange: &dlcv1alpha1.TimeRange{Field: "GmtFinishTime", Start: &start, End: &end},
		},
	}
	req, _ := Request(spec)
	got := url.Values{}
	for k, v := range req.Query() {
		got.Set(k, *v)
	}
	want := "Accessibility=PUBLIC&BusinessUserId=b&Caller=local&Description=d&DisplayName=mnist&DisplayNameSearchMode=prefix" +
		"&EnableAssignNode=false&EndTime=2026-02-01T00%3A00%3A00Z&FromAllWorkspaces=true&ImageSearch=pytorch&JobId=dlc1" +
		"&JobIds=dlc1%2Cdlc2&JobType=PyTorchJob&NumericRangeField=RequestGPU&NumericRangeMax=8&NumericRangeMin=1" +
		"&Order=asc&OversoldInfo=ForceQuotaOverSold&PaymentType=Spot&PipelineId=flow-1&ReasonSearch=OOM&ResourceId=r1" +
		"&ResourceIds=r1%2Cr2&ResourceQuotaName=q&ShowOwn=true&SortBy=DisplayName&StartTime=2026-01-01T00%3A00%3A00Z" +
		"&Status=Running&Tags=%7B%22team%22%3A%22a%22%7D&TemplateId=tml1&TimeRangeField=GmtFinishTime&UserCommandSearch=train" +
		"&UserIdForFilter=u&Username=alice&WorkspaceId=268"
	if got.Encode() != want {
		t.Fatalf("query\n got %s\nwant %s", got.Encode(), want)
	}

	minimal, within := Request(&dlcv1alpha1.JobQuerySpec{Filter: dlcv1alpha1.JobFilter{
		TimeRange: &dlcv1alpha1.TimeRange{Within: &metav1.Duration{Duration: 48 * time.Hour}}}})
	if within != 48*time.Hour || *minimal.ShowOwn || minimal.StartTime != nil {
		t.Fatalf("minimal request: within %v, %+v", within, minimal)
	}
}

// TestFromAllWorkspacesAloneSendsShowOwn: the API requires ShowOwn=true with FromAllWorkspaces
// (dlcsim refuses the request otherwise), so a filter that sets only fromAllWorkspaces lists the
// caller's own jobs instead of failing every sync.
func TestFromAllWorkspacesAloneSendsShowOwn(t *testing.T) {
	for _, c := range []struct {
		all, own *bool
		want     bool
	}{
		{all: dlc.Ptr(true), want: true},
		{all: dlc.Ptr(true), own: dlc.Ptr(true), want: true},
		{all: dlc.Ptr(false), want: false},
		{want: false},
		{own: dlc.Ptr(true), want: true},
	} {
		req, _ := Request(&dlcv1alpha1.JobQuerySpec{Filter: dlcv1alpha1.JobFilter{FromAllWorkspaces: c.all, ShowOwn: c.own}})
		if req.ShowOwn == nil || *req.ShowOwn != c.want {
			t.Errorf("fromAllWorkspaces %v showOwn %v: ShowOwn %v, want %v", ptrString(c.all), ptrString(c.own), ptrString(req.ShowOwn), c.want)
		}
	}
}

func ptrString(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}
