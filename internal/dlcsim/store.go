package dlcsim

import (
	mathrand "math/rand/v2"
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
// 100,000 jobs is a scan of cheap comparisons. The fields the scan reads first sit together
// at the top, as numbers where possible; the job itself is behind a pointer, so a scan touches
// one or two cache lines per job instead of the whole JobItem.
type record struct {
	times    [len(timeFields)]int64 // unix seconds; noTime when unset
	numbers  [len(numericFields)]int64
	hasNum   [len(numericFields)]bool
	status   uint8 // index in statusCodes, 0 when unknown
	jobType  uint8 // index in jobTypeCodes, 0 when unknown
	private  bool
	assigned bool

	userID, workspaceID, resourceID, templateID string
	paymentType, oversold                       string

	idLower, nameLower, userLower, quotaLower, descLower string
	nameTokens, reasonTokens, commandTokens, imageTokens []string

	job *Job
}

const noTime = int64(-1 << 62)

// Field orders of record.times and record.numbers.
var (
	timeFields    = [...]string{dlc.SortByCreateTime, "GmtSubmittedTime", "GmtRunningTime", "GmtFinishTime", "GmtModifiedTime"}
	numericFields = [...]string{"RequestGPU", "RequestCPU", "Priority", "Duration"}
	statusCodes   = []string{"", dlc.StatusCreating, dlc.StatusQueuing, dlc.StatusBidding, dlc.StatusEnvPreparing,
		dlc.StatusSanityChecking, dlc.StatusRunning, dlc.StatusRestarting,
		dlc.StatusStopping, dlc.StatusSucceededReserving, dlc.StatusFailedReserving, dlc.StatusSucceeded, dlc.StatusFailed, dlc.StatusStopped}
	jobTypeCodes = []string{"", "TFJob", "PyTorchJob", "XGBoostJob", "OneFlowJob", "ElasticBatchJob", "MPIJob", "RayJob", "SlurmJob"}
)

// code returns the index of v in codes, 0 when absent.
func code(codes []string, v string) uint8 {
	if i := slices.Index(codes, v); i > 0 {
		return uint8(i)
	}
	return 0
}

func fieldIndex(fields []string, name string) int { return slices.Index(fields, name) }

func newRecord(job Job) *record {
	it := &job.JobItem
	r := &record{
		job:         &job,
		status:      code(statusCodes, it.Status),
		jobType:     code(jobTypeCodes, it.JobType),
		userID:      it.UserID,
		workspaceID: it.WorkspaceID,
		resourceID:  it.ResourceID,
		templateID:  it.TemplateID,
		idLower:     strings.ToLower(it.JobID),
		nameLower:   strings.ToLower(it.DisplayName),
		userLower:   strings.ToLower(it.Username),
		quotaLower:  strings.ToLower(it.ResourceQuotaName),
		descLower:   strings.ToLower(job.Description),
		nameTokens:  tokenSet(it.DisplayName),
		// The failure reason is the code and the message.
		reasonTokens:  tokenSet(it.ReasonCode, it.ReasonMessage),
		commandTokens: tokenSet(it.UserCommand),
	}
	images := make([]string, 0, len(it.JobSpecs))
	for _, spec := range it.JobSpecs {
		images = append(images, spec.Image)
	}
	r.imageTokens = tokenSet(images...)
	for i, value := range [...]string{it.GmtCreateTime, it.GmtSubmittedTime, it.GmtRunningTime, it.GmtFinishTime, it.GmtModifiedTime} {
		r.times[i] = noTime
		if t, err := time.Parse(dlc.TimeLayout, value); err == nil {
			r.times[i] = t.Unix()
		}
	}
	setNum := func(field string, v int64) {
		i := fieldIndex(numericFields[:], field)
		r.numbers[i], r.hasNum[i] = v, true
	}
	if n, err := strconv.ParseInt(it.RequestGPU, 10, 64); err == nil {
		setNum("RequestGPU", n)
	}
	if it.RequestCPU != nil {
		setNum("RequestCPU", *it.RequestCPU)
	}
	if it.Priority != nil {
		setNum("Priority", int64(*it.Priority))
	}
	if it.Duration != nil {
		setNum("Duration", *it.Duration)
	}
	r.paymentType = job.PaymentType
	if r.paymentType == "" {
		r.paymentType = derivePaymentType(it)
	}
	r.oversold = deriveOversoldInfo(it)
	for _, spec := range it.JobSpecs {
		if spec.AssignNodeSpec != nil && spec.AssignNodeSpec.EnableAssignNode != nil && *spec.AssignNodeSpec.EnableAssignNode {
			r.assigned = true
		}
	}
	// The reference documents PRIVATE as the default accessibility.
	r.private = it.Accessibility == "" || it.Accessibility == dlc.AccessibilityPrivate
	return r
}

// runningLive reports whether the job's Duration grows with the clock: it runs (is not terminal)
// and has a running time.
func (r *record) runningLive() bool {
	return r.times[timeRunning] != noTime && !dlc.IsTerminal(r.job.Status)
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

// matches reports whether the record passes every filter of q for the caller. The cheapest and
// most selective checks come first.
//
//nolint:gocyclo // one branch per ListJobs filter reads better than a table of closures
func (r *record) matches(q *listQuery, who caller) bool {
	return r.inRange(q) && r.visibleTo(q, who) && r.matchesFields(q) && r.matchesSettings(q) && r.matchesTokens(q)
}

// inRange applies the time window, status, job type and numeric range.
func (r *record) inRange(q *listQuery) bool {
	if t := r.times[q.timeIndex]; t == noTime || t < q.start || t > q.end {
		return false
	}
	if (q.statusCode != 0 && r.status != q.statusCode) || (q.jobTypeCode != 0 && r.jobType != q.jobTypeCode) {
		return false
	}
	if q.numericIndex >= 0 {
		n, has := r.numbers[q.numericIndex], r.hasNum[q.numericIndex]
		if q.liveNow != 0 && q.numericIndex == numericDuration && r.runningLive() {
			// Faults.LiveDuration: the filter sees the Duration the answer shows.
			n, has = q.liveNow-r.times[timeRunning], true
		}
		if !has || (q.numericMin != nil && n < *q.numericMin) || (q.numericMax != nil && n > *q.numericMax) {
			return false
		}
	}
	return true
}

// visibleTo applies who may see the job: private jobs, ShowOwn and the workspace.
func (r *record) visibleTo(q *listQuery, who caller) bool {
	if r.private && !who.admin && r.userID != who.userID {
		return false
	}
	if q.showOwn && r.userID != who.userID {
		return false
	}
	return q.fromAllWorkspaces || q.workspaceID == "" || r.workspaceID == q.workspaceID
}

// matchesFields applies the filters on the job's own fields.
func (r *record) matchesFields(q *listQuery) bool {
	switch {
	case len(q.jobIDs) > 0 && !slices.Contains(q.jobIDs, r.idLower),
		q.displayName != "" && !r.matchName(q),
		q.description != "" && !strings.Contains(r.descLower, q.description),
		q.resourceID != "" && r.resourceID != q.resourceID,
		len(q.resourceIDs) > 0 && !slices.Contains(q.resourceIDs, r.resourceID),
		q.quotaName != "" && !strings.Contains(r.quotaLower, q.quotaName),
		q.username != "" && !strings.Contains(r.userLower, q.username),
		q.userID != "" && r.userID != q.userID,
		q.accessibility != "" && r.private != (q.accessibility == dlc.AccessibilityPrivate),
		q.oversoldInfo != "" && r.oversold != q.oversoldInfo,
		q.paymentType != "" && r.paymentType != q.paymentType,
		q.enableAssignNode != "" && r.assigned != (q.enableAssignNode == "true"),
		q.templateID != "" && r.templateID != q.templateID:
		return false
	}
	return true
}

// matchesSettings applies the filters on the job's settings; a job without settings matches
// none of them.
func (r *record) matchesSettings(q *listQuery) bool {
	if q.businessUserID == "" && q.caller == "" && q.pipelineID == "" && len(q.tags) == 0 {
		return true
	}
	s := r.job.Settings
	if s == nil {
		return false
	}
	if (q.businessUserID != "" && s.BusinessUserID != q.businessUserID) || (q.caller != "" && s.Caller != q.caller) ||
		(q.pipelineID != "" && s.PipelineID != q.pipelineID) {
		return false
	}
	for k, v := range q.tags {
		if got, ok := s.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// matchesTokens applies the token searches of reasons, commands and images.
func (r *record) matchesTokens(q *listQuery) bool {
	return (len(q.reasonTokens) == 0 || containsAll(r.reasonTokens, q.reasonTokens)) &&
		(len(q.commandTokens) == 0 || containsAll(r.commandTokens, q.commandTokens)) &&
		(len(q.imageTokens) == 0 || containsAll(r.imageTokens, q.imageTokens))
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
	return *r.job, true
}

func (s *store) all() []Job {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Job, 0, len(s.byID))
	for _, r := range s.byID {
		out = append(out, *r.job)
	}
	slices.SortFunc(out, func(a, b Job) int { return strings.Compare(a.JobID, b.JobID) })
	return out
}

// ids returns the IDs of the jobs keep accepts, sorted (cheaper than all when only IDs are needed).
func (s *store) ids(keep func(*Job) bool) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.byID))
	for id, r := range s.byID {
		if keep(r.job) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (s *store) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
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
		slices.SortFunc(order, func(a, b *record) int { return compareRecordsTotal(a, b, field) })
		idx[field] = order
	}
	s.indexes = idx
}

// pageShape bends a page the way a fault asks; the zero value is the honest page.
type pageShape struct {
	// extra jobs are served beyond PageSize.
	extra int
	// shuffle, when set, reorders each run of jobs that tie on the sort field.
	shuffle *mathrand.Rand
}

// list answers a validated query: the page of matching jobs and the total count. The tie-break
// on JobId follows the order, so desc is the exact reverse of asc.
func (s *store) list(q *listQuery, who caller) ([]dlc.JobItem, int64) {
	return s.listShaped(q, who, pageShape{})
}

func (s *store) listShaped(q *listQuery, who caller, shape pageShape) ([]dlc.JobItem, int64) {
	s.ensureIndexes()
	s.mu.RLock()
	defer s.mu.RUnlock()
	order := s.indexes[q.sortBy]
	offset := (q.pageNumber - 1) * q.pageSize
	size := q.pageSize + shape.extra
	if shape.shuffle != nil {
		return s.listShuffled(q, who, order, offset, size, shape.shuffle)
	}
	page := make([]dlc.JobItem, 0, size)
	var total int64
	visit := func(r *record) {
		if !r.matches(q, who) {
			return
		}
		if total >= int64(offset) && len(page) < size {
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

// listShuffled collects every match, shuffles each run of ties on the sort field, then cuts the
// page: the order of tied jobs differs from one request to the next, as it may on a service whose
// order among equal keys is not defined.
func (s *store) listShuffled(q *listQuery, who caller, order []*record, offset, size int, rng *mathrand.Rand) ([]dlc.JobItem, int64) {
	var matched []*record
	for i := range order {
		r := order[i]
		if q.desc {
			r = order[len(order)-1-i]
		}
		if r.matches(q, who) {
			matched = append(matched, r)
		}
	}
	for start := 0; start < len(matched); {
		end := start + 1
		for end < len(matched) && compareRecords(matched[start], matched[end], q.sortBy) == 0 {
			end++
		}
		run := matched[start:end]
		rng.Shuffle(len(run), func(i, j int) { run[i], run[j] = run[j], run[i] })
		start = end
	}
	page := make([]dlc.JobItem, 0, size)
	for i := offset; i < len(matched) && len(page) < size; i++ {
		page = append(page, matched[i].job.JobItem)
	}
	return page, int64(len(matched))
}
