package dlcsim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// listQuery is a validated ListJobs request.
type listQuery struct {
	displayName       string // lowercased
	displayNameRaw    string
	displayNameMode   string
	description       string // lowercased
	jobType           string
	status            string
	timeField         string
	start, end        int64 // unix seconds, inclusive
	pageNumber        int
	pageSize          int
	sortBy            string
	desc              bool
	showOwn           bool
	fromAllWorkspaces bool
	workspaceID       string
	resourceID        string
	resourceIDs       []string
	quotaName         string // lowercased
	businessUserID    string
	caller            string
	tags              map[string]string
	pipelineID        string
	jobIDs            []string // lowercased; JobId wins over JobIds
	userID            string
	username          string // lowercased
	accessibility     string
	oversoldInfo      string
	paymentType       string
	reasonTokens      []string
	commandTokens     []string
	imageTokens       []string
	numericField      string
	numericMin        *int64
	numericMax        *int64
	enableAssignNode  string
	templateID        string

	// Precomputed forms of the above for the scan.
	timeIndex, numericIndex int
	// liveNow, when not 0, is the unix time Faults.LiveDuration computes running jobs' Duration at.
	liveNow                 int64
	statusCode, jobTypeCode uint8

	// params lists the parameter names present, for statistics.
	params []string
}

// paramError is an invalid request parameter; it becomes an HTTP 400 InvalidParameter answer.
type paramError struct {
	param, reason string
}

func (e *paramError) Error() string {
	return fmt.Sprintf("The parameter %s is invalid: %s", e.param, e.reason)
}

var (
	knownStatuses = set(statusCodes[1:]...)
	knownJobTypes = set("TFJob", "PyTorchJob", "XGBoostJob", "OneFlowJob", "ElasticBatchJob", "MPIJob",
		"RayJob", "SlurmJob")
	knownSearchModes   = set("prefix", "fulltext", "term", "wildcard")
	knownSortFields    = set("DisplayName", "JobType", "Status", dlc.SortByCreateTime, "GmtFinishTime")
	knownTimeFields    = set(dlc.SortByCreateTime, "GmtSubmittedTime", "GmtRunningTime", "GmtFinishTime", "GmtModifiedTime")
	knownNumericFields = set("RequestGPU", "RequestCPU", "Priority", "Duration")
	knownAccessibility = set(dlc.AccessibilityPublic, dlc.AccessibilityPrivate)
	knownOversoldInfo  = set("ForbiddenQuotaOverSold", "ForceQuotaOverSold", "AcceptQuotaOverSold-true", "AcceptQuotaOverSold-false")
	knownPaymentTypes  = set("PrePaid", "Spot", "PostPaid")
	// knownParameterNames are the names of listParams, for the statistics.
	knownParameterNames = func() map[string]bool {
		m := make(map[string]bool, len(listParams))
		for _, p := range listParams {
			m[p.name] = true
		}
		return m
	}()
)

func set(values ...string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

// paramKind is how a parameter's value is read.
type paramKind int

const (
	kindString    paramKind = iota // any text up to maxLen characters
	kindEnum                       // one of allowed (empty: not set)
	kindBool                       // exactly true or false (empty: not set)
	kindInt                        // a decimal integer within [lo, hi] (empty: not set)
	kindTime                       // dlc.TimeLayout, UTC (empty: not set)
	kindStringMap                  // a JSON object of strings (empty: not set)
)

// paramValue is a parameter's value, read according to its kind; the pointer fields are nil and
// the map empty when the parameter is absent or empty.
type paramValue struct {
	str  string
	b    *bool
	n    *int64
	tags map[string]string
}

// param is one ListJobs parameter: its name, how it is read and validated, where it goes in the
// query, and the rules it shares with the parameters before it (check, run after set).
type param struct {
	name    string
	kind    paramKind
	maxLen  int             // kindString
	allowed map[string]bool // kindEnum
	lo, hi  int64           // kindInt
	set     func(q *listQuery, v paramValue)
	check   func(q *listQuery) error
}

// listParams are the ListJobs parameters in the reference's order, which is also the order in
// which errors are found: the first invalid parameter is the one an answer names.
var listParams = []param{
	{name: "DisplayName", kind: kindString, maxLen: 1024, set: func(q *listQuery, v paramValue) {
		q.displayNameRaw, q.displayName = v.str, strings.ToLower(v.str)
	}},
	{name: "DisplayNameSearchMode", kind: kindEnum, allowed: knownSearchModes,
		set: func(q *listQuery, v paramValue) { q.displayNameMode = v.str }},
	{name: "Description", kind: kindString, maxLen: 1024, set: func(q *listQuery, v paramValue) { q.description = strings.ToLower(v.str) }},
	{name: "JobType", kind: kindEnum, allowed: knownJobTypes, set: func(q *listQuery, v paramValue) { q.jobType = v.str }},
	{name: "Status", kind: kindEnum, allowed: knownStatuses, set: func(q *listQuery, v paramValue) { q.status = v.str }},
	{name: "TimeRangeField", kind: kindEnum, allowed: knownTimeFields, set: func(q *listQuery, v paramValue) {
		if v.str != "" {
			q.timeField = v.str
		}
	}},
	{name: "StartTime", kind: kindTime, set: func(q *listQuery, v paramValue) {
		if v.n != nil {
			q.start = *v.n
		}
	}},
	{name: "EndTime", kind: kindTime, set: func(q *listQuery, v paramValue) {
		if v.n != nil {
			q.end = *v.n
		}
	}, check: func(q *listQuery) error {
		if q.start > q.end {
			return &paramError{"StartTime", "must not be after EndTime"}
		}
		return nil
	}},
	{name: "PageNumber", kind: kindInt, lo: 1, hi: dlc.MaxPageNumber, set: func(q *listQuery, v paramValue) {
		if v.n != nil {
			q.pageNumber = int(*v.n)
		}
	}},
	{name: "PageSize", kind: kindInt, lo: 1, hi: dlc.MaxPageSize, set: func(q *listQuery, v paramValue) {
		if v.n != nil {
			q.pageSize = int(*v.n)
		}
	}},
	{name: "SortBy", kind: kindEnum, allowed: knownSortFields, set: func(q *listQuery, v paramValue) {
		if v.str != "" {
			q.sortBy = v.str
		}
	}},
	{name: "Order", kind: kindEnum, allowed: set("asc", "desc"), set: func(q *listQuery, v paramValue) {
		if v.str == "asc" {
			q.desc = false
		}
	}},
	{name: "ShowOwn", kind: kindBool, set: func(q *listQuery, v paramValue) {
		if v.b != nil {
			q.showOwn = *v.b
		}
	}},
	{name: "FromAllWorkspaces", kind: kindBool, set: func(q *listQuery, v paramValue) {
		q.fromAllWorkspaces = v.b != nil && *v.b
	}, check: func(q *listQuery) error {
		if q.fromAllWorkspaces && !q.showOwn {
			return &paramError{"FromAllWorkspaces", "requires ShowOwn=true"}
		}
		return nil
	}},
	{name: "WorkspaceId", kind: kindString, maxLen: 64, set: func(q *listQuery, v paramValue) { q.workspaceID = v.str }},
	{name: "ResourceId", kind: kindString, maxLen: 128, set: func(q *listQuery, v paramValue) { q.resourceID = v.str }},
	{name: "ResourceIds", kind: kindString, maxLen: 4096, set: func(q *listQuery, v paramValue) {
		if v.str != "" {
			q.resourceIDs = strings.Split(v.str, ",")
		}
	}},
	{name: "ResourceQuotaName", kind: kindString, maxLen: 256, set: func(q *listQuery, v paramValue) { q.quotaName = strings.ToLower(v.str) }},
	{name: "BusinessUserId", kind: kindString, maxLen: 128, set: func(q *listQuery, v paramValue) { q.businessUserID = v.str }},
	{name: "Caller", kind: kindString, maxLen: 128, set: func(q *listQuery, v paramValue) { q.caller = v.str }},
	{name: "Tags", kind: kindStringMap, set: func(q *listQuery, v paramValue) { q.tags = v.tags }},
	{name: "PipelineId", kind: kindString, maxLen: 128, set: func(q *listQuery, v paramValue) { q.pipelineID = v.str }},
	{name: "JobId", kind: kindString, maxLen: 128, set: func(q *listQuery, v paramValue) {
		if v.str != "" {
			q.jobIDs = []string{strings.ToLower(v.str)}
		}
	}},
	{name: "JobIds", kind: kindString, maxLen: 16384, set: func(q *listQuery, v paramValue) {
		// The reference: JobId wins over JobIds.
		if v.str == "" || len(q.jobIDs) > 0 {
			return
		}
		for _, s := range strings.Split(v.str, ",") {
			q.jobIDs = append(q.jobIDs, strings.ToLower(strings.TrimSpace(s)))
		}
	}},
	{name: "UserIdForFilter", kind: kindString, maxLen: 128, set: func(q *listQuery, v paramValue) { q.userID = v.str }},
	{name: "Username", kind: kindString, maxLen: 256, set: func(q *listQuery, v paramValue) { q.username = strings.ToLower(v.str) }},
	{name: "Accessibility", kind: kindEnum, allowed: knownAccessibility, set: func(q *listQuery, v paramValue) { q.accessibility = v.str }},
	{name: "OversoldInfo", kind: kindEnum, allowed: knownOversoldInfo, set: func(q *listQuery, v paramValue) { q.oversoldInfo = v.str }},
	{name: "PaymentType", kind: kindEnum, allowed: knownPaymentTypes, set: func(q *listQuery, v paramValue) { q.paymentType = v.str }},
	{name: "ReasonSearch", kind: kindString, maxLen: 1024, set: func(q *listQuery, v paramValue) { q.reasonTokens = tokenize(v.str) }},
	{name: "UserCommandSearch", kind: kindString, maxLen: 1024, set: func(q *listQuery, v paramValue) { q.commandTokens = tokenize(v.str) }},
	{name: "ImageSearch", kind: kindString, maxLen: 1024, set: func(q *listQuery, v paramValue) { q.imageTokens = tokenize(v.str) }},
	{name: "NumericRangeField", kind: kindEnum, allowed: knownNumericFields, set: func(q *listQuery, v paramValue) { q.numericField = v.str }},
	{name: "NumericRangeMin", kind: kindInt, lo: -1 << 62, hi: 1 << 62, set: func(q *listQuery, v paramValue) { q.numericMin = v.n }},
	{name: "NumericRangeMax", kind: kindInt, lo: -1 << 62, hi: 1 << 62, set: func(q *listQuery, v paramValue) { q.numericMax = v.n },
		check: func(q *listQuery) error {
			if q.numericField == "" && (q.numericMin != nil || q.numericMax != nil) {
				return &paramError{"NumericRangeField", "is required with NumericRangeMin or NumericRangeMax"}
			}
			if q.numericMin != nil && q.numericMax != nil && *q.numericMin > *q.numericMax {
				return &paramError{"NumericRangeMin", "must not be greater than NumericRangeMax"}
			}
			return nil
		}},
	{name: "EnableAssignNode", kind: kindEnum, allowed: set("true", "false"),
		set: func(q *listQuery, v paramValue) { q.enableAssignNode = v.str }},
	{name: "TemplateId", kind: kindString, maxLen: 128, set: func(q *listQuery, v paramValue) { q.templateID = v.str }},
}

// read reads and validates the parameter's raw value (present is false when the key is absent).
func (p *param) read(raw string, present bool) (paramValue, error) {
	var v paramValue
	if p.kind == kindString {
		if len(raw) > p.maxLen {
			return v, &paramError{p.name, fmt.Sprintf("longer than %d characters", p.maxLen)}
		}
		v.str = raw
		return v, nil
	}
	if !present || raw == "" {
		return v, nil
	}
	switch p.kind {
	case kindEnum:
		if !p.allowed[raw] {
			return v, &paramError{p.name, fmt.Sprintf("%q is not a supported value", raw)}
		}
		v.str = raw
	case kindBool:
		if raw != "true" && raw != "false" {
			return v, &paramError{p.name, fmt.Sprintf("%q is not true or false", raw)}
		}
		b := raw == "true"
		v.b = &b
	case kindInt:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return v, &paramError{p.name, fmt.Sprintf("%q is not an integer", raw)}
		}
		if n < p.lo || n > p.hi {
			return v, &paramError{p.name, fmt.Sprintf("must be between %d and %d", p.lo, p.hi)}
		}
		v.n = &n
	case kindTime:
		t, err := time.Parse(dlc.TimeLayout, raw)
		if err != nil {
			return v, &paramError{p.name, fmt.Sprintf("%q is not a UTC time like 2025-04-16T07:25:34Z", raw)}
		}
		sec := t.Unix()
		v.n = &sec
	case kindStringMap:
		if err := json.Unmarshal([]byte(raw), &v.tags); err != nil || v.tags == nil {
			return v, &paramError{p.name, "must be a JSON object of string values, e.g. {\"team\":\"vision\"}"}
		}
	}
	return v, nil
}

// parseListQuery validates the decoded query of a ListJobs request, one listParams entry at a
// time. now is the simulator's clock, for the default window; showOwnDefault is the ShowOwn
// applied when it is absent.
func parseListQuery(values url.Values, now time.Time, showOwnDefault bool) (*listQuery, error) {
	// The API's defaults, the window included: start = now - 7 days, end = now.
	q := &listQuery{pageNumber: 1, pageSize: 10, sortBy: dlc.SortByCreateTime, desc: true, timeField: dlc.SortByCreateTime,
		showOwn: showOwnDefault, start: now.Add(-dlc.DefaultWindow).Unix(), end: now.Unix()}
	for key := range values {
		if knownParameterNames[key] {
			q.params = append(q.params, key)
		}
	}
	for i := range listParams {
		p := &listParams[i]
		var raw string
		vs, present := values[p.name]
		present = present && len(vs) > 0
		if present {
			raw = vs[0]
		}
		v, err := p.read(raw, present)
		if err != nil {
			return nil, err
		}
		p.set(q, v)
		if p.check != nil {
			if err := p.check(q); err != nil {
				return nil, err
			}
		}
	}
	q.timeIndex = fieldIndex(timeFields[:], q.timeField)
	q.numericIndex = -1
	if q.numericField != "" && (q.numericMin != nil || q.numericMax != nil) {
		q.numericIndex = fieldIndex(numericFields[:], q.numericField)
	}
	q.statusCode, q.jobTypeCode = code(statusCodes, q.status), code(jobTypeCodes, q.jobType)
	return q, nil
}
