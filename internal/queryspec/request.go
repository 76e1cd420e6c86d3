// Package queryspec turns a JobQuery's spec into what a sync asks PAI-DLC: the ListJobs request, its
// window, and the defaults the spec leaves to the manager. It is a leaf (the API types and
// internal/dlc only), so that `kubectl dlcsync preview` lists exactly what the controller would
// without linking the controller and controller-runtime's manager.
package queryspec

import (
	"time"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// DefaultFullResyncInterval applies when spec.fullResyncInterval is unset; with a longer
// interval every sync is then a full one.
const DefaultFullResyncInterval = time.Hour

// Request turns a JobQuery spec into the ListJobs request a sync sends, and the relative window
// (timeRange.within, or the default) that the pager pins when a walk starts.
func Request(spec *dlcv1alpha1.JobQuerySpec) (*dlc.ListJobsRequest, time.Duration) {
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
		// The API requires ShowOwn=true with FromAllWorkspaces (and its metadata defaults
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
