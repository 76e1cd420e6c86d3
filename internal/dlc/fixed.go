package dlc

import (
	"reflect"
	"slices"
)

// FilterRule says whether a ListJobs parameter's verdict on a job can change after the job was
// created, and why.
type FilterRule struct {
	// Parameter is the API's parameter name.
	Parameter string
	// Field is the ListJobsRequest field that carries it.
	Field string
	// Fixed is true when, for every job, the parameter selects the job either for its whole life
	// or never (given the same parameter value).
	Fixed bool
	// Reason is the evidence, from the API reference (shared/dlc-api/README.md) or its silence.
	Reason string
}

// FilterRules classifies every ListJobsRequest field. Incremental listing (ListChanges) reads only
// new jobs and jobs still moving; it is right only when no job can enter or leave the result set
// except by being created, deleted or moving through its states, so only filters on facts recorded
// at creation qualify. Where the reference is silent on whether a value can change, the rule is
// conservative: the filter is not fixed.
//
// A field missing from this table counts as not fixed, so a parameter added to
// ListJobsRequest later disables incremental listing until someone classifies it here.
var FilterRules = []FilterRule{
	// Identity and creation facts.
	{"JobId", "JobID", true, "the job ID is the job's identity"},
	{"JobIds", "JobIDs", true, "job IDs are the jobs' identity"},
	{"JobType", "JobType", true, "the job type is chosen at CreateJob; no API changes it"},
	{"WorkspaceId", "WorkspaceID", true, "a job belongs to the workspace it was created in"},
	{"FromAllWorkspaces", "FromAllWorkspaces", true, "widens the workspace scope to the caller's own jobs (requires ShowOwn=true)"},
	{"ShowOwn", "ShowOwn", true, "true: the jobs the caller submitted; the submitter never changes (false/absent: see FixedAtCreation)"},
	{"UserIdForFilter", "UserIDForFilter", true, "the submitter's user ID never changes"},
	{"DisplayName", "DisplayName", true, "the name given at CreateJob; UpdateJob takes priority, JobSpecs and accessibility, not the name"},
	{"DisplayNameSearchMode", "DisplayNameSearchMode", true, "only changes how DisplayName is matched"},
	{"TemplateId", "TemplateID", true, "\"only jobs created from this job template\": a fact of creation"},
	{"PipelineId", "PipelineID", true, "\"only jobs created by this workflow\": a fact of creation"},
	{"Caller", "Caller", true, "JobSettings.Caller records how the job was submitted (e.g. local)"},
	{"BusinessUserId", "BusinessUserID", true, "JobSettings.BusinessUserId is set at CreateJob; UpdateJob does not take Settings"},
	{"StartTime", "StartTime", true, "a window on the creation time (the default TimeRangeField) is fixed; see TimeRangeField"},
	{"EndTime", "EndTime", true, "as StartTime"},
	{"TimeRangeField", "TimeRangeField", true, "fixed only when it is GmtCreateTime (or empty): the other times are set as the job moves"},

	// Paging and ordering select no job.
	{"PageNumber", "PageNumber", true, "paging, not a filter"},
	{"PageSize", "PageSize", true, "paging, not a filter"},
	{"SortBy", "SortBy", true, "ordering, not a filter"},
	{"Order", "Order", true, "ordering, not a filter"},

	// State, and what UpdateJob or the scheduler change.
	{"Status", "Status", false, "the status moves through the lifecycle"},
	{"ReasonSearch", "ReasonSearch", false, "the reason changes with the status"},
	{"NumericRangeField", "NumericRangeField", false,
		"Duration grows, Priority is changed by UpdateJob, RequestGPU/RequestCPU derive from JobSpecs"},
	{"NumericRangeMin", "NumericRangeMin", false, "as NumericRangeField"},
	{"NumericRangeMax", "NumericRangeMax", false, "as NumericRangeField"},
	{"Accessibility", "Accessibility", false, "UpdateJob changes a job's accessibility"},
	{"ImageSearch", "ImageSearch", false, "images are part of JobSpecs, which UpdateJob changes"},
	{"EnableAssignNode", "EnableAssignNode", false, "AssignNodeSpec is part of JobSpecs, which UpdateJob changes"},
	{"PaymentType", "PaymentType", false, "derived from JobSpecs (spot settings) and the quota, which can change"},
	{"OversoldInfo", "OversoldInfo", false, "whether a job used idle resources is decided at scheduling, after creation"},
	{"ResourceId", "ResourceID", false, "JobSpecs carry a QuotaId that UpdateJob can change; the reference does not say the quota is fixed"},
	{"ResourceIds", "ResourceIDs", false, "as ResourceId"},
	{"ResourceQuotaName", "ResourceQuotaName", false, "a quota can be renamed; the reference is silent"},
	{"Username", "Username", false, "a user name can be renamed (the user ID cannot); the reference is silent"},
	{"Tags", "Tags", false, "what the filter matches is only presumed (JobSettings.Tags) and tags may be edited; the reference is silent"},
	{"Description", "Description", false, "not documented at all"},
	{"UserCommandSearch", "UserCommandSearch", false,
		"a full-text index with an undocumented analyser; the reference does not say the command is fixed"},
}

var filterRuleByField = func() map[string]FilterRule {
	m := make(map[string]FilterRule, len(FilterRules))
	for _, r := range FilterRules {
		m[r.Field] = r
	}
	return m
}()

// MutableFilters returns the parameters of req (those set, even to an empty value) whose verdict on
// a job may change after the job was created, in the order of ListJobsRequest's fields; empty when
// every parameter set is fixed at creation. seesPrivateJobs is FixedAtCreationForAdmin's argument.
func MutableFilters(req *ListJobsRequest, seesPrivateJobs bool) []string {
	var out []string
	v := reflect.ValueOf(req).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name := t.Field(i).Name
		if v.Field(i).IsZero() {
			// IsZero means nil for pointers, maps and slices: only parameters that are sent count.
			continue
		}
		rule, ok := filterRuleByField[name]
		param := rule.Parameter
		if !ok {
			param = name
		}
		if !ok || !rule.Fixed {
			out = append(out, param)
		}
	}
	if req.TimeRangeField != nil && *req.TimeRangeField != "" && *req.TimeRangeField != SortByCreateTime {
		out = append(out, "TimeRangeField")
	}
	// A PRIVATE job is listed only to its owner and to admins. Unless the request asks for
	// the caller's own jobs, a job of someone else that UpdateJob turns from PRIVATE to PUBLIC
	// enters the result set of a caller who is not an admin: the visibility is mutable.
	if !seesPrivateJobs && (req.ShowOwn == nil || !*req.ShowOwn) {
		out = append(out, "ShowOwn")
	}
	return slices.Compact(out)
}

// FixedAtCreation reports whether the filter in req selects each job for its whole life or never,
// for any caller: every parameter set is fixed at creation (FilterRules), the time window (if any)
// is on the creation time, and ShowOwn is true. Incremental listing (ListChanges) is correct only
// for such a filter; for any other, list in full.
func FixedAtCreation(req *ListJobsRequest) bool { return len(MutableFilters(req, false)) == 0 }

// FixedAtCreationForAdmin is FixedAtCreation for a caller that sees every job of the workspaces it
// lists whatever the job's accessibility (an admin): for it, ShowOwn false or absent is fixed too.
// A caller that cannot prove it is an admin must use FixedAtCreation.
func FixedAtCreationForAdmin(req *ListJobsRequest) bool { return len(MutableFilters(req, true)) == 0 }
