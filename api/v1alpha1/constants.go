package v1alpha1

// Condition types of a JobQuery. They follow kstatus: Ready is the summary, Reconciling is True
// while a sync is in progress or pending after a spec change, Stalled is True when the controller
// cannot make progress until something changes (a bad filter, bad credentials).
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
	// ConditionCloudEventsDelivered is set on queries with spec.cloudEvents: True while events
	// reach the sink, False with SinkNotAllowed, DeliveryFailing or BacklogOverflowed. It does
	// not affect Ready: the mirror works whatever the sink does.
	ConditionCloudEventsDelivered = "CloudEventsDelivered"
)

// Reasons of the CloudEventsDelivered condition.
const (
	ReasonDelivering        = "Delivering"
	ReasonSinkNotAllowed    = "SinkNotAllowed"
	ReasonDeliveryFailing   = "DeliveryFailing"
	ReasonBacklogOverflowed = "BacklogOverflowed"
)

// CloudEvent types, one per kind of transition (CloudEventsSpec.types).
const (
	CloudEventTypeSucceeded    = "io.dlcsync.job.succeeded"
	CloudEventTypeFailed       = "io.dlcsync.job.failed"
	CloudEventTypeStopped      = "io.dlcsync.job.stopped"
	CloudEventTypeRunning      = "io.dlcsync.job.running"
	CloudEventTypePhaseChanged = "io.dlcsync.job.phasechanged"
)

// Condition types of a DLCJobSnapshot. Complete and Failed mirror batch/v1 Job so that
// `kubectl wait --for=condition=Complete` and `--for=condition=Failed` work unchanged: they are
// True once the job has ended that way, its reservation period (SucceededReserving,
// FailedReserving) included. Running is True while the job status is Running.
const (
	ConditionComplete = "Complete"
	ConditionFailed   = "Failed"
	ConditionStopped  = "Stopped"
	ConditionRunning  = "Running"
)

// Reasons set on JobQuery conditions. Each one names a cause a user can act on.
const (
	ReasonSynced                       = "Synced"
	ReasonJobsSkipped                  = "JobsSkipped"
	ReasonSuspended                    = "Suspended"
	ReasonThrottled                    = "Throttled"
	ReasonUnauthorized                 = "Unauthorized"
	ReasonForbidden                    = "Forbidden"
	ReasonInvalidFilter                = "InvalidFilter"
	ReasonEndpointUnreachable          = "EndpointUnreachable"
	ReasonServerError                  = "ServerError"
	ReasonInconsistentListing          = "InconsistentListing"
	ReasonSecretNotFound               = "SecretNotFound"
	ReasonInvalidSecret                = "InvalidSecret"
	ReasonAmbientCredentialsNotAllowed = "AmbientCredentialsNotAllowed"
	// ReasonRoleNotAllowed: credentials.ambient.roleArn names a role the operator's
	// --assumable-roles does not allow in the query's namespace; no request was sent.
	ReasonRoleNotAllowed = "RoleNotAllowed"
	ReasonCircuitOpen    = "CircuitOpen"
	// ReasonEndpointNotAllowed: spec.endpoint is neither a PAI-DLC HTTPS endpoint nor allowed by
	// the manager's --allowed-endpoints; no request was sent.
	ReasonEndpointNotAllowed = "EndpointNotAllowed"
	// ReasonSecretNotLabelled: the credentials Secret lacks the label dlc.dlcsync.io/credentials=true.
	ReasonSecretNotLabelled = "SecretNotLabelled"
	// ReasonSecretKeysNotDistinct: spec.credentials.secretRef names one Secret key for two of the
	// AccessKey ID, the AccessKey secret and the security token (admission refuses this; a query
	// stored before that rule is refused here); the Secret's data was not read, no request sent.
	ReasonSecretKeysNotDistinct = "SecretKeysNotDistinct"
	// ReasonRevealNotAllowed: spec.snapshot asks to reveal redacted fields in a namespace the
	// administrator did not allow (--reveal-namespaces).
	ReasonRevealNotAllowed = "RevealNotAllowed"
	// ReasonBadResponse: the endpoint's answer was not a ListJobs page dlcsync accepts (invalid or
	// truncated JSON, a body over the size limit, more jobs than asked for, a redirect, which is
	// never followed); retried.
	ReasonBadResponse = "BadResponse"
	// ReasonListingTooLarge: the listing would have held more than the memory budget of all
	// listings (--listing-memory) allows; nothing written. Retried with backoff when other syncs
	// held the budget; stalled when this listing alone exceeds it (looked at again every 10
	// minutes, at a spec change or a restart).
	ReasonListingTooLarge = "ListingTooLarge"
	// ReasonKubernetesError: reading or writing Kubernetes objects failed during a sync.
	ReasonKubernetesError = "KubernetesError"
	// ReasonSnapshotConflict: another writer changed snapshots during the sync; retried with backoff.
	ReasonSnapshotConflict = "SnapshotConflict"
	// ReasonSyncTimeout: the sync did not finish within its deadline (see docs/operating.md).
	ReasonSyncTimeout = "SyncTimeout"
	// ReasonSnapshotCRDOutdated: the apiserver dropped the status of a snapshot write: its
	// DLCJobSnapshot CRD still has the status subresource of an earlier release; retried.
	ReasonSnapshotCRDOutdated = "SnapshotCRDOutdated"
)

// Labels the controller sets on every DLCJobSnapshot, with values sanitised to label syntax, so
// users can select snapshots: `kubectl get djs -l dlc.dlcsync.io/status=Failed`.
const (
	LabelStatus      = "dlc.dlcsync.io/status"
	LabelJobType     = "dlc.dlcsync.io/job-type"
	LabelWorkspaceID = "dlc.dlcsync.io/workspace-id"
	LabelRegion      = "dlc.dlcsync.io/region"
	// LabelUser is the job's Username, as is when it is a valid label value, otherwise
	// sanitised and suffixed with a hash of the exact name (docs/api.md gives the rule).
	LabelUser = "dlc.dlcsync.io/user"
	// LabelOutcome is how the job ended, from the table that drives the conditions: Succeeded
	// (SucceededReserving, Succeeded), Failed (FailedReserving, Failed) or Stopped; absent while
	// the job has not ended. `-l dlc.dlcsync.io/outcome=Failed` selects every failed job, in its
	// reservation period too.
	LabelOutcome = "dlc.dlcsync.io/outcome"
)

// LabelCredentials marks a Secret that JobQueries of its namespace may use as credentials. A
// Secret without it is never read: a JobQuery could otherwise send any single-line value of its
// namespace (a database password) to an endpoint as an AccessKey ID.
const LabelCredentials = "dlc.dlcsync.io/credentials"

// AnnotationRequestedAt, set to any new value on a JobQuery, triggers an immediate sync; the value
// handled last is echoed in status.lastHandledReconcileAt (the convention of Flux's
// reconcile.fluxcd.io/requestedAt).
const AnnotationRequestedAt = "dlc.dlcsync.io/requestedAt"

// AnnotationHolders lists on a DLCJobSnapshot, as comma-separated name/uid pairs, the JobQueries
// that claim it without an owner reference (a query with deletionPolicy Orphan claims it this
// way, so that no garbage collection can take it). A snapshot belongs to a query whose UID is
// among its owner references or its holders.
const AnnotationHolders = "dlc.dlcsync.io/holders"

// AnnotationEndpoint records on a DLCJobSnapshot the endpoint its data came from ("" for the
// region's default endpoint). Together with spec.regionId it names the snapshot's source: a
// query with another region or endpoint never writes it, so that one query's endpoint cannot
// overwrite another's jobs.
const AnnotationEndpoint = "dlc.dlcsync.io/endpoint"

// Job statuses reported by PAI-DLC (the Status field of a job).
const (
	JobStatusCreating           = "Creating"
	JobStatusQueuing            = "Queuing"
	JobStatusBidding            = "Bidding"
	JobStatusEnvPreparing       = "EnvPreparing"
	JobStatusSanityChecking     = "SanityChecking"
	JobStatusRunning            = "Running"
	JobStatusRestarting         = "Restarting"
	JobStatusStopping           = "Stopping"
	JobStatusSucceededReserving = "SucceededReserving"
	JobStatusFailedReserving    = "FailedReserving"
	JobStatusSucceeded          = "Succeeded"
	JobStatusFailed             = "Failed"
	JobStatusStopped            = "Stopped"
)

// JobStatuses are the job statuses the API documents, in the order of its reference.
var JobStatuses = []string{JobStatusCreating, JobStatusQueuing, JobStatusBidding, JobStatusEnvPreparing,
	JobStatusSanityChecking, JobStatusRunning, JobStatusRestarting, JobStatusStopping, JobStatusSucceededReserving,
	JobStatusFailedReserving, JobStatusSucceeded, JobStatusFailed, JobStatusStopped}

// JobStatusOther is the key of status.jobStatusCounts that counts jobs in a status the API does
// not document (yet).
const JobStatusOther = "Other"
