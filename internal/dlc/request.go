// Package dlc is the PAI-DLC ListJobs client of dlcsync: typed request and response, signing and
// transport through darabonba-openapi, credentials through credentials-go, classified errors,
// retries, a per-credential rate limiter and circuit breaker, and a pager that never loses a job.
// It is the only package that imports the Alibaba Cloud libraries.
package dlc

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// API constants of ListJobs (PAI-DLC 2020-12-03, ROA style).
const (
	APIVersion  = "2020-12-03"
	APIAction   = "ListJobs"
	APIPathname = "/api/v1/jobs"

	// MaxPageSize is the largest PageSize the API accepts (Alibaba API metadata: 1..100).
	MaxPageSize = 100
	// MaxPageNumber is the largest PageNumber the API accepts (metadata: 1..1000).
	MaxPageNumber = 1000
	// DefaultWindow is the window the API applies when neither StartTime nor EndTime is sent.
	DefaultWindow = 7 * 24 * time.Hour
	// TimeLayout is the layout of every time the API sends and accepts (UTC, seconds).
	TimeLayout = "2006-01-02T15:04:05Z"
)

// ListJobsRequest holds every ListJobs parameter of the API reference. A nil field is not sent; a
// field set to an empty string is sent as `Key=`, as the official SDK does.
type ListJobsRequest struct {
	DisplayName           *string
	DisplayNameSearchMode *string
	Description           *string
	JobType               *string
	Status                *string
	StartTime             *string
	EndTime               *string
	TimeRangeField        *string
	PageNumber            *int32
	PageSize              *int32
	SortBy                *string
	Order                 *string
	ShowOwn               *bool
	FromAllWorkspaces     *bool
	WorkspaceID           *string
	ResourceID            *string
	// ResourceIDs is sent as one comma-joined ResourceIds value.
	ResourceIDs       []string
	ResourceQuotaName *string
	BusinessUserID    *string
	Caller            *string
	// Tags is sent as one Tags value holding compact JSON with sorted keys.
	Tags       map[string]string
	PipelineID *string
	JobID      *string
	// JobIDs is sent as one comma-joined JobIds value.
	JobIDs            []string
	UserIDForFilter   *string
	Username          *string
	Accessibility     *string
	OversoldInfo      *string
	PaymentType       *string
	ReasonSearch      *string
	UserCommandSearch *string
	ImageSearch       *string
	NumericRangeField *string
	NumericRangeMin   *int64
	NumericRangeMax   *int64
	// EnableAssignNode is a string in the API ("true"/"false"); a bool here, encoded as such.
	EnableAssignNode *bool
	TemplateID       *string
}

// Query encodes the request as the query parameters the official SDK sends: only set parameters,
// booleans as true/false, integers in decimal, Tags as compact JSON, ID lists comma-joined.
func (r *ListJobsRequest) Query() map[string]*string {
	q := map[string]*string{}
	str := func(key string, v *string) {
		if v != nil {
			s := *v
			q[key] = &s
		}
	}
	boolean := func(key string, v *bool) {
		if v != nil {
			s := strconv.FormatBool(*v)
			q[key] = &s
		}
	}
	list := func(key string, v []string) {
		if v != nil {
			s := strings.Join(v, ",")
			q[key] = &s
		}
	}
	str("DisplayName", r.DisplayName)
	str("DisplayNameSearchMode", r.DisplayNameSearchMode)
	str("Description", r.Description)
	str("JobType", r.JobType)
	str("Status", r.Status)
	str("StartTime", r.StartTime)
	str("EndTime", r.EndTime)
	str("TimeRangeField", r.TimeRangeField)
	if r.PageNumber != nil {
		s := strconv.FormatInt(int64(*r.PageNumber), 10)
		q["PageNumber"] = &s
	}
	if r.PageSize != nil {
		s := strconv.FormatInt(int64(*r.PageSize), 10)
		q["PageSize"] = &s
	}
	str("SortBy", r.SortBy)
	str("Order", r.Order)
	boolean("ShowOwn", r.ShowOwn)
	boolean("FromAllWorkspaces", r.FromAllWorkspaces)
	str("WorkspaceId", r.WorkspaceID)
	str("ResourceId", r.ResourceID)
	list("ResourceIds", r.ResourceIDs)
	str("ResourceQuotaName", r.ResourceQuotaName)
	str("BusinessUserId", r.BusinessUserID)
	str("Caller", r.Caller)
	if r.Tags != nil {
		s := compactJSON(r.Tags)
		q["Tags"] = &s
	}
	str("PipelineId", r.PipelineID)
	str("JobId", r.JobID)
	list("JobIds", r.JobIDs)
	str("UserIdForFilter", r.UserIDForFilter)
	str("Username", r.Username)
	str("Accessibility", r.Accessibility)
	str("OversoldInfo", r.OversoldInfo)
	str("PaymentType", r.PaymentType)
	str("ReasonSearch", r.ReasonSearch)
	str("UserCommandSearch", r.UserCommandSearch)
	str("ImageSearch", r.ImageSearch)
	str("NumericRangeField", r.NumericRangeField)
	if r.NumericRangeMin != nil {
		s := strconv.FormatInt(*r.NumericRangeMin, 10)
		q["NumericRangeMin"] = &s
	}
	if r.NumericRangeMax != nil {
		s := strconv.FormatInt(*r.NumericRangeMax, 10)
		q["NumericRangeMax"] = &s
	}
	boolean("EnableAssignNode", r.EnableAssignNode)
	str("TemplateId", r.TemplateID)
	return q
}

// compactJSON writes a string map the way the SDK does: sorted keys, no spaces, HTML characters
// not escaped.
func compactJSON(m map[string]string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// A map[string]string always encodes.
	_ = enc.Encode(m)
	return strings.TrimSuffix(buf.String(), "\n")
}

// Clone returns a deep copy, so the pager can set paging fields without touching the caller's
// request.
func (r *ListJobsRequest) Clone() *ListJobsRequest {
	c := *r
	if r.Tags != nil {
		c.Tags = make(map[string]string, len(r.Tags))
		for k, v := range r.Tags {
			c.Tags[k] = v
		}
	}
	if r.JobIDs != nil {
		c.JobIDs = append([]string(nil), r.JobIDs...)
	}
	if r.ResourceIDs != nil {
		c.ResourceIDs = append([]string(nil), r.ResourceIDs...)
	}
	return &c
}

// FormatTime formats t in the API's time layout (UTC, seconds).
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Ptr returns a pointer to v, for building requests.
func Ptr[T any](v T) *T { return &v }

// ListJobsResponse is the body of a ListJobs answer, plus what the client measured.
type ListJobsResponse struct {
	// Jobs are the jobs of this page. An absent Jobs field decodes as none.
	Jobs []JobItem `json:"Jobs"`
	// TotalCount is the number of jobs matching the filter on all pages.
	TotalCount int64 `json:"TotalCount"`
	// HasTotalCount is true when the body carried a TotalCount (null counts as absent): the
	// pager never trusts a listing whose pages do not say how many jobs match.
	HasTotalCount bool `json:"-"`
	// RequestID identifies the request for Alibaba Cloud support.
	RequestID string `json:"RequestId"`

	// Call describes the HTTP exchange(s) behind this response; it is not part of the body.
	Call CallStats `json:"-"`

	// raw holds the JSON of each of Jobs as the body carried it, for a walk that packs its
	// jobs (PageOptions.Pack).
	raw [][]byte
}

// SetJobsJSON records the JSON each of Jobs was decoded from, one per job, as the Client's
// decoder does: a walk that packs (PageOptions.Pack) holds each job as its JSON, compressed.
// A Lister that sets none has its jobs held decoded.
func (r *ListJobsResponse) SetJobsJSON(raw [][]byte) { r.raw = raw }

// CallStats counts what one ListJobs call cost.
type CallStats struct {
	// Attempts is the number of HTTP requests sent (1 + retries).
	Attempts int
	// Throttled is the number of throttling answers received.
	Throttled int
	// Bytes is the number of response body bytes read.
	Bytes int64
}

// Job statuses of the API (JobItem.Status and the Status parameter).
const (
	StatusCreating           = "Creating"
	StatusQueuing            = "Queuing"
	StatusBidding            = "Bidding"
	StatusEnvPreparing       = "EnvPreparing"
	StatusSanityChecking     = "SanityChecking"
	StatusRunning            = "Running"
	StatusRestarting         = "Restarting"
	StatusStopping           = "Stopping"
	StatusSucceededReserving = "SucceededReserving"
	StatusFailedReserving    = "FailedReserving"
	StatusSucceeded          = "Succeeded"
	StatusFailed             = "Failed"
	StatusStopped            = "Stopped"
)

// Accessibility values.
const (
	AccessibilityPublic  = "PUBLIC"
	AccessibilityPrivate = "PRIVATE"
)

// SortByCreateTime is the default sort field, and the default TimeRangeField.
const SortByCreateTime = "GmtCreateTime"

// The other ListJobs sort fields (SortBy).
const (
	SortByDisplayName = "DisplayName"
	SortByJobType     = "JobType"
	SortByStatus      = "Status"
	SortByFinishTime  = "GmtFinishTime"
)
