package dlc

// The types in this file are the JobItem of the PAI-DLC ListJobs response (API version 2020-12-03)
// with the API's JSON names and types, as listed in the API reference. Decoding is lenient like the
// official SDK's (see decode.go): a number where a string is expected, or a numeric string where a
// number is expected, is accepted. api/v1alpha1 has the same shape in camelCase for the CRD.

// JobItem is one PAI-DLC job as ListJobs returns it.
type JobItem struct {
	// JobId is the job ID, e.g. dlc-20210126170216-mtl37ge7gkvdz.
	JobID string `json:"JobId,omitempty"`
	// DisplayName is the job name.
	DisplayName string `json:"DisplayName,omitempty"`
	// JobType is the job type, e.g. TFJob, PyTorchJob, MPIJob, RayJob.
	JobType string `json:"JobType,omitempty"`
	// Status is the job status, e.g. Running.
	Status string `json:"Status,omitempty"`
	// SubStatus is the job sub-status, e.g. Restarting after a preemption.
	SubStatus string `json:"SubStatus,omitempty"`
	// ReasonCode says why the job is in its status, e.g. JobStoppedByUser.
	ReasonCode string `json:"ReasonCode,omitempty"`
	// ReasonMessage is the detailed reason.
	ReasonMessage string `json:"ReasonMessage,omitempty"`
	// StatusHistory lists the statuses the job went through.
	StatusHistory []StatusTransitionItem `json:"StatusHistory,omitempty"`
	// Accessibility is PUBLIC or PRIVATE.
	Accessibility string `json:"Accessibility,omitempty"`
	// WorkspaceId is the workspace the job belongs to.
	WorkspaceID string `json:"WorkspaceId,omitempty"`
	// WorkspaceName is the name of that workspace.
	WorkspaceName string `json:"WorkspaceName,omitempty"`
	// UserId is the UID of the job owner.
	UserID string `json:"UserId,omitempty"`
	// Username is the name of the submitter.
	Username string `json:"Username,omitempty"`
	// TenantId is the tenant ID.
	TenantID string `json:"TenantId,omitempty"`
	// ClusterId is the cluster ID.
	ClusterID string `json:"ClusterId,omitempty"`
	// ResourceId is the resource group (quota) the job runs in.
	ResourceID string `json:"ResourceId,omitempty"`
	// ResourceName is the name of the resource the job runs on.
	ResourceName string `json:"ResourceName,omitempty"`
	// ResourceQuotaName is the resource quota name.
	ResourceQuotaName string `json:"ResourceQuotaName,omitempty"`
	// ResourceLevel is the resource level at run time, e.g. L0.
	ResourceLevel string `json:"ResourceLevel,omitempty"`
	// ResourceType is ECS, Lingjun or ACS.
	ResourceType string `json:"ResourceType,omitempty"`
	// Priority is the job priority (1-9).
	Priority *int32 `json:"Priority,omitempty"`
	// Duration is the running time in seconds.
	Duration *int64 `json:"Duration,omitempty"`
	// JobMaxRunningTimeMinutes is the maximum running time in minutes (0: unlimited).
	JobMaxRunningTimeMinutes *int64 `json:"JobMaxRunningTimeMinutes,omitempty"`
	// RequestCPU is the requested CPU.
	RequestCPU *int64 `json:"RequestCPU,omitempty"`
	// RequestGPU is the requested GPU count, a string in the API.
	RequestGPU string `json:"RequestGPU,omitempty"`
	// RequestMemory is the requested memory, e.g. 1Gi.
	RequestMemory string `json:"RequestMemory,omitempty"`
	// NodeCount is the number of nodes, a string in the API.
	NodeCount string `json:"NodeCount,omitempty"`
	// NodeNames lists the nodes the job runs on.
	NodeNames []string `json:"NodeNames,omitempty"`
	// RestartTimes is how often the job restarted, a string in the API.
	RestartTimes string `json:"RestartTimes,omitempty"`
	// RetryCount is the retry count.
	RetryCount *int32 `json:"RetryCount,omitempty"`
	// SchedulingStrategy is the scheduling strategy.
	SchedulingStrategy string `json:"SchedulingStrategy,omitempty"`
	// UseOversoldResource is true when the job uses idle resources.
	UseOversoldResource *bool `json:"UseOversoldResource,omitempty"`
	// EnablePreemptibleJob is true for a preemptible job.
	EnablePreemptibleJob *bool `json:"EnablePreemptibleJob,omitempty"`
	// EnabledDebugger is true when debugger analysis is on.
	EnabledDebugger *bool `json:"EnabledDebugger,omitempty"`
	// IsDeleted is true for a deleted job.
	IsDeleted *bool `json:"IsDeleted,omitempty"`
	// GmtCreateTime is when the job was created (UTC, 2006-01-02T15:04:05Z).
	GmtCreateTime string `json:"GmtCreateTime,omitempty"`
	// GmtSubmittedTime is when the job was submitted.
	GmtSubmittedTime string `json:"GmtSubmittedTime,omitempty"`
	// GmtRunningTime is when the job started running.
	GmtRunningTime string `json:"GmtRunningTime,omitempty"`
	// GmtSuccessedTime is when the job succeeded (the API's spelling).
	GmtSuccessedTime string `json:"GmtSuccessedTime,omitempty"`
	// GmtFailedTime is when the job failed.
	GmtFailedTime string `json:"GmtFailedTime,omitempty"`
	// GmtStoppedTime is when the job was stopped.
	GmtStoppedTime string `json:"GmtStoppedTime,omitempty"`
	// GmtFinishTime is when the job finished.
	GmtFinishTime string `json:"GmtFinishTime,omitempty"`
	// GmtModifiedTime is when the job was last modified.
	GmtModifiedTime string `json:"GmtModifiedTime,omitempty"`
	// JobSpecs holds the node configuration of each role.
	JobSpecs []JobSpec `json:"JobSpecs,omitempty"`
	// JobReplicaStatuses holds the replica counters of each role.
	JobReplicaStatuses []JobReplicaStatus `json:"JobReplicaStatuses,omitempty"`
	// Pods lists the pods of the job.
	Pods []PodItem `json:"Pods,omitempty"`
	// ElasticSpec holds the elastic training parameters.
	ElasticSpec *JobElasticSpec `json:"ElasticSpec,omitempty"`
	// Settings holds extra job settings.
	Settings *JobSettings `json:"Settings,omitempty"`
	// CredentialConfig holds the credential injection settings (tokens are always redacted).
	CredentialConfig *CredentialConfig `json:"CredentialConfig,omitempty"`
	// CodeSource is the code source used.
	CodeSource *CodeSource `json:"CodeSource,omitempty"`
	// DataSources lists the data sources used.
	DataSources []DataSource `json:"DataSources,omitempty"`
	// UserVpc holds the user VPC settings.
	UserVpc *UserVpc `json:"UserVpc,omitempty"`
	// UserCommand is the start command run on every node.
	UserCommand string `json:"UserCommand,omitempty"`
	// UserScript is the user script.
	UserScript string `json:"UserScript,omitempty"`
	// WorkingDir is the working directory.
	WorkingDir string `json:"WorkingDir,omitempty"`
	// Envs holds the environment variables injected at run time. Values are redacted unless the
	// JobQuery sets snapshot.includeEnvValues.
	Envs map[string]string `json:"Envs,omitempty"`
	// SystemEnvs holds the system environment variables, redacted like envs.
	SystemEnvs map[string]string `json:"SystemEnvs,omitempty"`
	// ThirdpartyLibs lists the Python libraries installed before the run.
	ThirdpartyLibs []string `json:"ThirdpartyLibs,omitempty"`
	// ThirdpartyLibDir is the directory that holds requirements.txt.
	ThirdpartyLibDir string `json:"ThirdpartyLibDir,omitempty"`
	// TemplateId is the job template the job came from.
	TemplateID string `json:"TemplateId,omitempty"`
	// TemplateName is the name of that template.
	TemplateName string `json:"TemplateName,omitempty"`
	// supportedProfilingTypes lists the supported profiling types, e.g. sysom.
	SupportedProfilingTypes string `json:"supportedProfilingTypes,omitempty"`
}

// StatusTransitionItem is one status a job went through.
type StatusTransitionItem struct {
	// Status is the job status of this period.
	Status string `json:"Status,omitempty"`
	// StartTime is when the period began.
	StartTime string `json:"StartTime,omitempty"`
	// EndTime is when it ended.
	EndTime string `json:"EndTime,omitempty"`
	// ReasonCode is the reason code of the period.
	ReasonCode string `json:"ReasonCode,omitempty"`
	// ReasonMessage is the reason message of the period.
	ReasonMessage string `json:"ReasonMessage,omitempty"`
}

// JobReplicaStatus counts the replicas of one role.
type JobReplicaStatus struct {
	// Type is the role, e.g. Worker.
	Type string `json:"Type,omitempty"`
	// Active is the number of active pods.
	Active *int32 `json:"Active,omitempty"`
	// Queuing is the number of queuing pods.
	Queuing *int32 `json:"Queuing,omitempty"`
	// Dequeued is the number of dequeued pods.
	Dequeued *int32 `json:"Dequeued,omitempty"`
	// EstimatedPodCount is the estimated pod count (auto scaling).
	EstimatedPodCount *int64 `json:"EstimatedPodCount,omitempty"`
	// EstimatedResourceConfig is the estimated resource configuration.
	EstimatedResourceConfig *ResourceConfig `json:"EstimatedResourceConfig,omitempty"`
	// EstimatedAutoScalingSpec is the estimated auto scaling configuration.
	EstimatedAutoScalingSpec *AutoScalingSpec `json:"EstimatedAutoScalingSpec,omitempty"`
	// CurrentSpotInstanceType is the spot instance type in use.
	CurrentSpotInstanceType string `json:"CurrentSpotInstanceType,omitempty"`
}

// PodItem is one pod of a job.
type PodItem struct {
	// PodId is the pod ID.
	PodID string `json:"PodId,omitempty"`
	// PodUid is the pod UID.
	PodUID string `json:"PodUid,omitempty"`
	// Type is the role of the pod, e.g. Worker.
	Type string `json:"Type,omitempty"`
	// Status is the pod status, e.g. Running.
	Status string `json:"Status,omitempty"`
	// SubStatus is the pod sub-status, e.g. Evicted.
	SubStatus string `json:"SubStatus,omitempty"`
	// Ip is the pod IP.
	IP string `json:"Ip,omitempty"`
	// PodIp is the pod IP.
	PodIP string `json:"PodIp,omitempty"`
	// PodIps lists the network interfaces of the pod.
	PodIPs []PodNetworkInterface `json:"PodIps,omitempty"`
	// NodeName is the node the pod runs on.
	NodeName string `json:"NodeName,omitempty"`
	// GmtCreateTime is when the pod was created.
	GmtCreateTime string `json:"GmtCreateTime,omitempty"`
	// GmtStartTime is when the pod started.
	GmtStartTime string `json:"GmtStartTime,omitempty"`
	// GmtFinishTime is when the pod finished.
	GmtFinishTime string `json:"GmtFinishTime,omitempty"`
	// HistoryPods lists earlier incarnations of the pod (without their own history).
	HistoryPods []PodItem `json:"HistoryPods,omitempty"`
	// supportedProfilingTypes lists the supported profiling types.
	SupportedProfilingTypes string `json:"supportedProfilingTypes,omitempty"`
}

// PodNetworkInterface is one network interface of a pod.
type PodNetworkInterface struct {
	// InterfaceName is the interface name.
	InterfaceName string `json:"InterfaceName,omitempty"`
	// Ip is its IP.
	IP string `json:"Ip,omitempty"`
}

// JobSpec is the node configuration of one role.
type JobSpec struct {
	// Type is the role, e.g. Worker, Master, Chief, PS.
	Type string `json:"Type,omitempty"`
	// Image is the image of the role.
	Image string `json:"Image,omitempty"`
	// ImageConfig holds private registry settings (password and auth are always redacted).
	ImageConfig *ImageConfig `json:"ImageConfig,omitempty"`
	// PodCount is the number of replicas.
	PodCount *int64 `json:"PodCount,omitempty"`
	// EcsSpec is the instance type, e.g. ecs.c6.large.
	EcsSpec string `json:"EcsSpec,omitempty"`
	// ResourceConfig holds the resources of each pod.
	ResourceConfig *ResourceConfig `json:"ResourceConfig,omitempty"`
	// RestartPolicy is Always, Never, OnFailure or ExitCode.
	RestartPolicy string `json:"RestartPolicy,omitempty"`
	// IsChief is true for the chief role.
	IsChief *bool `json:"IsChief,omitempty"`
	// IsCheif is the deprecated misspelling of isChief, kept as the API sends it.
	IsCheif *bool `json:"IsCheif,omitempty"`
	// ConsiderInSuccessPolicy is true when the role counts for success under a Partial policy.
	ConsiderInSuccessPolicy *bool `json:"ConsiderInSuccessPolicy,omitempty"`
	// UseSpotInstance is deprecated.
	UseSpotInstance *bool `json:"UseSpotInstance,omitempty"`
	// SpotSpec holds spot settings.
	SpotSpec *SpotSpec `json:"SpotSpec,omitempty"`
	// ElasticSpotSpecs holds elastic spot settings.
	ElasticSpotSpecs []ElasticSpotSpec `json:"ElasticSpotSpecs,omitempty"`
	// AutoScalingSpec holds auto scaling settings.
	AutoScalingSpec *AutoScalingSpec `json:"AutoScalingSpec,omitempty"`
	// AssignNodeSpec holds node pinning settings.
	AssignNodeSpec *AssignNodeSpec `json:"AssignNodeSpec,omitempty"`
	// HyperNodeSchedulingConfig holds hyper node scheduling settings.
	HyperNodeSchedulingConfig *HyperNodeSchedulingConfig `json:"HyperNodeSchedulingConfig,omitempty"`
	// ExtraPodSpec holds extra pod settings.
	ExtraPodSpec *ExtraPodSpec `json:"ExtraPodSpec,omitempty"`
	// ServiceSpec holds service exposure settings.
	ServiceSpec *ServiceSpec `json:"ServiceSpec,omitempty"`
	// LocalMountSpecs lists local mounts.
	LocalMountSpecs []LocalMountSpec `json:"LocalMountSpecs,omitempty"`
	// StartupDependencies lists roles that must be ready first.
	StartupDependencies []StartupDependency `json:"StartupDependencies,omitempty"`
	// SystemDisk holds system disk settings.
	SystemDisk *SystemDisk `json:"SystemDisk,omitempty"`
	// OversoldType is the oversold type.
	OversoldType string `json:"OversoldType,omitempty"`
	// QuotaId is the quota ID.
	QuotaID string `json:"QuotaId,omitempty"`
	// Driver is the driver version.
	Driver string `json:"Driver,omitempty"`
}

// ResourceConfig holds the resources of a pod, as strings in the API.
type ResourceConfig struct {
	// CPU is the CPU count, e.g. 10.
	CPU string `json:"CPU,omitempty"`
	// GPU is the GPU count, e.g. 3.
	GPU string `json:"GPU,omitempty"`
	// GPUType is the GPU type, e.g. Tesla-V100-16G.
	GPUType string `json:"GPUType,omitempty"`
	// Memory is the memory, e.g. 10Gi.
	Memory string `json:"Memory,omitempty"`
	// SharedMemory is the shared memory, e.g. 5Gi.
	SharedMemory string `json:"SharedMemory,omitempty"`
}

// ImageConfig holds private registry settings.
type ImageConfig struct {
	// DockerRegistry is the registry address.
	DockerRegistry string `json:"DockerRegistry,omitempty"`
	// Username is the registry user.
	Username string `json:"Username,omitempty"`
	// Password is always redacted by dlcsync.
	Password string `json:"Password,omitempty"`
	// Auth is always redacted by dlcsync.
	Auth string `json:"Auth,omitempty"`
}

// SpotSpec holds spot instance settings.
type SpotSpec struct {
	// SpotStrategy is the spot strategy, e.g. SpotWithPriceLimit.
	SpotStrategy string `json:"SpotStrategy,omitempty"`
	// SpotDiscountLimit is the discount limit, e.g. 0.8.
	SpotDiscountLimit *float64 `json:"SpotDiscountLimit,omitempty"`
	// SpotPriceLimit is the price limit in CNY per minute.
	SpotPriceLimit *float64 `json:"SpotPriceLimit,omitempty"`
}

// ElasticSpotSpec holds one elastic spot setting.
type ElasticSpotSpec struct {
	// InstanceType is the instance type.
	InstanceType string `json:"InstanceType,omitempty"`
	// SpotStrategy is LowestPrice or CapacityOptimized.
	SpotStrategy string `json:"SpotStrategy,omitempty"`
	// SpotDiscountLimit is the discount limit in percent, e.g. 90.
	SpotDiscountLimit *float64 `json:"SpotDiscountLimit,omitempty"`
	// SpotPriceLimit is the maximum hourly price.
	SpotPriceLimit *float64 `json:"SpotPriceLimit,omitempty"`
}

// AutoScalingSpec holds auto scaling settings.
type AutoScalingSpec struct {
	// ScalingStrategy is Default, ScaleByAPI, RayAutoscaler or CloudMonitorMetric.
	ScalingStrategy string `json:"ScalingStrategy,omitempty"`
	// MinReplicas is the minimum replica count.
	MinReplicas *int32 `json:"MinReplicas,omitempty"`
	// MaxReplicas is the maximum replica count.
	MaxReplicas *int32 `json:"MaxReplicas,omitempty"`
	// PodsToDelete lists pods to remove on scale-in.
	PodsToDelete []string `json:"PodsToDelete,omitempty"`
	// AutoscalingMetricSpec holds the metric that drives scaling.
	AutoscalingMetricSpec *AutoscalingMetricSpec `json:"AutoscalingMetricSpec,omitempty"`
}

// AutoscalingMetricSpec is the metric that drives auto scaling.
type AutoscalingMetricSpec struct {
	// MetricName is the metric name.
	MetricName string `json:"MetricName,omitempty"`
	// TargetValue is the target value.
	TargetValue *int32 `json:"TargetValue,omitempty"`
	// Tolerance is the tolerance in percent.
	Tolerance string `json:"Tolerance,omitempty"`
	// StabilizationWindowSeconds is the cool-down.
	StabilizationWindowSeconds *int32 `json:"StabilizationWindowSeconds,omitempty"`
}

// AssignNodeSpec holds node pinning settings.
type AssignNodeSpec struct {
	// EnableAssignNode is true when nodes are assigned.
	EnableAssignNode *bool `json:"EnableAssignNode,omitempty"`
	// NodeNames lists the assigned nodes, comma-separated.
	NodeNames string `json:"NodeNames,omitempty"`
	// AntiAffinityNodeNames lists nodes to avoid, comma-separated.
	AntiAffinityNodeNames string `json:"AntiAffinityNodeNames,omitempty"`
	// HyperNodes lists assigned hyper nodes.
	HyperNodes []HyperNodeSpec `json:"HyperNodes,omitempty"`
	// AntiAffinityHyperNodes lists hyper nodes to avoid.
	AntiAffinityHyperNodes []HyperNodeSpec `json:"AntiAffinityHyperNodes,omitempty"`
}

// HyperNodeSpec is one hyper node.
type HyperNodeSpec struct {
	// HyperNodeName is the hyper node name.
	HyperNodeName string `json:"HyperNodeName,omitempty"`
	// NodeNames lists its nodes, comma-separated.
	NodeNames string `json:"NodeNames,omitempty"`
}

// HyperNodeSchedulingConfig holds hyper node scheduling settings.
type HyperNodeSchedulingConfig struct {
	// MinAvailable is the minimum number of available nodes.
	MinAvailable *int32 `json:"MinAvailable,omitempty"`
	// QualityPolicy is the quality policy.
	QualityPolicy string `json:"QualityPolicy,omitempty"`
}

// LocalMountSpec is one local mount.
type LocalMountSpec struct {
	// MountPath is the absolute mount path.
	MountPath string `json:"MountPath,omitempty"`
	// MountMode is Block or Filesystem.
	MountMode string `json:"MountMode,omitempty"`
	// LocalPath is the local path (ignored in Block mode).
	LocalPath string `json:"LocalPath,omitempty"`
}

// StartupDependency is a role that must reach a phase first.
type StartupDependency struct {
	// Type is the role depended on.
	Type string `json:"Type,omitempty"`
	// OnPhase is the phase that satisfies the dependency.
	OnPhase string `json:"OnPhase,omitempty"`
	// MinReplicas is how many replicas must reach it.
	MinReplicas string `json:"MinReplicas,omitempty"`
}

// SystemDisk holds system disk settings.
type SystemDisk struct {
	// Category is the disk category.
	Category string `json:"Category,omitempty"`
	// PerformanceLevel is the performance level.
	PerformanceLevel string `json:"PerformanceLevel,omitempty"`
	// Size is the disk size.
	Size *int64 `json:"Size,omitempty"`
}

// ServiceSpec holds service exposure settings.
type ServiceSpec struct {
	// ServiceMode is PerRole or PerPod.
	ServiceMode string `json:"ServiceMode,omitempty"`
	// DefaultPort is the default port.
	DefaultPort *int32 `json:"DefaultPort,omitempty"`
	// ExtraPorts lists further ports.
	ExtraPorts []int32 `json:"ExtraPorts,omitempty"`
}

// ExtraPodSpec holds extra pod settings.
type ExtraPodSpec struct {
	// InitContainers lists init containers.
	InitContainers []ContainerSpec `json:"InitContainers,omitempty"`
	// SideCarContainers lists sidecar containers.
	SideCarContainers []ContainerSpec `json:"SideCarContainers,omitempty"`
	// SharedVolumeMountPaths lists shared volume mount paths.
	SharedVolumeMountPaths []string `json:"SharedVolumeMountPaths,omitempty"`
	// Lifecycle holds the main container hooks.
	Lifecycle *Lifecycle `json:"Lifecycle,omitempty"`
	// MainContainerSecurityContext is the main container's security context.
	MainContainerSecurityContext *SecurityContext `json:"MainContainerSecurityContext,omitempty"`
	// PodLabels holds pod labels (deprecated in the API).
	PodLabels map[string]string `json:"PodLabels,omitempty"`
	// PodAnnotations holds pod annotations (deprecated in the API).
	PodAnnotations map[string]string `json:"PodAnnotations,omitempty"`
}

// ContainerSpec is an extra container.
type ContainerSpec struct {
	// Name is the container name.
	Name string `json:"Name,omitempty"`
	// Image is the container image.
	Image string `json:"Image,omitempty"`
	// Command is the entrypoint.
	Command []string `json:"Command,omitempty"`
	// Args are the arguments.
	Args []string `json:"Args,omitempty"`
	// WorkingDir is the working directory.
	WorkingDir string `json:"WorkingDir,omitempty"`
	// Env lists environment variables; values are redacted like the job's envs.
	Env []EnvVar `json:"Env,omitempty"`
	// Resources holds resource limits and requests.
	Resources *ResourceRequirements `json:"Resources,omitempty"`
	// SecurityContext is the container's security context.
	SecurityContext *SecurityContext `json:"SecurityContext,omitempty"`
}

// EnvVar is one environment variable.
type EnvVar struct {
	// Name is the variable name.
	Name string `json:"Name,omitempty"`
	// Value is the variable value (redacted unless includeEnvValues).
	Value string `json:"Value,omitempty"`
}

// ResourceRequirements holds resource limits and requests.
type ResourceRequirements struct {
	// Limits maps resource names to limits.
	Limits map[string]string `json:"Limits,omitempty"`
	// Requests maps resource names to requests.
	Requests map[string]string `json:"Requests,omitempty"`
}

// Lifecycle holds container hooks.
type Lifecycle struct {
	// PostStart runs after the container starts.
	PostStart *LifecycleHandler `json:"PostStart,omitempty"`
	// PreStop runs before the container stops.
	PreStop *LifecycleHandler `json:"PreStop,omitempty"`
}

// LifecycleHandler is one hook.
type LifecycleHandler struct {
	// Exec runs a command.
	Exec *ExecAction `json:"Exec,omitempty"`
}

// ExecAction is a command.
type ExecAction struct {
	// Command is the command line.
	Command []string `json:"Command,omitempty"`
}

// SecurityContext is a container security context.
type SecurityContext struct {
	// Privileged runs the container privileged.
	Privileged *bool `json:"Privileged,omitempty"`
	// RunAsUser is the UID.
	RunAsUser *int64 `json:"RunAsUser,omitempty"`
	// RunAsGroup is the GID.
	RunAsGroup *int64 `json:"RunAsGroup,omitempty"`
	// Capabilities adds and drops capabilities.
	Capabilities *Capabilities `json:"Capabilities,omitempty"`
	// SeccompProfile is the seccomp profile.
	SeccompProfile *SeccompProfile `json:"SeccompProfile,omitempty"`
}

// Capabilities adds and drops Linux capabilities.
type Capabilities struct {
	// Add lists capabilities to add.
	Add []string `json:"Add,omitempty"`
	// Drop lists capabilities to drop.
	Drop []string `json:"Drop,omitempty"`
}

// SeccompProfile is a seccomp profile.
type SeccompProfile struct {
	// Type is Localhost, RuntimeDefault or Unconfined.
	Type string `json:"Type,omitempty"`
	// LocalhostProfile is the profile path for Localhost.
	LocalhostProfile string `json:"LocalhostProfile,omitempty"`
}

// JobElasticSpec holds elastic training parameters.
type JobElasticSpec struct {
	// EnableElasticTraining turns elastic training on.
	EnableElasticTraining *bool `json:"EnableElasticTraining,omitempty"`
	// MinParallelism is the minimum parallelism.
	MinParallelism *int32 `json:"MinParallelism,omitempty"`
	// MaxParallelism is the maximum parallelism.
	MaxParallelism *int32 `json:"MaxParallelism,omitempty"`
	// EnableAIMaster turns AIMaster on.
	EnableAIMaster *bool `json:"EnableAIMaster,omitempty"`
	// AIMasterType is the AIMaster instance type.
	AIMasterType string `json:"AIMasterType,omitempty"`
	// AIMasterDockerImage is the AIMaster image.
	AIMasterDockerImage string `json:"AIMasterDockerImage,omitempty"`
	// ElasticStrategy is the elastic strategy.
	ElasticStrategy string `json:"ElasticStrategy,omitempty"`
	// EnablePsJobElasticPS makes PS elastic.
	EnablePsJobElasticPS *bool `json:"EnablePsJobElasticPS,omitempty"`
	// EnablePsJobElasticWorker makes workers elastic.
	EnablePsJobElasticWorker *bool `json:"EnablePsJobElasticWorker,omitempty"`
	// EnablePsResourceEstimate turns PS resource estimation on.
	EnablePsResourceEstimate *bool `json:"EnablePsResourceEstimate,omitempty"`
	// PSMinParallelism is the minimum PS parallelism.
	PSMinParallelism *int32 `json:"PSMinParallelism,omitempty"`
	// PSMaxParallelism is the maximum PS parallelism.
	PSMaxParallelism *int32 `json:"PSMaxParallelism,omitempty"`
	// EnableEDP turns EDP on.
	EnableEDP *bool `json:"EnableEDP,omitempty"`
	// EDPMinParallelism is the minimum EDP parallelism.
	EDPMinParallelism *int32 `json:"EDPMinParallelism,omitempty"`
	// EDPMaxParallelism is the maximum EDP parallelism.
	EDPMaxParallelism *int32 `json:"EDPMaxParallelism,omitempty"`
}

// JobSettings holds extra job settings.
type JobSettings struct {
	// AdvancedSettings holds extra advanced settings, any JSON object.
	AdvancedSettings map[string]interface{} `json:"AdvancedSettings,omitempty"`
	// AllocateAllRDMADevices mounts all RDMA NICs.
	AllocateAllRDMADevices *bool `json:"AllocateAllRDMADevices,omitempty"`
	// AllowUnschedulableNodes allows unschedulable nodes.
	AllowUnschedulableNodes *bool `json:"AllowUnschedulableNodes,omitempty"`
	// BusinessUserId is the associated user ID.
	BusinessUserID string `json:"BusinessUserId,omitempty"`
	// Caller is the caller, e.g. SilkFlow.
	Caller string `json:"Caller,omitempty"`
	// DataJuicerConfig holds DataJuicer task settings.
	DataJuicerConfig *DataJuicerConfig `json:"DataJuicerConfig,omitempty"`
	// DisableEcsStockCheck skips the stock check.
	DisableEcsStockCheck *bool `json:"DisableEcsStockCheck,omitempty"`
	// Driver is the NVIDIA driver version.
	Driver string `json:"Driver,omitempty"`
	// ElasticSpotJobMaxRestartTimes bounds restarts of elastic spot jobs.
	ElasticSpotJobMaxRestartTimes *int32 `json:"ElasticSpotJobMaxRestartTimes,omitempty"`
	// EnableCPUAffinity turns CPU affinity on.
	EnableCPUAffinity *bool `json:"EnableCPUAffinity,omitempty"`
	// EnableDSWDev turns DSW development on.
	EnableDSWDev *bool `json:"EnableDSWDev,omitempty"`
	// EnableErrorMonitoringInAIMaster turns fault-tolerance monitoring on.
	EnableErrorMonitoringInAIMaster *bool `json:"EnableErrorMonitoringInAIMaster,omitempty"`
	// EnableOssAppend allows OSS append writes.
	EnableOssAppend *bool `json:"EnableOssAppend,omitempty"`
	// EnableRDMA allows RDMA.
	EnableRDMA *bool `json:"EnableRDMA,omitempty"`
	// EnableSanityCheck turns the compute health check on.
	EnableSanityCheck *bool `json:"EnableSanityCheck,omitempty"`
	// EnableTideResource allows tidal resources.
	EnableTideResource *bool `json:"EnableTideResource,omitempty"`
	// ErrorMonitoringArgs holds fault-tolerance monitoring arguments.
	ErrorMonitoringArgs string `json:"ErrorMonitoringArgs,omitempty"`
	// JobReservedMinutes keeps resources this long after the job ends.
	JobReservedMinutes *int32 `json:"JobReservedMinutes,omitempty"`
	// JobReservedPolicy is the retention policy after the end, e.g. Always.
	JobReservedPolicy string `json:"JobReservedPolicy,omitempty"`
	// ModelConfig holds the output model settings.
	ModelConfig *ModelConfig `json:"ModelConfig,omitempty"`
	// OversoldType is ForbiddenQuotaOverSold, AcceptQuotaOverSold or ForceQuotaOverSold.
	OversoldType string `json:"OversoldType,omitempty"`
	// PipelineId is the workflow ID.
	PipelineID string `json:"PipelineId,omitempty"`
	// SanityCheckArgs holds health-check arguments.
	SanityCheckArgs string `json:"SanityCheckArgs,omitempty"`
	// Shell is the shell, e.g. /bin/bash.
	Shell string `json:"Shell,omitempty"`
	// Tags holds the job's custom tags.
	Tags map[string]string `json:"Tags,omitempty"`
	// TerminationGracePeriodSeconds is the termination grace period.
	TerminationGracePeriodSeconds *int64 `json:"TerminationGracePeriodSeconds,omitempty"`
}

// DataJuicerConfig holds DataJuicer task settings.
type DataJuicerConfig struct {
	// CommandType is shell or config.
	CommandType string `json:"CommandType,omitempty"`
	// ExecutionMode is standalone or distributed.
	ExecutionMode string `json:"ExecutionMode,omitempty"`
	// EnableResourceEstimation turns resource estimation on.
	EnableResourceEstimation *bool `json:"EnableResourceEstimation,omitempty"`
	// ResourceLimit bounds the resources.
	ResourceLimit *DataJuicerResourceLimit `json:"ResourceLimit,omitempty"`
}

// DataJuicerResourceLimit bounds DataJuicer resources.
type DataJuicerResourceLimit struct {
	// CPU is the CPU limit.
	CPU string `json:"CPU,omitempty"`
	// GPU is the GPU limit.
	GPU string `json:"GPU,omitempty"`
	// Memory is the memory limit.
	Memory string `json:"Memory,omitempty"`
}

// ModelConfig holds the output model settings.
type ModelConfig struct {
	// ModelName is the model name.
	ModelName string `json:"ModelName,omitempty"`
	// ModelTemplate is the model template.
	ModelTemplate *ModelTemplate `json:"ModelTemplate,omitempty"`
}

// ModelTemplate is a model template.
type ModelTemplate struct {
	// Collections is the collections.
	Collections string `json:"Collections,omitempty"`
	// ModelName is the model name.
	ModelName string `json:"ModelName,omitempty"`
	// Provider is the provider.
	Provider string `json:"Provider,omitempty"`
}

// CredentialConfig holds credential injection settings.
type CredentialConfig struct {
	// EnableCredentialInject turns credential injection on.
	EnableCredentialInject *bool `json:"EnableCredentialInject,omitempty"`
	// AliyunEnvRoleKey is the role key.
	AliyunEnvRoleKey string `json:"AliyunEnvRoleKey,omitempty"`
	// CredentialConfigItems lists the credentials injected.
	CredentialConfigItems []CredentialConfigItem `json:"CredentialConfigItems,omitempty"`
}

// CredentialConfigItem is one injected credential.
type CredentialConfigItem struct {
	// Key is the credential key.
	Key string `json:"Key,omitempty"`
	// Type is the credential type.
	Type string `json:"Type,omitempty"`
	// Roles lists the roles assumed.
	Roles []CredentialRole `json:"Roles,omitempty"`
}

// CredentialRole is one assumed role.
type CredentialRole struct {
	// RoleArn is the role ARN.
	RoleArn string `json:"RoleArn,omitempty"`
	// RoleType is the role type.
	RoleType string `json:"RoleType,omitempty"`
	// AssumeRoleFor is whom the role is assumed for.
	AssumeRoleFor string `json:"AssumeRoleFor,omitempty"`
	// Policy is the session policy.
	Policy string `json:"Policy,omitempty"`
	// AssumeUserInfo describes the assuming user (the security token is always redacted).
	AssumeUserInfo *AssumeUserInfo `json:"AssumeUserInfo,omitempty"`
}

// AssumeUserInfo describes the user that assumes a role.
type AssumeUserInfo struct {
	// Id is the user ID.
	ID string `json:"Id,omitempty"`
	// Type is the user type.
	Type string `json:"Type,omitempty"`
	// AccessKeyId is the AccessKey ID in use (always redacted by dlcsync).
	AccessKeyID string `json:"AccessKeyId,omitempty"`
	// SecurityToken is always redacted by dlcsync.
	SecurityToken string `json:"SecurityToken,omitempty"`
}

// CodeSource is the code source a job used.
type CodeSource struct {
	// CodeSourceId is the code source ID.
	CodeSourceID string `json:"CodeSourceId,omitempty"`
	// Branch is the branch.
	Branch string `json:"Branch,omitempty"`
	// Commit is the commit ID.
	Commit string `json:"Commit,omitempty"`
	// MountPath is the mount path.
	MountPath string `json:"MountPath,omitempty"`
}

// DataSource is a data source a job used.
type DataSource struct {
	// DataSourceId is the data source ID.
	DataSourceID string `json:"DataSourceId,omitempty"`
	// MountPath is the mount path.
	MountPath string `json:"MountPath,omitempty"`
}

// UserVpc holds user VPC settings.
type UserVpc struct {
	// VpcId is the VPC ID.
	VpcID string `json:"VpcId,omitempty"`
	// SwitchId is the vSwitch ID.
	SwitchID string `json:"SwitchId,omitempty"`
	// SecurityGroupId is the security group ID.
	SecurityGroupID string `json:"SecurityGroupId,omitempty"`
	// ExtendedCidrs lists extra CIDRs to reach.
	ExtendedCidrs []string `json:"ExtendedCidrs,omitempty"`
	// DefaultRoute is eth0 or eth1.
	DefaultRoute string `json:"DefaultRoute,omitempty"`
}
