package v1alpha1

// LabelCredentials marks a Secret that JobQueries of its namespace may use as credentials. A
// Secret without it is never read: a JobQuery could otherwise send any single-line value of its
// namespace (a database password) to an endpoint as an AccessKey ID.
const LabelCredentials = "dlc.dlcsync.io/credentials"

// Reasons of tenant-safety refusals and of failures that are not PAI-DLC's.
const (
	// ReasonEndpointNotAllowed: spec.endpoint is neither a PAI-DLC HTTPS endpoint nor allowed by
	// the manager's --allowed-endpoints; no request was sent.
	ReasonEndpointNotAllowed = "EndpointNotAllowed"
	// ReasonSecretNotLabelled: the credentials Secret lacks the label dlc.dlcsync.io/credentials=true.
	ReasonSecretNotLabelled = "SecretNotLabelled"
	// ReasonRevealNotAllowed: spec.snapshot asks to reveal redacted fields in a namespace the
	// administrator did not allow (--reveal-namespaces).
	ReasonRevealNotAllowed = "RevealNotAllowed"
	// ReasonBadResponse: the endpoint's answer was not a ListJobs page dlcsync accepts (invalid or
	// truncated JSON, a body over the size limit, more jobs than asked for); retried.
	ReasonBadResponse = "BadResponse"
	// ReasonKubernetesError: reading or writing Kubernetes objects failed during a sync.
	ReasonKubernetesError = "KubernetesError"
	// ReasonSnapshotConflict: another writer changed snapshots during the sync; retried with backoff.
	ReasonSnapshotConflict = "SnapshotConflict"
	// ReasonSyncTimeout: the sync did not finish within its deadline (see docs/operating.md).
	ReasonSyncTimeout = "SyncTimeout"
)

// AnnotationEndpoint records on a DLCJobSnapshot the endpoint its data came from ("" for the
// region's default endpoint). Together with spec.regionId it names the snapshot's source: a
// query with another region or endpoint never writes it, so that one query's endpoint cannot
// overwrite another's jobs.
const AnnotationEndpoint = "dlc.dlcsync.io/endpoint"
