package controllers

import (
	"time"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// ListerFactory builds the PAI-DLC lister of a JobQuery: dlc.Pool in the manager, a fake or a
// counting wrapper in unit tests.
type ListerFactory interface {
	Lister(cfg dlc.Config) (dlc.Lister, error)
}

// BuildRequest turns a JobQuery spec into the ListJobs request a sync sends, and the relative
// window (timeRange.within, or the default) that the pager pins when a walk starts. It is
// exported so that `kubectl dlcsync preview` lists exactly what the controller would.
func BuildRequest(spec *dlcv1alpha1.JobQuerySpec) (*dlc.ListJobsRequest, time.Duration) {
	return buildRequest(spec)
}

// buildRequest is BuildRequest. Note: the controller keeps calling the unexported name so that
// exporting it for the plugin touched no call site.
func buildRequest(spec *dlcv1alpha1.JobQuerySpec) (*dlc.ListJobsRequest, time.Duration) {
	f := spec.Filter
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return dlc.Ptr(s)
	}
	req := &dlc.ListJobsRequest{
		DisplayName:           opt(f.DisplayName),
		DisplayNameSearchMode: opt(f.DisplayNameSearchMode),
		Description:           opt(f.Description),
		JobType:               opt(f.JobType),
		Status:                opt(f.Status),
		SortBy:                opt(spec.SortBy),
		Order:                 opt(spec.Order),
		ShowOwn:               f.ShowOwn,
		FromAllWorkspaces:     f.FromAllWorkspaces,
		WorkspaceID:           opt(f.WorkspaceID),
		ResourceID:            opt(f.ResourceID),
		ResourceIDs:           f.ResourceIDs,
		ResourceQuotaName:     opt(f.ResourceQuotaName),
		BusinessUserID:        opt(f.BusinessUserID),
		Caller:                opt(f.Caller),
		PipelineID:            opt(f.PipelineID),
		JobID:                 opt(f.JobID),
		JobIDs:                f.JobIDs,
		UserIDForFilter:       opt(f.UserIDForFilter),
		Username:              opt(f.Username),
		Accessibility:         opt(f.Accessibility),
		OversoldInfo:          opt(f.OversoldInfo),
		PaymentType:           opt(f.PaymentType),
		ReasonSearch:          opt(f.ReasonSearch),
		UserCommandSearch:     opt(f.UserCommandSearch),
		ImageSearch:           opt(f.ImageSearch),
		EnableAssignNode:      f.EnableAssignNode,
		TemplateID:            opt(f.TemplateID),
	}
	if len(f.Tags) > 0 {
		req.Tags = f.Tags
	}
	if req.ShowOwn == nil {
		// Note: the API requires ShowOwn=true with FromAllWorkspaces (and its metadata defaults
		// ShowOwn to true), so a query that sets only fromAllWorkspaces means its own jobs.
		req.ShowOwn = dlc.Ptr(f.FromAllWorkspaces != nil && *f.FromAllWorkspaces)
	}
	if nr := f.NumericRange; nr != nil {
		req.NumericRangeField, req.NumericRangeMin, req.NumericRangeMax = dlc.Ptr(nr.Field), nr.Min, nr.Max
	}
	within := dlc.DefaultWindow
	if tr := f.TimeRange; tr != nil {
		req.TimeRangeField = opt(tr.Field)
		if tr.Start != nil {
			req.StartTime = dlc.Ptr(dlc.FormatTime(tr.Start.Time))
		}
		if tr.End != nil {
			req.EndTime = dlc.Ptr(dlc.FormatTime(tr.End.Time))
		}
		if tr.Within != nil {
			within = tr.Within.Duration
		}
	}
	return req, within
}
