package dlcsim

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// Job is a simulated job: the JobItem the API returns, plus the facts ListJobs filters on that a
// JobItem does not carry.
type Job struct {
	dlc.JobItem
	// Description is what the Description parameter matches; JobItem has no such field.
	Description string `json:"Description,omitempty"`
	// PaymentType is PrePaid, Spot or PostPaid; when empty it is derived (see docs/dlcsim.md).
	PaymentType string `json:"PaymentType,omitempty"`
}

// record is a job with everything a filter or a sort needs precomputed, so that a ListJobs over
// 100,000 jobs is a scan of cheap comparisons.
type record struct {
	job Job

	idLower, nameLower, userLower, quotaLower, descLower string
	nameTokens, reasonTokens, commandTokens, imageTokens []string
	times                                                map[string]int64 // unix seconds; absent when unset
	numbers                                              map[string]int64 // RequestGPU, RequestCPU, Priority, Duration
	paymentType, oversold, enableAssignNode              string
	accessibility                                        string
}

func newRecord(job Job) *record {
	it := &job.JobItem
	r := &record{
		job:        job,
		idLower:    strings.ToLower(it.JobID),
		nameLower:  strings.ToLower(it.DisplayName),
		userLower:  strings.ToLower(it.Username),
		quotaLower: strings.ToLower(it.ResourceQuotaName),
		descLower:  strings.ToLower(job.Description),
		nameTokens: tokenSet(it.DisplayName),
		// The failure reason is the code and the message.
		reasonTokens:  tokenSet(it.ReasonCode, it.ReasonMessage),
		commandTokens: tokenSet(it.UserCommand),
		times:         map[string]int64{},
		numbers:       map[string]int64{},
	}
	var images []string
	for _, spec := range it.JobSpecs {
		images = append(images, spec.Image)
	}
	r.imageTokens = tokenSet(images...)
	for field, value := range map[string]string{
		"GmtCreateTime": it.GmtCreateTime, "GmtSubmittedTime": it.GmtSubmittedTime, "GmtRunningTime": it.GmtRunningTime,
		"GmtFinishTime": it.GmtFinishTime, "GmtModifiedTime": it.GmtModifiedTime,
	} {
		if t, err := time.Parse(dlc.TimeLayout, value); err == nil {
			r.times[field] = t.Unix()
		}
	}
	if n, err := strconv.ParseInt(it.RequestGPU, 10, 64); err == nil {
		r.numbers["RequestGPU"] = n
	}
	if it.RequestCPU != nil {
		r.numbers["RequestCPU"] = *it.RequestCPU
	}
	if it.Priority != nil {
		r.numbers["Priority"] = int64(*it.Priority)
	}
	if it.Duration != nil {
		r.numbers["Duration"] = *it.Duration
	}
	r.paymentType = job.PaymentType
	if r.paymentType == "" {
		r.paymentType = derivePaymentType(it)
	}
	r.oversold = deriveOversoldInfo(it)
	r.enableAssignNode = "false"
	for _, spec := range it.JobSpecs {
		if spec.AssignNodeSpec != nil && spec.AssignNodeSpec.EnableAssignNode != nil && *spec.AssignNodeSpec.EnableAssignNode {
			r.enableAssignNode = "true"
		}
	}
	r.accessibility = it.Accessibility
	if r.accessibility == "" {
		// The reference documents PRIVATE as the default.
		r.accessibility = "PRIVATE"
	}
	return r
}

// derivePaymentType: spot settings mean Spot, a resource quota means PrePaid, otherwise the job
// ran on public resources (PostPaid).
func derivePaymentType(it *dlc.JobItem) string {
	for _, spec := range it.JobSpecs {
		if spec.SpotSpec != nil || (spec.UseSpotInstance != nil && *spec.UseSpotInstance) || len(spec.ElasticSpotSpecs) > 0 {
			return "Spot"
		}
	}
	if it.ResourceID != "" {
		return "PrePaid"
	}
	return "PostPaid"
}

// deriveOversoldInfo maps Settings.OversoldType and UseOversoldResource to the OversoldInfo values:
// AcceptQuotaOverSold splits by whether the job actually used idle resources.
func deriveOversoldInfo(it *dlc.JobItem) string {
	if it.Settings == nil || it.Settings.OversoldType == "" {
		return ""
	}
	if it.Settings.OversoldType == "AcceptQuotaOverSold" {
		if it.UseOversoldResource != nil && *it.UseOversoldResource {
			return "AcceptQuotaOverSold-true"
		}
		return "AcceptQuotaOverSold-false"
	}
	return it.Settings.OversoldType
}

// caller is the identity a request was signed with.
type caller struct {
	userID string
	admin  bool
}

// matches reports whether the record passes every filter of q for the caller.
func (r *record) matches(q *listQuery, who caller) bool {
	it := &r.job.JobItem
	if it.Accessibility == "PRIVATE" || r.accessibility == "PRIVATE" {
		if !who.admin && it.UserID != who.userID {
			return false
		}
	}
	if q.showOwn && it.UserID != who.userID {
		return false
	}
	if !q.fromAllWorkspaces && q.workspaceID != "" && it.WorkspaceID != q.workspaceID {
		return false
	}
	if t, ok := r.times[q.timeField]; !ok || t < q.start || t > q.end {
		return false
	}
	if q.jobType != "" && it.JobType != q.jobType {
		return false
	}
	if q.status != "" && it.Status != q.status {
		return false
	}
	if len(q.jobIDs) > 0 && !slices.Contains(q.jobIDs, r.idLower) {
		return false
	}
	if q.displayName != "" && !r.matchName(q) {
		return false
	}
	if q.description != "" && !strings.Contains(r.descLower, q.description) {
		return false
	}
	if q.resourceID != "" && it.ResourceID != q.resourceID {
		return false
	}
	if len(q.resourceIDs) > 0 && !slices.Contains(q.resourceIDs, it.ResourceID) {
		return false
	}
	if q.quotaName != "" && !strings.Contains(r.quotaLower, q.quotaName) {
		return false
	}
	if q.username != "" && !strings.Contains(r.userLower, q.username) {
		return false
	}
	if q.userID != "" && it.UserID != q.userID {
		return false
	}
	if q.businessUserID != "" || q.caller != "" || q.pipelineID != "" || len(q.tags) > 0 {
		s := it.Settings
		if s == nil {
			return false
		}
		if q.businessUserID != "" && s.BusinessUserID != q.businessUserID {
			return false
		}
		if q.caller != "" && s.Caller != q.caller {
			return false
		}
		if q.pipelineID != "" && s.PipelineID != q.pipelineID {
			return false
		}
		for k, v := range q.tags {
			if got, ok := s.Tags[k]; !ok || got != v {
				return false
			}
		}
	}
	if q.accessibility != "" && r.accessibility != q.accessibility {
		return false
	}
	if q.oversoldInfo != "" && r.oversold != q.oversoldInfo {
		return false
	}
	if q.paymentType != "" && r.paymentType != q.paymentType {
		return false
	}
	if q.enableAssignNode != "" && r.enableAssignNode != q.enableAssignNode {
		return false
	}
	if q.templateID != "" && it.TemplateID != q.templateID {
		return false
	}
	if !containsAll(r.reasonTokens, q.reasonTokens) || !containsAll(r.commandTokens, q.commandTokens) ||
		!containsAll(r.imageTokens, q.imageTokens) {
		return false
	}
	if q.numericField != "" && (q.numericMin != nil || q.numericMax != nil) {
		n, ok := r.numbers[q.numericField]
		if !ok || (q.numericMin != nil && n < *q.numericMin) || (q.numericMax != nil && n > *q.numericMax) {
			return false
		}
	}
	return true
}

// matchName applies DisplayName with its search mode (see docs/dlcsim.md).
func (r *record) matchName(q *listQuery) bool {
	switch q.displayNameMode {
	case "prefix":
		return strings.HasPrefix(r.nameLower, q.displayName)
	case "term":
		return r.job.DisplayName == q.displayNameRaw
	case "fulltext":
		return containsAll(r.nameTokens, tokenize(q.displayName))
	default: // wildcard, the API's default
		if hasWildcard(q.displayName) {
			return globMatch(q.displayName, r.nameLower)
		}
		return strings.Contains(r.nameLower, q.displayName)
	}
}

// store holds the jobs and, per sort field, the job order ascending by (field, JobId). The
// orders are rebuilt lazily after a change, so a burst of changes costs one sort.
type store struct {
	mu      sync.RWMutex
	byID    map[string]*record
	indexes map[string][]*record // nil when stale
}

func newStore() *store {
	return &store{byID: map[string]*record{}}
}

func (s *store) upsert(jobs ...Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range jobs {
		s.byID[j.JobID] = newRecord(j)
	}
	s.indexes = nil
}

func (s *store) delete(ids ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := s.byID[id]; ok {
			delete(s.byID, id)
			n++
		}
	}
	s.indexes = nil
	return n
}

func (s *store) get(id string) (Job, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.byID[id]
	if !ok {
		return Job{}, false
	}
	return r.job, true
}

func (s *store) all() []Job {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Job, 0, len(s.byID))
	for _, r := range s.byID {
		out = append(out, r.job)
	}
	slices.SortFunc(out, func(a, b Job) int { return strings.Compare(a.JobID, b.JobID) })
	return out
}

func (s *store) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

// sortValue is the value a record sorts by for a SortBy field. Times compare as strings: the
// API's layout sorts chronologically, and an unset time sorts first ascending.
func sortValue(r *record, field string) string {
	it := &r.job.JobItem
	switch field {
	case "DisplayName":
		return it.DisplayName
	case "JobType":
		return it.JobType
	case "Status":
		return it.Status
	case "GmtFinishTime":
		return it.GmtFinishTime
	default:
		return it.GmtCreateTime
	}
}

// ensureIndexes rebuilds the sort orders if a change made them stale. Callers hold no lock.
func (s *store) ensureIndexes() {
	s.mu.RLock()
	fresh := s.indexes != nil
	s.mu.RUnlock()
	if fresh {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indexes != nil {
		return
	}
	base := make([]*record, 0, len(s.byID))
	for _, r := range s.byID {
		base = append(base, r)
	}
	idx := map[string][]*record{}
	for field := range knownSortFields {
		order := slices.Clone(base)
		slices.SortFunc(order, func(a, b *record) int {
			if c := strings.Compare(sortValue(a, field), sortValue(b, field)); c != 0 {
				return c
			}
			return strings.Compare(a.job.JobID, b.job.JobID)
		})
		idx[field] = order
	}
	s.indexes = idx
}

// list answers a validated query: the page of matching jobs and the total count. The tie-break
// on JobId follows the order, so desc is the exact reverse of asc.
func (s *store) list(q *listQuery, who caller) ([]dlc.JobItem, int64) {
	s.ensureIndexes()
	s.mu.RLock()
	defer s.mu.RUnlock()
	order := s.indexes[q.sortBy]
	offset := (q.pageNumber - 1) * q.pageSize
	page := make([]dlc.JobItem, 0, q.pageSize)
	var total int64
	visit := func(r *record) {
		if !r.matches(q, who) {
			return
		}
		if total >= int64(offset) && len(page) < q.pageSize {
			page = append(page, r.job.JobItem)
		}
		total++
	}
	if q.desc {
		for i := len(order) - 1; i >= 0; i-- {
			visit(order[i])
		}
	} else {
		for _, r := range order {
			visit(r)
		}
	}
	return page, total
}
