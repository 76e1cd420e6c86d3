package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// JobQuerySpec says which PAI-DLC jobs to mirror, where to find them and how often to look.
// FullResyncInterval has no CRD default: a default of 1h would break this rule for every
// query with an interval above 1h. Unset means every hour (every sync for longer intervals).
// +kubebuilder:validation:XValidation:rule="!has(self.fullResyncInterval) || duration(self.fullResyncInterval) == duration('0s') || duration(self.fullResyncInterval) >= duration(has(self.interval) ? self.interval : '1m')",message="fullResyncInterval must be 0 (list in full at every sync) or at least interval"
type JobQuerySpec struct {
	// regionId is the Alibaba Cloud region whose PAI-DLC jobs are listed, e.g. cn-hangzhou.
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9]*(-[a-z0-9]+)+$`
	RegionID string `json:"regionId"`

	// endpoint overrides the PAI-DLC endpoint. Default: the region's, as the Alibaba Cloud SDK
	// resolves it: https://pai-dlc.<regionId>.aliyuncs.com for the public regions, the central
	// https://pai-dlc.aliyuncs.com for the regions its endpoint map sends there (cn-qingdao,
	// cn-zhangjiakou, cn-chengdu and others). Anything but PAI-DLC's own HTTPS endpoints, e.g.
	// http:// for a local simulator such as dlcsim, is called only where the operator's
	// --allowed-endpoints allows it (EndpointNotAllowed otherwise). Only scheme, host and port are
	// used; a path is rejected.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// CEL's url() exposes no userinfo or fragment, and it parses https://host:443@evil.example
	// as host evil.example; '@', '?' and '#' never belong in scheme://host[:port], so their mere
	// presence is refused, each with its own message.
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != '' && url(self).getEscapedPath() in ['', '/'] && url(self).getQuery().size() == 0",message="endpoint must be an http:// or https:// URL with a host, an optional port and no path or query"
	// +kubebuilder:validation:XValidation:rule="!self.contains('@')",message="endpoint must not contain userinfo (user:password@ or host:port@): credentials are never sent in a URL and the host must be the one before any @"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?')",message="endpoint must not contain a query (?...)"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="endpoint must not contain a fragment (#...)"
	Endpoint string `json:"endpoint,omitempty"`

	// credentials says how the operator signs its requests: exactly one of secretRef (an AccessKey
	// in a Secret of this namespace) or ambient (the operator's own credential chain).
	// +required
	Credentials Credentials `json:"credentials"`

	// interval is the time between two syncs, as a duration (e.g. 30s, 5m, 1h). Minimum 10s,
	// maximum 168h. Every sync is spread by ±10% jitter.
	// +optional
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s')",message="interval must be at least 10s"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('168h')",message="interval must be at most 168h"
	Interval metav1.Duration `json:"interval,omitempty"`

	// fullResyncInterval is how often the query lists every matching job. In between, a query
	// whose filter uses only fields fixed when a job is created (no status, reasonSearch,
	// numericRange, or timeRange on a field other than GmtCreateTime) lists only the jobs created
	// since the last sync and re-reads the jobs that are not yet Succeeded, Failed or Stopped, so
	// its API cost grows with change, not with history. The full listing also finds the terminal
	// jobs deleted in PAI-DLC. 0 (or 0s) turns incremental listing off: every sync lists every
	// job; there is no "never", because only a full listing finds deleted jobs. Otherwise at least
	// interval and at most 720h. Unset: every hour, or every sync when interval is longer.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('720h')",message="fullResyncInterval must be at most 720h"
	FullResyncInterval *metav1.Duration `json:"fullResyncInterval,omitempty"`

	// suspend stops syncing while true; existing snapshots stay as they are.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// filter holds the ListJobs filter parameters. Every field is optional; an empty filter lists
	// every job the credentials can see in the time window (by default the last 168h).
	// +optional
	// +kubebuilder:default={}
	Filter JobFilter `json:"filter,omitempty"`

	// sortBy is the order in which jobs are listed and, with maxJobs, which jobs are kept:
	// DisplayName, JobType, Status, GmtCreateTime or GmtFinishTime.
	// +optional
	// +kubebuilder:default=GmtCreateTime
	// +kubebuilder:validation:Enum=DisplayName;JobType;Status;GmtCreateTime;GmtFinishTime
	SortBy string `json:"sortBy,omitempty"`

	// order is the sort direction, asc or desc.
	// +optional
	// +kubebuilder:default=desc
	// +kubebuilder:validation:Enum=asc;desc
	Order string `json:"order,omitempty"`

	// maxJobs is the largest number of snapshots this query keeps: the first maxJobs jobs in the
	// sortBy/order order. When more jobs match, status.truncated is true and an event says so.
	// +optional
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxJobs int32 `json:"maxJobs,omitempty"`

	// snapshot says what the DLCJobSnapshots of this query contain and when they are removed.
	// +optional
	// +kubebuilder:default={}
	Snapshot SnapshotPolicy `json:"snapshot,omitempty"`

	// cloudEvents, when set, sends a CloudEvent (1.0, HTTP binary mode) to a sink for each phase
	// change of the jobs this query matches: at least once, across manager restarts and leader
	// failovers, without delaying the mirror. The sink must be allowed by the manager's
	// --allowed-sinks (by default in-cluster Service URLs only).
	// +optional
	CloudEvents *CloudEventsSpec `json:"cloudEvents,omitempty"`
}

// Credentials names exactly one source of Alibaba Cloud credentials.
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) != has(self.ambient)",message="exactly one of credentials.secretRef or credentials.ambient must be set"
type Credentials struct {
	// secretRef names a Secret in the JobQuery's own namespace that holds an AccessKey pair and,
	// optionally, an STS security token. Another namespace cannot be named.
	// +optional
	SecretRef *SecretCredentials `json:"secretRef,omitempty"`

	// ambient uses the operator's own credential chain (environment, RRSA/OIDC role, ECS RAM role),
	// or a RAM role assumed with it (ambient.roleArn). The operator's own identity is honoured
	// only in namespaces it allows with --ambient-credentials-namespaces, a role only where
	// --assumable-roles allows it.
	// +optional
	Ambient *AmbientCredentials `json:"ambient,omitempty"`
}

// SecretCredentials names a Secret of the JobQuery's namespace and the keys that hold each value.
// The three key names, defaults included, must differ: one key in two roles would send a
// value where another belongs, e.g. the AccessKey secret in clear as the security token header.
// The manager refuses such a query too (SecretKeysNotDistinct), for one stored before this rule.
// +kubebuilder:validation:XValidation:rule="(has(self.accessKeyIdKey) ? self.accessKeyIdKey : 'accessKeyId') != (has(self.accessKeySecretKey) ? self.accessKeySecretKey : 'accessKeySecret')",message="secretRef.accessKeyIdKey and accessKeySecretKey must name different keys: one value would be sent as both the AccessKey ID and the AccessKey secret"
// +kubebuilder:validation:XValidation:rule="(has(self.accessKeySecretKey) ? self.accessKeySecretKey : 'accessKeySecret') != (has(self.securityTokenKey) ? self.securityTokenKey : 'securityToken')",message="secretRef.accessKeySecretKey and securityTokenKey must name different keys: the AccessKey secret would be sent in clear as the security token header"
// +kubebuilder:validation:XValidation:rule="(has(self.accessKeyIdKey) ? self.accessKeyIdKey : 'accessKeyId') != (has(self.securityTokenKey) ? self.securityTokenKey : 'securityToken')",message="secretRef.accessKeyIdKey and securityTokenKey must name different keys: one value would be sent as both the AccessKey ID and the security token"
// +kubebuilder:validation:XValidation:rule="!has(self.accessKeyIdKey) || self.accessKeyIdKey != 'accessKeySecret'",message="secretRef.accessKeyIdKey must not name accessKeySecret, the conventional key of the AccessKey secret: the secret would be sent as the AccessKey ID header"
// +kubebuilder:validation:XValidation:rule="!has(self.securityTokenKey) || self.securityTokenKey != 'accessKeySecret'",message="secretRef.securityTokenKey must not name accessKeySecret, the conventional key of the AccessKey secret: the secret would be sent as the security token header"
type SecretCredentials struct {
	// name of the Secret, in the JobQuery's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// accessKeyIdKey is the key of the AccessKey ID in the Secret.
	// +optional
	// +kubebuilder:default=accessKeyId
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	AccessKeyIDKey string `json:"accessKeyIdKey,omitempty"`

	// accessKeySecretKey is the key of the AccessKey secret in the Secret.
	// +optional
	// +kubebuilder:default=accessKeySecret
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	AccessKeySecretKey string `json:"accessKeySecretKey,omitempty"`

	// securityTokenKey is the key of the optional STS security token in the Secret. When the key
	// is absent from the Secret, the AccessKey is used without a token.
	// +optional
	// +kubebuilder:default=securityToken
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	SecurityTokenKey string `json:"securityTokenKey,omitempty"`
}

// AmbientCredentials selects the operator's own credential chain, or a RAM role it assumes.
type AmbientCredentials struct {
	// roleArn is a RAM role the operator assumes (STS AssumeRole) with its own identity (RRSA,
	// ECS RAM role), to list jobs as that role: each team's queries see what its role may see.
	// The role's trust policy must trust the operator's identity, and the operator must allow
	// the role in the query's namespace (--assumable-roles; RoleNotAllowed otherwise). Empty:
	// the operator's own identity, allowed by --ambient-credentials-namespaces.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^acs:ram::[0-9]+:role/[A-Za-z0-9.-]{1,64}$`
	RoleArn string `json:"roleArn,omitempty"`
}

// JobFilter holds one optional field per ListJobs filter parameter. Unset fields are not sent.
// +kubebuilder:validation:XValidation:rule="!has(self.fromAllWorkspaces) || !self.fromAllWorkspaces || !has(self.showOwn) || self.showOwn",message="filter.fromAllWorkspaces lists the caller's own jobs only: remove showOwn: false, or fromAllWorkspaces"
// +kubebuilder:validation:XValidation:rule="!has(self.displayNameSearchMode) || (has(self.displayName) && size(self.displayName) > 0)",message="filter.displayNameSearchMode requires a non-empty filter.displayName"
type JobFilter struct {
	// displayName filters on the job name; by default a case-insensitive substring match.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	DisplayName string `json:"displayName,omitempty"`

	// displayNameSearchMode says how displayName matches: prefix, fulltext (whole words),
	// term (the exact name) or wildcard (the API's default).
	// +optional
	// +kubebuilder:validation:Enum=prefix;fulltext;term;wildcard
	DisplayNameSearchMode string `json:"displayNameSearchMode,omitempty"`

	// description filters on the job description (the API's Description parameter).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// jobType keeps only jobs of this type: the five values the API reference documents for the
	// JobType parameter. (Jobs may report other types, e.g. MPIJob or RayJob, which the
	// reference does not list as filter values.)
	// +optional
	// +kubebuilder:validation:Enum=TFJob;PyTorchJob;XGBoostJob;OneFlowJob;ElasticBatchJob
	JobType string `json:"jobType,omitempty"`

	// status keeps only jobs in this status.
	// +optional
	// +kubebuilder:validation:Enum=Creating;Queuing;Bidding;EnvPreparing;SanityChecking;Running;Restarting;Stopping;SucceededReserving;FailedReserving;Succeeded;Failed;Stopped
	Status string `json:"status,omitempty"`

	// workspaceId keeps only jobs of this workspace.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	WorkspaceID string `json:"workspaceId,omitempty"`

	// fromAllWorkspaces lists the caller's own jobs across every workspace. The API requires
	// ShowOwn=true with it, so dlcsync sends ShowOwn=true when showOwn is unset; showOwn: false
	// with it is refused.
	// +optional
	FromAllWorkspaces *bool `json:"fromAllWorkspaces,omitempty"`

	// showOwn keeps only jobs submitted by the identity behind the credentials. Unlike the API,
	// whose metadata defaults it to true, dlcsync always sends it: false unless set here, or true
	// when fromAllWorkspaces is.
	// +optional
	ShowOwn *bool `json:"showOwn,omitempty"`

	// resourceId keeps only jobs of this resource group (quota).
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ResourceID string `json:"resourceId,omitempty"`

	// resourceIds keeps only jobs of any of these resource groups (sent comma-separated).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:Pattern=`^[^,]+$`
	ResourceIDs []string `json:"resourceIds,omitempty"`

	// businessUserId keeps only jobs associated with this business user ID.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	BusinessUserID string `json:"businessUserId,omitempty"`

	// caller keeps only jobs submitted by this caller, e.g. local.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Caller string `json:"caller,omitempty"`

	// tags keeps only jobs that carry every one of these tags with these values. At most 20; keys
	// 1-128 characters, values at most 128 (Alibaba Cloud's tag limits).
	// +optional
	// +kubebuilder:validation:MaxProperties=20
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 128)",message="filter.tags keys must be 1 to 128 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(self[k]) <= 128)",message="filter.tags values must be at most 128 characters"
	Tags map[string]string `json:"tags,omitempty"`

	// pipelineId keeps only jobs created by this workflow, e.g. flow-abc.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	PipelineID string `json:"pipelineId,omitempty"`

	// jobId keeps only the job with this ID (case-insensitive). It takes precedence over jobIds.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	JobID string `json:"jobId,omitempty"`

	// jobIds keeps only jobs with these IDs (sent comma-separated).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:Pattern=`^[^,]+$`
	JobIDs []string `json:"jobIds,omitempty"`

	// userIdForFilter keeps only jobs submitted by this user ID.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	UserIDForFilter string `json:"userIdForFilter,omitempty"`

	// username keeps only jobs whose submitter name contains this text (case-insensitive).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Username string `json:"username,omitempty"`

	// resourceQuotaName keeps only jobs whose resource quota name contains this text.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ResourceQuotaName string `json:"resourceQuotaName,omitempty"`

	// accessibility keeps only PUBLIC or only PRIVATE jobs.
	// +optional
	// +kubebuilder:validation:Enum=PUBLIC;PRIVATE
	Accessibility string `json:"accessibility,omitempty"`

	// oversoldInfo filters on idle-resource usage.
	// +optional
	// +kubebuilder:validation:Enum=ForbiddenQuotaOverSold;ForceQuotaOverSold;AcceptQuotaOverSold-true;AcceptQuotaOverSold-false
	OversoldInfo string `json:"oversoldInfo,omitempty"`

	// paymentType keeps only jobs paid this way: PrePaid (quota), Spot or PostPaid (public resources).
	// +optional
	// +kubebuilder:validation:Enum=PrePaid;Spot;PostPaid
	PaymentType string `json:"paymentType,omitempty"`

	// reasonSearch is a full-text search in the failure reason, e.g. OOM.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	ReasonSearch string `json:"reasonSearch,omitempty"`

	// userCommandSearch is a full-text search in the user command, e.g. train.py.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	UserCommandSearch string `json:"userCommandSearch,omitempty"`

	// imageSearch is a full-text search in the job images, e.g. pytorch.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	ImageSearch string `json:"imageSearch,omitempty"`

	// enableAssignNode keeps only jobs that may (true) or may not (false) run on assigned nodes.
	// +optional
	EnableAssignNode *bool `json:"enableAssignNode,omitempty"`

	// templateId keeps only jobs created from this job template.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	TemplateID string `json:"templateId,omitempty"`

	// numericRange keeps only jobs whose numeric field lies in [min, max] (both inclusive).
	// +optional
	NumericRange *NumericRange `json:"numericRange,omitempty"`

	// timeRange is the time window jobs must fall in. Default: created within the last 168h.
	// The end of a relative window is pinned when each sync starts.
	// +optional
	// +kubebuilder:default={field: GmtCreateTime, within: "168h"}
	TimeRange *TimeRange `json:"timeRange,omitempty"`
}

// NumericRange is an inclusive range on one numeric job field.
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="numericRange needs min, max or both"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="numericRange.min must be less than or equal to numericRange.max"
type NumericRange struct {
	// field is the job field compared. Only RequestGPU is accepted: it is the only field the API
	// reference documents for NumericRangeField.
	// +required
	// +kubebuilder:validation:Enum=RequestGPU
	Field string `json:"field"`

	// min is the lower bound, inclusive.
	// +optional
	Min *int64 `json:"min,omitempty"`

	// max is the upper bound, inclusive.
	// +optional
	Max *int64 `json:"max,omitempty"`
}

// TimeRange is either a relative window (within) ending when a sync starts, or an absolute one
// (start, optionally with end).
// An end without a start would leave the start to the API's default (now minus 7 days),
// a window that moves, can be empty and can end before it starts; it is refused instead of being
// given a meaning the API does not have. start and end have format date-time, which CEL compares
// as timestamps (instants), not as strings, so 01:30+01:00 equals 00:30Z.
// +kubebuilder:validation:XValidation:rule="!(has(self.within) && (has(self.start) || has(self.end)))",message="timeRange.within and timeRange.start/end are mutually exclusive"
// +kubebuilder:validation:XValidation:rule="has(self.within) || has(self.start) || has(self.end)",message="timeRange needs within, or start and/or end"
// +kubebuilder:validation:XValidation:rule="!has(self.end) || has(self.start)",message="timeRange.end needs timeRange.start: set start too, or use within for a window ending when each sync starts"
// +kubebuilder:validation:XValidation:rule="!has(self.start) || !has(self.end) || self.start < self.end",message="timeRange.start must be before timeRange.end"
type TimeRange struct {
	// field is the job time the window applies to: GmtCreateTime (the API's default) or
	// GmtFinishTime, the values the API reference documents for TimeRangeField.
	// +optional
	// +kubebuilder:default=GmtCreateTime
	// +kubebuilder:validation:Enum=GmtCreateTime;GmtFinishTime
	Field string `json:"field,omitempty"`

	// within is a window ending now, e.g. 168h, at most 8760h (a year). Exclusive with start and end.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="timeRange.within must be positive"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('8760h')",message="timeRange.within must be at most 8760h"
	Within *metav1.Duration `json:"within,omitempty"`

	// start is the beginning of an absolute window (RFC 3339, e.g. 2026-01-02T03:04:05Z).
	// +optional
	Start *metav1.Time `json:"start,omitempty"`

	// end is the end of an absolute window (RFC 3339); it needs start. Default: the time a sync
	// starts.
	// +optional
	End *metav1.Time `json:"end,omitempty"`
}

// SnapshotPolicy says what DLCJobSnapshots contain and when they are removed.
type SnapshotPolicy struct {
	// includeEnvValues is deprecated: use reveal: [EnvValues], which it is an alias of.
	// +optional
	IncludeEnvValues bool `json:"includeEnvValues,omitempty"`

	// reveal lists the field groups whose values snapshots copy as they are. Every other group is
	// redacted by default, because anyone who may read snapshots (the view role) would read them:
	// values become [REDACTED], names and keys stay visible. Groups: EnvValues (values of envs,
	// systemEnvs and container env), Commands (userCommand, userScript, container command and
	// args, lifecycle exec commands), Settings (settings.advancedSettings, sanityCheckArgs,
	// errorMonitoringArgs), Libraries (thirdpartyLibs, which may hold index URLs with passwords),
	// PodAnnotations (extraPodSpec.podAnnotations values). Registry passwords, credential tokens
	// and the userinfo of any URL are redacted always. The operator may refuse reveal in some
	// namespaces.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=5
	Reveal []RevealGroup `json:"reveal,omitempty"`

	// prunePolicy says what happens to the snapshot of a job that no longer matches: Delete
	// removes it, Retain keeps it with status.matching false.
	// +optional
	// +kubebuilder:default=Delete
	// +kubebuilder:validation:Enum=Delete;Retain
	PrunePolicy string `json:"prunePolicy,omitempty"`

	// deletionPolicy says what happens to snapshots when the JobQuery is deleted: Delete removes
	// them (unless another JobQuery still matches them), Orphan keeps them.
	// +optional
	// +kubebuilder:default=Delete
	// +kubebuilder:validation:Enum=Delete;Orphan
	DeletionPolicy string `json:"deletionPolicy,omitempty"`
}

// RevealGroup names a group of snapshot fields that may carry secrets and are redacted unless a
// JobQuery reveals them.
// +kubebuilder:validation:Enum=EnvValues;Commands;Settings;Libraries;PodAnnotations
type RevealGroup string

// Values of SnapshotPolicy.Reveal.
const (
	RevealEnvValues      RevealGroup = "EnvValues"
	RevealCommands       RevealGroup = "Commands"
	RevealSettings       RevealGroup = "Settings"
	RevealLibraries      RevealGroup = "Libraries"
	RevealPodAnnotations RevealGroup = "PodAnnotations"
)

// RevealGroups are all the groups of SnapshotPolicy.Reveal.
var RevealGroups = []RevealGroup{RevealEnvValues, RevealCommands, RevealSettings, RevealLibraries, RevealPodAnnotations}

// Values of SyncStats.Mode.
const (
	SyncModeFull        = "Full"
	SyncModeIncremental = "Incremental"
)

// Policy values of SnapshotPolicy.
const (
	PrunePolicyDelete    = "Delete"
	PrunePolicyRetain    = "Retain"
	DeletionPolicyDelete = "Delete"
	DeletionPolicyOrphan = "Orphan"
)

// JobQueryStatus is what the controller last observed and did.
type JobQueryStatus struct {
	// observedGeneration is the generation of the spec that the last completed sync used.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (the summary), Reconciling and Stalled, kstatus-compatible.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// lastSyncTime is when the last sync attempt started, successful or not. A sync that finds
	// nothing new writes no snapshot, and writes this status only to keep it fresh: at most once
	// per 5m (the manager's --status-refresh-interval), at every sync for longer intervals. On a
	// healthy query it is so never older than that plus one interval. The metric
	// dlcsync_last_sync_timestamp_seconds tracks every sync.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// lastSuccessfulSyncTime is when the last successful sync started, refreshed like
	// lastSyncTime. It stops moving while syncs fail or the query is stalled, so its age (the
	// LAST SUCCESS column) shows a stuck query.
	// +optional
	LastSuccessfulSyncTime *metav1.Time `json:"lastSuccessfulSyncTime,omitempty"`

	// nextSyncTime is when the next periodic sync was planned when this status was written.
	// +optional
	NextSyncTime *metav1.Time `json:"nextSyncTime,omitempty"`

	// lastHandledReconcileAt is the value of the dlc.dlcsync.io/requestedAt annotation that the
	// last sync acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// matchedJobs is the number of jobs that match the filter (the API's TotalCount).
	// +optional
	MatchedJobs int64 `json:"matchedJobs,omitempty"`

	// snapshots is the number of DLCJobSnapshots this query keeps now.
	// +optional
	Snapshots int32 `json:"snapshots,omitempty"`

	// truncated is true when more jobs matched than spec.maxJobs allows.
	// +optional
	Truncated bool `json:"truncated,omitempty"`

	// jobStatusCounts counts the kept jobs by job status: one key per status of the API (13) that
	// has jobs, plus Other for statuses the API may add later.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	JobStatusCounts map[string]int32 `json:"jobStatusCounts,omitempty"`

	// lastSyncStats describes the work of the sync that started at lastSyncTime; it is always
	// written together with lastSyncTime, never on its own.
	// +optional
	LastSyncStats *SyncStats `json:"lastSyncStats,omitempty"`
	// incremental is what incremental listing needs after a manager restart (IncrementalState).
	// +optional
	Incremental *IncrementalState `json:"incremental,omitempty"`

	// consecutiveFailures counts the syncs that failed since the last success; retries back off
	// with it.
	// +optional
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`

	// cloudEvents is the delivery state of spec.cloudEvents; the CloudEventsDelivered condition
	// says whether delivery works.
	// +optional
	CloudEvents *CloudEventsStatus `json:"cloudEvents,omitempty"`

	// observedCredentialsVersion is the resourceVersion of the credentials Secret the last sync
	// used ("ambient" for the operator's chain); a new version triggers a sync.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ObservedCredentialsVersion string `json:"observedCredentialsVersion,omitempty"`
}

// CloudEventsSpec names the sink of a query's CloudEvents and the transitions it wants.
type CloudEventsSpec struct {
	// sink is where the events are POSTed.
	// +required
	Sink Sink `json:"sink"`

	// types are the kinds of transition to send: Succeeded, Failed and Stopped (the job entered
	// that end, at its first phase there: FailedReserving or Failed), Running (the job started
	// or resumed running), PhaseChanged (any other phase change). Each phase change is exactly
	// one of them. Default: Succeeded, Failed, Stopped.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:Enum=Succeeded;Failed;Stopped;Running;PhaseChanged
	Types []string `json:"types,omitempty"`
}

// Sink is an addressable HTTP endpoint.
type Sink struct {
	// uri is an absolute http:// or https:// URL, e.g. the URL of a Knative Broker, an Argo
	// Events webhook EventSource or a Tekton EventListener Service. No userinfo or fragment.
	// +required
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="sink.uri must be an http:// or https:// URL with a host"
	// +kubebuilder:validation:XValidation:rule="!self.contains('@')",message="sink.uri must not contain userinfo (user:password@): the host must be the one before any @"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="sink.uri must not contain a fragment (#...)"
	URI string `json:"uri"`
}

// CloudEventsStatus is the delivery state of a query's CloudEvents.
type CloudEventsStatus struct {
	// sink is the URI this state is about; a new sink starts over.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Sink string `json:"sink,omitempty"`

	// since is when this sink was configured. A job that dlcsync first sees after it had already
	// ended (or, for a job not ended, after it was created) is sent only if that happened after
	// this time: a new query over a workspace's history sends nothing for the old jobs.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`

	// deliveredThrough: every transition of this query's jobs that dlcsync first saw at or before
	// this time has been delivered (or dropped and counted). A new leader sends the transitions
	// after it, and only those: after a restart or failover the transitions delivered since
	// this was last written are the only ones sent twice. Set to the time the sink was
	// configured when it is new, so a sink added later gets only the changes after it.
	// +optional
	DeliveredThrough *metav1.MicroTime `json:"deliveredThrough,omitempty"`

	// backlog is the number of transitions waiting for delivery when this was written.
	// +optional
	Backlog int32 `json:"backlog,omitempty"`

	// dropped counts the transitions this sink never received because its backlog was full
	// (the manager's --cloudevents-backlog); their snapshots still carry status.transition.
	// +optional
	Dropped int64 `json:"dropped,omitempty"`
}

// SyncStats counts the work of one sync.
type SyncStats struct {
	// apiCalls is the number of ListJobs requests sent, retries included.
	// +required
	APICalls int32 `json:"apiCalls"`
	// pages is the number of result pages read.
	// +required
	Pages int32 `json:"pages"`
	// retries is the number of requests that were retried.
	// +optional
	Retries int32 `json:"retries,omitempty"`
	// created is the number of snapshots created.
	// +required
	Created int32 `json:"created"`
	// updated is the number of snapshots whose content changed.
	// +required
	Updated int32 `json:"updated"`
	// deleted is the number of snapshots deleted (or released by this query).
	// +required
	Deleted int32 `json:"deleted"`
	// unchanged is the number of snapshots left as they were.
	// +required
	Unchanged int32 `json:"unchanged"`
	// mode is how the sync listed: Full (every matching job) or Incremental (new jobs and jobs
	// not yet terminal).
	// +optional
	// +kubebuilder:validation:Enum=Full;Incremental
	Mode string `json:"mode,omitempty"`
	// duration is how long the sync took.
	// +kubebuilder:validation:Type=string
	// +required
	Duration metav1.Duration `json:"duration"`
}

// JobQuery mirrors the PAI-DLC jobs that match a ListJobs filter as DLCJobSnapshots in its
// namespace, and keeps them in step every interval.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=jq,categories=dlc
// LAST SUCCESS, not the last attempt, is the default freshness column: a query that keeps
// failing attempts syncs all the time, and only the age of its last success shows it is stuck.
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.regionId`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Matched",type=integer,JSONPath=`.status.matchedJobs`
// +kubebuilder:printcolumn:name="Snapshots",type=integer,JSONPath=`.status.snapshots`
// +kubebuilder:printcolumn:name="Last Success",type=date,JSONPath=`.status.lastSuccessfulSyncTime`,description="Start of the last successful sync; on a healthy query younger than 5m plus one interval"
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.interval`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Last Sync",type=date,JSONPath=`.status.lastSyncTime`,priority=1,description="Start of the last sync attempt"
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.status.lastSyncStats.mode`,priority=1
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`,priority=1
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
type JobQuery struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which jobs to mirror.
	// +required
	Spec JobQuerySpec `json:"spec"`

	// status is what the controller last observed.
	// +optional
	Status JobQueryStatus `json:"status,omitempty"`
}

// JobQueryList is a list of JobQuery.
// +kubebuilder:object:root=true
type JobQueryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []JobQuery `json:"items"`
}
