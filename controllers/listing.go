package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
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

// credentialsError is a credentials problem the user must fix; it carries the condition reason.
type credentialsError struct {
	reason string
	msg    string
}

func (e *credentialsError) Error() string { return e.msg }

// resolveCredentials reads the credentials of a JobQuery. It returns the static credentials (nil
// for the ambient chain) and a version that changes when the Secret does.
func (r *JobQueryReconciler) resolveCredentials(ctx context.Context, q *dlcv1alpha1.JobQuery) (*dlc.StaticCredentials, string, error) {
	creds := q.Spec.Credentials
	if creds.Ambient != nil {
		if !r.AmbientNamespaces[q.Namespace] {
			return nil, "", &credentialsError{reason: dlcv1alpha1.ReasonAmbientCredentialsNotAllowed,
				msg: fmt.Sprintf("ambient credentials are not allowed in namespace %s; use credentials.secretRef or ask the "+
					"operator's administrator to add the namespace to --ambient-credentials-namespaces", q.Namespace)}
		}
		return nil, "ambient", nil
	}
	if creds.SecretRef == nil {
		return nil, "", &credentialsError{reason: dlcv1alpha1.ReasonInvalidSecret, msg: "credentials name neither a Secret nor ambient"}
	}
	ref := creds.SecretRef
	var secret corev1.Secret
	// Note: the Secret is read uncached and only from the JobQuery's own namespace: the
	// manager never caches Secret data, and a JobQuery cannot name another namespace.
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: q.Namespace, Name: ref.Name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", &credentialsError{reason: dlcv1alpha1.ReasonSecretNotFound,
				msg: fmt.Sprintf("Secret %s/%s not found", q.Namespace, ref.Name)}
		}
		return nil, "", fmt.Errorf("reading Secret %s/%s: %w", q.Namespace, ref.Name, err)
	}
	keyOr := func(key, def string) string {
		if key == "" {
			return def
		}
		return key
	}
	idKey, secretKey, tokenKey := keyOr(ref.AccessKeyIDKey, "accessKeyId"), keyOr(ref.AccessKeySecretKey, "accessKeySecret"),
		keyOr(ref.SecurityTokenKey, "securityToken")
	static := &dlc.StaticCredentials{
		AccessKeyID:     string(secret.Data[idKey]),
		AccessKeySecret: string(secret.Data[secretKey]),
		SecurityToken:   string(secret.Data[tokenKey]),
	}
	var missing []string
	if static.AccessKeyID == "" {
		missing = append(missing, idKey)
	}
	if static.AccessKeySecret == "" {
		missing = append(missing, secretKey)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, "", &credentialsError{reason: dlcv1alpha1.ReasonInvalidSecret,
			msg: fmt.Sprintf("Secret %s/%s has no value for key(s) %v", q.Namespace, ref.Name, missing)}
	}
	return static, secret.ResourceVersion, nil
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

// reasonSnapshotConflict: another writer changed snapshots during the sync.
const reasonSnapshotConflict = "SnapshotConflict"

// listingReason maps a listing failure to a condition reason and says whether retrying without
// a change can help.
func listingReason(err error) (reason string, retryable bool) {
	var credErr *credentialsError
	var inconsistent *inconsistentError
	var conflict *conflictError
	switch {
	case errors.As(err, &credErr):
		return credErr.reason, false
	case errors.As(err, &inconsistent):
		return dlcv1alpha1.ReasonInconsistentListing, true
	case errors.As(err, &conflict):
		return reasonSnapshotConflict, true
	}
	switch dlc.KindOf(err) {
	case dlc.KindThrottled:
		return dlcv1alpha1.ReasonThrottled, true
	case dlc.KindServer, dlc.KindBadResponse:
		return dlcv1alpha1.ReasonServerError, true
	case dlc.KindNetwork, dlc.KindCanceled:
		return dlcv1alpha1.ReasonEndpointUnreachable, true
	case dlc.KindUnauthorized:
		var e *dlc.Error
		if errors.As(err, &e) && e.Retryable() {
			return dlcv1alpha1.ReasonUnauthorized, true
		}
		return dlcv1alpha1.ReasonUnauthorized, false
	case dlc.KindForbidden:
		return dlcv1alpha1.ReasonForbidden, false
	case dlc.KindInvalidRequest:
		return dlcv1alpha1.ReasonInvalidFilter, false
	case dlc.KindCircuitOpen:
		return dlcv1alpha1.ReasonCircuitOpen, true
	}
	return dlcv1alpha1.ReasonServerError, true
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
