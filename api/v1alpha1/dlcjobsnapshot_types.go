package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DLCJobSnapshotSpec identifies the PAI-DLC job a snapshot mirrors. Both fields are immutable.
type DLCJobSnapshotSpec struct {
	// jobId is the exact PAI-DLC job ID, e.g. dlc1a2b3c4d5e6f7. The object name is derived from it
	// (lowercased, or sanitised plus a short hash where the ID is not a valid object name).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.jobId is immutable"
	JobID string `json:"jobId"`

	// regionId is the region of the job.
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.regionId is immutable"
	RegionID string `json:"regionId"`
}

// DLCJobSnapshotStatus holds the job as ListJobs last returned it, plus convenience fields that
// printer columns, label selectors and automation read.
type DLCJobSnapshotStatus struct {
	// job is the complete job item as returned by ListJobs, redacted: the field groups the
	// JobQuery does not list in snapshot.reveal (env values, commands, settings, libraries, pod
	// annotations) read [REDACTED]; registry passwords, credential tokens and the userinfo of any
	// URL always do. A string too long for the object is cut and ends with
	// "...[cut by dlcsync: N bytes]".
	// +optional
	Job *JobItem `json:"job,omitempty"`

	// displayName is the job name.
	// +optional
	DisplayName string `json:"displayName,omitempty"`

	// jobType is the job type, e.g. PyTorchJob.
	// +optional
	JobType string `json:"jobType,omitempty"`

	// phase is the job status, e.g. Running, Succeeded, Failed.
	// +optional
	Phase string `json:"phase,omitempty"`

	// subStatus is the job sub-status, e.g. Restarting.
	// +optional
	SubStatus string `json:"subStatus,omitempty"`

	// reasonCode says why the job is in its status, e.g. JobStoppedByUser.
	// +optional
	ReasonCode string `json:"reasonCode,omitempty"`

	// reasonMessage is the detailed reason.
	// +optional
	ReasonMessage string `json:"reasonMessage,omitempty"`

	// workspaceId is the workspace of the job.
	// +optional
	WorkspaceID string `json:"workspaceId,omitempty"`

	// workspaceName is the name of the workspace of the job.
	// +optional
	WorkspaceName string `json:"workspaceName,omitempty"`

	// requestGPU is the number of GPUs the job requested, as the API reports it.
	// +optional
	RequestGPU string `json:"requestGPU,omitempty"`

	// username is the name of the job's submitter (the job's Username), e.g. pai-dlc-role.
	// +optional
	Username string `json:"username,omitempty"`

	// userId is the UID of the job's owner (the job's UserId), e.g. 123456789.
	// +optional
	UserID string `json:"userId,omitempty"`

	// duration is the final running time of the job in seconds, as the API reported it once the
	// job ended (Succeeded, Failed, Stopped); empty while it has not (SucceededReserving and
	// FailedReserving included), since a running job's would change at every sync.
	// +optional
	Duration int64 `json:"duration,omitempty"`

	// durationText is duration written the way kubectl writes ages, e.g. 45s, 7m30s, 67m, 5h12m, 3d4h.
	// Like duration it is empty while the job has not ended; a running job's time so far is now
	// minus startedAt.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	DurationText string `json:"durationText,omitempty"`

	// createdAt is when the job was created (its GmtCreateTime).
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`

	// startedAt is when the job started running (its GmtRunningTime), if it has.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`

	// finishedAt is when the job finished (its GmtFinishTime), if it has.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`

	// requestId is the RequestId of the ListJobs answer whose data the snapshot was last written
	// from: quote it in a support ticket to Alibaba Cloud. A sync that finds the job unchanged
	// does not rewrite the snapshot, so it stays the ID of the answer the last write used.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	RequestID string `json:"requestId,omitempty"`

	// observedAt is when the job data last changed in this snapshot. A sync that finds the job
	// unchanged does not touch it.
	// +optional
	ObservedAt *metav1.Time `json:"observedAt,omitempty"`

	// matchedBy names the JobQueries of this namespace whose filter matches the job.
	// +optional
	// +listType=set
	MatchedBy []string `json:"matchedBy,omitempty"`

	// matching is false when the snapshot is retained (prunePolicy Retain) after no JobQuery
	// matches the job any more.
	// +optional
	Matching bool `json:"matching,omitempty"`

	// contentHash is a hash of the normalised job data; the controller writes only when it changes.
	// +optional
	ContentHash string `json:"contentHash,omitempty"`

	// revealed are the field groups whose values status.job holds as the API sent them (every
	// other group is redacted): those that every JobQuery matching the job reveals, in a namespace
	// where the operator allows it. When that allowance or a query's reveal list is withdrawn,
	// the snapshot is rewritten redacted, retained and orphaned snapshots included.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=5
	Revealed []RevealGroup `json:"revealed,omitempty"`

	// transition is the job's last phase change as dlcsync saw it, written in the same write as
	// the phase. Its key is the dedupe key for automation: it names the job, the phase and when
	// dlcsync first wrote that phase, so it stays the same across manager restarts, leader
	// failovers and full listings, and a job that enters the same phase twice gets two keys.
	// Snapshots written before dlcsync recorded transitions have none until their job's next
	// phase change.
	// +optional
	Transition *PhaseTransition `json:"transition,omitempty"`

	// previousTransitions are the transitions before transition, oldest first, at most 3: a
	// transition that a CloudEvents sink had not received yet when the job changed phase again
	// (FailedReserving, then Failed) is still here for the next leader to send.
	// +optional
	// +kubebuilder:validation:MaxItems=3
	PreviousTransitions []PhaseTransition `json:"previousTransitions,omitempty"`

	// conditions mirror batch/v1 Job: Complete (job Succeeded or SucceededReserving), Failed (job
	// Failed or FailedReserving), Stopped (job Stopped); and Running (job Running).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PhaseTransition is one phase change of a job, as dlcsync saw it.
type PhaseTransition struct {
	// phase is the phase the job changed to: status.phase when this was written (as its label
	// value, which a phase of the API reference always is).
	// +required
	// +kubebuilder:validation:MaxLength=63
	Phase string `json:"phase"`

	// from is the phase dlcsync saw before. Empty when the snapshot was created in this phase:
	// the change happened before dlcsync saw the job (a new query, or a job that was created and
	// changed between two syncs), so automation can tell a failure seen live from an old one.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	From string `json:"from,omitempty"`

	// seenAt is when dlcsync first wrote the job in this phase.
	// +required
	SeenAt metav1.MicroTime `json:"seenAt"`

	// key is "<jobId>/<phase>/<seenAt>", unique per job and transition: the id of the
	// CloudEvent that reports it, and the key a consumer dedupes on.
	// +required
	// +kubebuilder:validation:MaxLength=512
	Key string `json:"key"`
}

// DLCJobSnapshot mirrors one PAI-DLC job, as ListJobs last returned it, in the namespace of the
// JobQuery (or JobQueries) that matched it.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=djs,categories=dlc
// The default columns answer "what, whose, in what state, since when, for how long"; the
// job's own creation time (not the snapshot's Age, which only says when dlcsync first saw it)
// and everything else is in -o wide.
// +kubebuilder:printcolumn:name="Display Name",type=string,JSONPath=`.status.displayName`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.status.jobType`
// +kubebuilder:printcolumn:name="User",type=string,JSONPath=`.status.username`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Started",type=date,JSONPath=`.status.startedAt`,description="When the job started running"
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.durationText`,description="Final running time; empty until the job has ended"
// +kubebuilder:printcolumn:name="Job ID",type=string,JSONPath=`.spec.jobId`,priority=1
// +kubebuilder:printcolumn:name="Created",type=date,JSONPath=`.status.createdAt`,priority=1,description="When the job was created"
// +kubebuilder:printcolumn:name="Finished",type=date,JSONPath=`.status.finishedAt`,priority=1,description="When the job finished"
// +kubebuilder:printcolumn:name="Seconds",type=integer,JSONPath=`.status.duration`,priority=1,description="Running time in seconds"
// +kubebuilder:printcolumn:name="GPU",type=string,JSONPath=`.status.requestGPU`,priority=1
// +kubebuilder:printcolumn:name="Workspace",type=string,JSONPath=`.status.workspaceName`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reasonCode`,priority=1
// +kubebuilder:printcolumn:name="Query",type=string,JSONPath=`.status.matchedBy`,priority=1
type DLCJobSnapshot struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec identifies the job.
	// +required
	Spec DLCJobSnapshotSpec `json:"spec"`

	// status is the job's data.
	// +optional
	Status DLCJobSnapshotStatus `json:"status,omitempty"`
}

// DLCJobSnapshotList is a list of DLCJobSnapshot.
// +kubebuilder:object:root=true
type DLCJobSnapshotList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DLCJobSnapshot `json:"items"`
}
