package dlcsim

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// JobUpdate is what can change on a job after its creation: what UpdateJob takes (accessibility,
// the roles' JobSpecs, priority) and what scheduling decides (whether an AcceptQuotaOverSold job
// used idle resources). A nil field is left as it is. The filters that read these values
// (Accessibility, ImageSearch, EnableAssignNode, PaymentType, OversoldInfo, NumericRange on
// Priority, RequestGPU and RequestCPU) see the new values from the next request on.
type JobUpdate struct {
	// Accessibility is PUBLIC or PRIVATE.
	Accessibility *string `json:"Accessibility,omitempty"`
	// JobSpecs replaces every role's spec (images, resources, spot and node assignment).
	JobSpecs []dlc.JobSpec `json:"JobSpecs,omitempty"`
	// Priority is 1..9.
	Priority *int32 `json:"Priority,omitempty"`
	// OversoldType sets Settings.OversoldType.
	OversoldType *string `json:"OversoldType,omitempty"`
	// UseOversoldResource is the scheduler's verdict for an AcceptQuotaOverSold job.
	UseOversoldResource *bool `json:"UseOversoldResource,omitempty"`
}

func (u *JobUpdate) validate() error {
	if u.Accessibility != nil && *u.Accessibility != dlc.AccessibilityPublic && *u.Accessibility != dlc.AccessibilityPrivate {
		return fmt.Errorf("accessibility %q: want PUBLIC or PRIVATE", *u.Accessibility)
	}
	if u.Priority != nil && (*u.Priority < 1 || *u.Priority > 9) {
		return fmt.Errorf("priority %d: want 1..9", *u.Priority)
	}
	if u.OversoldType != nil && !slices.Contains(oversoldTypes, *u.OversoldType) && *u.OversoldType != "" {
		return fmt.Errorf("oversoldType %q: want one of %v", *u.OversoldType, oversoldTypes)
	}
	return nil
}

// oversoldTypes are the OversoldType values of the API: UpdateJob accepts them, generated jobs use them.
var oversoldTypes = []string{"ForbiddenQuotaOverSold", "AcceptQuotaOverSold", "ForceQuotaOverSold"}

// apply changes the job (which the caller owns: see cloneJob) as UpdateJob would at t.
func (u *JobUpdate) apply(j *Job, t time.Time) {
	if u.Accessibility != nil {
		j.Accessibility = *u.Accessibility
	}
	if u.JobSpecs != nil {
		j.JobSpecs = u.JobSpecs
		// RequestGPU and RequestCPU are what the roles ask for.
		if len(u.JobSpecs) > 0 && u.JobSpecs[0].ResourceConfig != nil {
			if gpu := u.JobSpecs[0].ResourceConfig.GPU; gpu != "" {
				j.RequestGPU = gpu
			}
		}
	}
	if u.Priority != nil {
		p := *u.Priority
		j.Priority = &p
	}
	if u.OversoldType != nil {
		if j.Settings == nil {
			j.Settings = &dlc.JobSettings{}
		}
		j.Settings.OversoldType = *u.OversoldType
	}
	if u.UseOversoldResource != nil {
		v := *u.UseOversoldResource
		j.UseOversoldResource = &v
	}
	j.GmtModifiedTime = dlc.FormatTime(t)
}

// UpdateJob changes a job's mutable fields, as PAI-DLC's UpdateJob or its scheduler would, and
// stamps GmtModifiedTime with the server's clock. It returns the job as changed, or false when
// there is no such job.
func (s *Server) UpdateJob(id string, u JobUpdate) (Job, bool, error) {
	if err := u.validate(); err != nil {
		return Job{}, false, err
	}
	var out Job
	ok := s.Patch(id, func(j *Job) {
		u.apply(j, s.clock.Now())
		out = *j
	})
	return out, ok, nil
}

// cloneJob returns a deep copy: the store's jobs share slices and pointers with the copies it
// hands out, and changing those in place would change a stored job behind its precomputed
// filter keys (and under concurrent readers).
func cloneJob(j Job) Job {
	data, err := json.Marshal(j)
	if err != nil {
		panic(fmt.Sprintf("dlcsim: a job does not encode: %v", err))
	}
	var out Job
	if err := json.Unmarshal(data, &out); err != nil {
		panic(fmt.Sprintf("dlcsim: a job does not decode: %v", err))
	}
	return out
}

// randomUpdate picks one change UpdateJob could make to the job (seeded by the generator).
func (g *generator) randomUpdate(j *Job) JobUpdate {
	g.mu.Lock()
	defer g.mu.Unlock()
	var u JobUpdate
	switch g.pick(5) {
	case 0:
		access := dlc.AccessibilityPublic
		if j.Accessibility == dlc.AccessibilityPublic {
			access = dlc.AccessibilityPrivate
		}
		u.Accessibility = &access
	case 1:
		// Another image: ImageSearch sees other words.
		image := jobTypes[g.pick(len(jobTypes))].image
		u.JobSpecs = cloneJob(*j).JobSpecs
		for i := range u.JobSpecs {
			u.JobSpecs[i].Image = image
		}
	case 2:
		// Spot on or off: the derived PaymentType changes.
		u.JobSpecs = cloneJob(*j).JobSpecs
		spot := derivePaymentType(&j.JobItem) != "Spot"
		for i := range u.JobSpecs {
			u.JobSpecs[i].UseSpotInstance, u.JobSpecs[i].ElasticSpotSpecs, u.JobSpecs[i].SpotSpec = nil, nil, nil
			if spot {
				discount := 0.8
				u.JobSpecs[i].SpotSpec = &dlc.SpotSpec{SpotStrategy: "SpotWithPriceLimit", SpotDiscountLimit: &discount}
			}
		}
	case 3:
		// Node assignment on or off: EnableAssignNode changes.
		u.JobSpecs = cloneJob(*j).JobSpecs
		on := !newRecord(*j).assigned
		for i := range u.JobSpecs {
			u.JobSpecs[i].AssignNodeSpec = &dlc.AssignNodeSpec{EnableAssignNode: &on}
			if on {
				u.JobSpecs[i].AssignNodeSpec.NodeNames = "lingjun-node-1"
			}
		}
	default:
		p := int32(1 + g.pick(9))
		u.Priority = &p
	}
	return u
}

// schedule decides, when a job leaves the queue, whether it runs on idle resources: always for
// ForceQuotaOverSold, never for ForbiddenQuotaOverSold, by chance for AcceptQuotaOverSold.
func (g *generator) schedule(it *dlc.JobItem) {
	if it.Settings == nil || it.Settings.OversoldType == "" {
		return
	}
	g.mu.Lock()
	used := g.pick(2) == 0
	g.mu.Unlock()
	switch it.Settings.OversoldType {
	case "ForceQuotaOverSold":
		used = true
	case "ForbiddenQuotaOverSold":
		used = false
	}
	it.UseOversoldResource = &used
}
