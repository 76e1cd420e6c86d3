package controllers

import (
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// ListerFactory builds the PAI-DLC lister of a JobQuery. Tests point it at the simulator; the
// manager uses CachedListers.
type ListerFactory interface {
	Lister(cfg dlc.Config) (dlc.Lister, error)
}

// CachedListers builds one dlc.Client per (endpoint, region, credential) and reuses it, so that
// connections stay pooled across syncs. Clients share the per-credential rate limiter and
// circuit breaker of Governors.
type CachedListers struct {
	Governors *dlc.Governors
	// Retry is the retry policy of every client (zero: the client's defaults).
	Retry dlc.RetryPolicy
	// Observer is told of every API response (metrics).
	Observer func(code string)

	mu      sync.Mutex
	clients map[string]*dlc.Client
}

// Lister returns the cached client for cfg, creating it on first use.
func (f *CachedListers) Lister(cfg dlc.Config) (dlc.Lister, error) {
	key := cfg.RegionID + "|" + cfg.Endpoint + "|" + cfg.SignatureAlgorithm + "|" + dlc.CredentialKey(cfg.Static)
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.clients[key]; ok {
		return c, nil
	}
	cfg.Governors, cfg.Retry, cfg.Observer = f.Governors, f.Retry, f.Observer
	c, err := dlc.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if f.clients == nil {
		f.clients = map[string]*dlc.Client{}
	}
	// Note: a rotated secret makes a new key; the old client is dropped with the map entry of its
	// key only when the process restarts, which bounds the leak by the number of rotations.
	f.clients[key] = c
	return c, nil
}

// buildRequest turns the spec's filter into a ListJobs request. A relative window is made
// absolute by the pager when the walk starts.
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
		req.ShowOwn = dlc.Ptr(false)
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

// secretIndexKey indexes JobQueries by the Secret they read, so a Secret change finds them.
const secretIndexKey = ".spec.credentials.secretRef.name"

func secretNameOf(obj client.Object) []string {
	q, ok := obj.(*dlcv1alpha1.JobQuery)
	if !ok || q.Spec.Credentials.SecretRef == nil {
		return nil
	}
	return []string{q.Spec.Credentials.SecretRef.Name}
}
