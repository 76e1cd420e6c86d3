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
	knownSearchModes    = set("prefix", "fulltext", "term", "wildcard")
	knownSortFields     = set("DisplayName", "JobType", "Status", dlc.SortByCreateTime, "GmtFinishTime")
	knownTimeFields     = set(dlc.SortByCreateTime, "GmtSubmittedTime", "GmtRunningTime", "GmtFinishTime", "GmtModifiedTime")
	knownNumericFields  = set("RequestGPU", "RequestCPU", "Priority", "Duration")
	knownAccessibility  = set(dlc.AccessibilityPublic, dlc.AccessibilityPrivate)
	knownOversoldInfo   = set("ForbiddenQuotaOverSold", "ForceQuotaOverSold", "AcceptQuotaOverSold-true", "AcceptQuotaOverSold-false")
	knownPaymentTypes   = set("PrePaid", "Spot", "PostPaid")
	knownParameterNames = set("DisplayName", "DisplayNameSearchMode", "Description", "JobType", "Status",
		"StartTime", "EndTime", "TimeRangeField", "PageNumber", "PageSize", "SortBy", "Order", "ShowOwn",
		"FromAllWorkspaces", "WorkspaceId", "ResourceId", "ResourceIds", "ResourceQuotaName", "BusinessUserId",
		"Caller", "Tags", "PipelineId", "JobId", "JobIds", "UserIdForFilter", "Username", "Accessibility",
		"OversoldInfo", "PaymentType", "ReasonSearch", "UserCommandSearch", "ImageSearch", "NumericRangeField",
		"NumericRangeMin", "NumericRangeMax", "EnableAssignNode", "TemplateId")
)

func set(values ...string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

// parseListQuery validates the decoded query of a ListJobs request. now is the simulator's
// clock, for the default window; showOwnDefault is the ShowOwn applied when it is absent.
//
//nolint:gocyclo // one step per ListJobs parameter, in the reference's order
func parseListQuery(values url.Values, now time.Time, showOwnDefault bool) (*listQuery, error) {
	get := func(key string) (string, bool) {
		v, ok := values[key]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	q := &listQuery{pageNumber: 1, pageSize: 10, sortBy: dlc.SortByCreateTime, desc: true, timeField: dlc.SortByCreateTime,
		showOwn: showOwnDefault}
	for key := range values {
		if knownParameterNames[key] {
			q.params = append(q.params, key)
		}
	}

	str := func(key string, maxLen int) (string, error) {
		v, _ := get(key)
		if len(v) > maxLen {
			return "", &paramError{key, fmt.Sprintf("longer than %d characters", maxLen)}
		}
		return v, nil
	}
	enum := func(key string, allowed map[string]bool) (string, error) {
		v, ok := get(key)
		if !ok || v == "" {
			return "", nil
		}
		if !allowed[v] {
			return "", &paramError{key, fmt.Sprintf("%q is not a supported value", v)}
		}
		return v, nil
	}
	boolean := func(key string, def bool) (bool, error) {
		v, ok := get(key)
		if !ok || v == "" {
			return def, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil || (v != "true" && v != "false") {
			return false, &paramError{key, fmt.Sprintf("%q is not true or false", v)}
		}
		return b, nil
	}
	integer := func(key string, lo, hi int64) (*int64, error) {
		v, ok := get(key)
		if !ok || v == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, &paramError{key, fmt.Sprintf("%q is not an integer", v)}
		}
		if n < lo || n > hi {
			return nil, &paramError{key, fmt.Sprintf("must be between %d and %d", lo, hi)}
		}
		return &n, nil
	}
	timestamp := func(key string) (*int64, error) {
		v, ok := get(key)
		if !ok || v == "" {
			return nil, nil
		}
		t, err := time.Parse(dlc.TimeLayout, v)
		if err != nil {
			return nil, &paramError{key, fmt.Sprintf("%q is not a UTC time like 2025-04-16T07:25:34Z", v)}
		}
		s := t.Unix()
		return &s, nil
	}

	var err error
	steps := []func() error{
		func() error {
			raw, err := str("DisplayName", 1024)
			q.displayNameRaw, q.displayName = raw, strings.ToLower(raw)
			return err
		},
		func() error { q.displayNameMode, err = enum("DisplayNameSearchMode", knownSearchModes); return err },
		func() error {
			v, err := str("Description", 1024)
			q.description = strings.ToLower(v)
			return err
		},
		func() error { q.jobType, err = enum("JobType", knownJobTypes); return err },
		func() error { q.status, err = enum("Status", knownStatuses); return err },
		func() error {
			if v, err := enum("TimeRangeField", knownTimeFields); err != nil || v != "" {
				q.timeField = v
				return err
			}
			return nil
		},
		func() error {
			start, err := timestamp("StartTime")
			if err != nil {
				return err
			}
			end, err := timestamp("EndTime")
			if err != nil {
				return err
			}
			// The API's defaults: start = now - 7 days, end = now.
			q.start, q.end = now.Add(-dlc.DefaultWindow).Unix(), now.Unix()
			if start != nil {
				q.start = *start
			}
			if end != nil {
				q.end = *end
			}
			if q.start > q.end {
				return &paramError{"StartTime", "must not be after EndTime"}
			}
			return nil
		},
		func() error {
			n, err := integer("PageNumber", 1, dlc.MaxPageNumber)
			if n != nil {
				q.pageNumber = int(*n)
			}
			return err
		},
		func() error {
			n, err := integer("PageSize", 1, dlc.MaxPageSize)
			if n != nil {
				q.pageSize = int(*n)
			}
			return err
		},
		func() error {
			if v, err := enum("SortBy", knownSortFields); err != nil || v != "" {
				q.sortBy = v
				return err
			}
			return nil
		},
		func() error {
			v, err := enum("Order", set("asc", "desc"))
			if v == "asc" {
				q.desc = false
			}
			return err
		},
		func() error { q.showOwn, err = boolean("ShowOwn", showOwnDefault); return err },
		func() error {
			q.fromAllWorkspaces, err = boolean("FromAllWorkspaces", false)
			if err == nil && q.fromAllWorkspaces && !q.showOwn {
				return &paramError{"FromAllWorkspaces", "requires ShowOwn=true"}
			}
			return err
		},
		func() error { q.workspaceID, err = str("WorkspaceId", 64); return err },
		func() error { q.resourceID, err = str("ResourceId", 128); return err },
		func() error {
			v, err := str("ResourceIds", 4096)
			if v != "" {
				q.resourceIDs = strings.Split(v, ",")
			}
			return err
		},
		func() error {
			v, err := str("ResourceQuotaName", 256)
			q.quotaName = strings.ToLower(v)
			return err
		},
		func() error { q.businessUserID, err = str("BusinessUserId", 128); return err },
		func() error { q.caller, err = str("Caller", 128); return err },
		func() error {
			v, ok := get("Tags")
			if !ok || v == "" {
				return nil
			}
			if err := json.Unmarshal([]byte(v), &q.tags); err != nil || q.tags == nil {
				return &paramError{"Tags", "must be a JSON object of string values, e.g. {\"team\":\"vision\"}"}
			}
			return nil
		},
		func() error { q.pipelineID, err = str("PipelineId", 128); return err },
		func() error {
			id, err := str("JobId", 128)
			if err != nil {
				return err
			}
			ids, err := str("JobIds", 16384)
			if err != nil {
				return err
			}
			switch {
			case id != "":
				q.jobIDs = []string{strings.ToLower(id)}
			case ids != "":
				for _, s := range strings.Split(ids, ",") {
					q.jobIDs = append(q.jobIDs, strings.ToLower(strings.TrimSpace(s)))
				}
			}
			return nil
		},
		func() error { q.userID, err = str("UserIdForFilter", 128); return err },
		func() error {
			v, err := str("Username", 256)
			q.username = strings.ToLower(v)
			return err
		},
		func() error { q.accessibility, err = enum("Accessibility", knownAccessibility); return err },
		func() error { q.oversoldInfo, err = enum("OversoldInfo", knownOversoldInfo); return err },
		func() error { q.paymentType, err = enum("PaymentType", knownPaymentTypes); return err },
		func() error {
			v, err := str("ReasonSearch", 1024)
			q.reasonTokens = tokenize(v)
			return err
		},
		func() error {
			v, err := str("UserCommandSearch", 1024)
			q.commandTokens = tokenize(v)
			return err
		},
		func() error {
			v, err := str("ImageSearch", 1024)
			q.imageTokens = tokenize(v)
			return err
		},
		func() error {
			field, err := enum("NumericRangeField", knownNumericFields)
			if err != nil {
				return err
			}
			lo, err := integer("NumericRangeMin", -1<<62, 1<<62)
			if err != nil {
				return err
			}
			hi, err := integer("NumericRangeMax", -1<<62, 1<<62)
			if err != nil {
				return err
			}
			if field == "" && (lo != nil || hi != nil) {
				return &paramError{"NumericRangeField", "is required with NumericRangeMin or NumericRangeMax"}
			}
			if lo != nil && hi != nil && *lo > *hi {
				return &paramError{"NumericRangeMin", "must not be greater than NumericRangeMax"}
			}
			q.numericField, q.numericMin, q.numericMax = field, lo, hi
			return nil
		},
		func() error { q.enableAssignNode, err = enum("EnableAssignNode", set("true", "false")); return err },
		func() error { q.templateID, err = str("TemplateId", 128); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
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
