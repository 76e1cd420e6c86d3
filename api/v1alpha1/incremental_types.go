package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// IncrementalState is what a JobQuery's incremental listing needs to survive a manager restart or
// a leader failover, kept in the status so that the manager owns no other object for it. The
// snapshots themselves hold the rest: each job's creation time and phase, from which the next
// sync reads the new and the running jobs. This state says when the last full listing ran, for
// which spec and credentials, and what the snapshots looked like then, so that a new process can
// tell whether they still agree before it trusts them. It is bounded: a fixed size plus at most
// 100 pending prunes.
type IncrementalState struct {
	// fingerprint is a hash of the whole spec and of the credentials Secret's resourceVersion the
	// state was built under. A manager trusts the state only while both are unchanged; otherwise
	// its next sync lists in full.
	// +kubebuilder:validation:MaxLength=64
	// +required
	Fingerprint string `json:"fingerprint"`

	// lastFullListingTime is when the last complete full listing ran, or up to half of
	// spec.fullResyncInterval earlier: it is rewritten only when it would otherwise fall further
	// behind, so that a sync that changes nothing writes nothing. A restarted manager lists in
	// full once spec.fullResyncInterval has passed since this time.
	// +required
	LastFullListingTime metav1.Time `json:"lastFullListingTime"`

	// watermark is the creation time of the newest job the query keeps, in the API's layout
	// (2006-01-02T15:04:05Z); new jobs are listed from it, less an overlap.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Watermark string `json:"watermark,omitempty"`

	// runningJobs is the number of kept jobs that are not terminal: those the next incremental
	// sync reads again by ID.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RunningJobs int32 `json:"runningJobs,omitempty"`

	// runningDigest is a hash of the IDs of those jobs. A restarted manager takes the running
	// jobs from the snapshots' phases and lists incrementally only if they hash to this digest
	// (and the newest matches watermark); any difference means a full listing.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	RunningDigest string `json:"runningDigest,omitempty"`

	// pendingPrune are the names of snapshots whose jobs the last listing found gone: the next
	// complete listing that does not return them either prunes them. At most 100 are kept; the
	// others wait for two listings after a restart.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=253
	PendingPrune []string `json:"pendingPrune,omitempty"`
}
