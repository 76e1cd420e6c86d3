package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// The types in this file mirror the JobItem of the PAI-DLC ListJobs response (API version
// 2020-12-03), field for field. JSON names are the API's names in camelCase: a leading run of
// capitals is lowercased as a word (JobId -> jobId, CPU -> cpu, GPUType -> gpuType,
// AIMasterType -> aiMasterType). Types are the API's: some counts are strings there
// (requestGPU, nodeCount, restartTimes) and stay strings here. Times are the API's UTC strings.

// JobItem is one PAI-DLC job as ListJobs returns it.
type JobItem struct {
	// jobId is the job ID, e.g. dlc-20210126170216-mtl37ge7gkvdz.
	JobID string `json:"jobId,omitempty"`
	// displayName is the job name.
	DisplayName string `json:"displayName,omitempty"`
	// jobType is the job type, e.g. TFJob, PyTorchJob, MPIJob, RayJob.
	JobType string `json:"jobType,omitempty"`
	// status is the job status, e.g. Running.
	Status string `json:"status,omitempty"`
	// subStatus is the job sub-status, e.g. Restarting after a preemption.
	SubStatus string `json:"subStatus,omitempty"`
	// reasonCode says why the job is in its status, e.g. JobStoppedByUser.
	ReasonCode string `json:"reasonCode,omitempty"`
	// reasonMessage is the detailed reason.
	ReasonMessage string `json:"reasonMessage,omitempty"`
	// statusHistory lists the statuses the job went through.
	// +listType=atomic
	StatusHistory []StatusTransitionItem `json:"statusHistory,omitempty"`
	// accessibility is PUBLIC or PRIVATE.
	Accessibility string `json:"accessibility,omitempty"`
	// workspaceId is the workspace the job belongs to.
	WorkspaceID string `json:"workspaceId,omitempty"`
	// workspaceName is the name of that workspace.
	WorkspaceName string `json:"workspaceName,omitempty"`
	// userId is the UID of the job owner.
	UserID string `json:"userId,omitempty"`
	// username is the name of the submitter.
	Username string `json:"username,omitempty"`
	// tenantId is the tenant ID.
	TenantID string `json:"tenantId,omitempty"`
	// clusterId is the cluster ID.
	ClusterID string `json:"clusterId,omitempty"`
	// resourceId is the resource group (quota) the job runs in.
	ResourceID string `json:"resourceId,omitempty"`
	// resourceName is the name of the resource the job runs on.
	ResourceName string `json:"resourceName,omitempty"`
	// resourceQuotaName is the resource quota name.
	ResourceQuotaName string `json:"resourceQuotaName,omitempty"`
	// resourceLevel is the resource level at run time, e.g. L0.
	ResourceLevel string `json:"resourceLevel,omitempty"`
	// resourceType is ECS, Lingjun or ACS.
	ResourceType string `json:"resourceType,omitempty"`
	// priority is the job priority (1-9).
	Priority *int32 `json:"priority,omitempty"`
	// duration is the running time in seconds.
	Duration *int64 `json:"duration,omitempty"`
	// jobMaxRunningTimeMinutes is the maximum running time in minutes (0: unlimited).
	JobMaxRunningTimeMinutes *int64 `json:"jobMaxRunningTimeMinutes,omitempty"`
	// requestCPU is the requested CPU.
	RequestCPU *int64 `json:"requestCPU,omitempty"`
	// requestGPU is the requested GPU count, a string in the API.
	RequestGPU string `json:"requestGPU,omitempty"`
	// requestMemory is the requested memory, e.g. 1Gi.
	RequestMemory string `json:"requestMemory,omitempty"`
	// nodeCount is the number of nodes, a string in the API.
	NodeCount string `json:"nodeCount,omitempty"`
	// nodeNames lists the nodes the job runs on.
	// +listType=atomic
	NodeNames []string `json:"nodeNames,omitempty"`
	// restartTimes is how often the job restarted, a string in the API.
	RestartTimes string `json:"restartTimes,omitempty"`
	// retryCount is the retry count.
	RetryCount *int32 `json:"retryCount,omitempty"`
	// schedulingStrategy is the scheduling strategy.
	SchedulingStrategy string `json:"schedulingStrategy,omitempty"`
	// useOversoldResource is true when the job uses idle resources.
	UseOversoldResource *bool `json:"useOversoldResource,omitempty"`
	// enablePreemptibleJob is true for a preemptible job.
	EnablePreemptibleJob *bool `json:"enablePreemptibleJob,omitempty"`
	// enabledDebugger is true when debugger analysis is on.
	EnabledDebugger *bool `json:"enabledDebugger,omitempty"`
	// isDeleted is true for a deleted job.
	IsDeleted *bool `json:"isDeleted,omitempty"`
	// gmtCreateTime is when the job was created (UTC, 2006-01-02T15:04:05Z).
	GmtCreateTime string `json:"gmtCreateTime,omitempty"`
	// gmtSubmittedTime is when the job was submitted.
	GmtSubmittedTime string `json:"gmtSubmittedTime,omitempty"`
	// gmtRunningTime is when the job started running.
	GmtRunningTime string `json:"gmtRunningTime,omitempty"`
	// gmtSuccessedTime is when the job succeeded (the API's spelling).
	GmtSuccessedTime string `json:"gmtSuccessedTime,omitempty"`
	// gmtFailedTime is when the job failed.
	GmtFailedTime string `json:"gmtFailedTime,omitempty"`
	// gmtStoppedTime is when the job was stopped.
	GmtStoppedTime string `json:"gmtStoppedTime,omitempty"`
	// gmtFinishTime is when the job finished.
	GmtFinishTime string `json:"gmtFinishTime,omitempty"`
	// gmtModifiedTime is when the job was last modified.
	GmtModifiedTime string `json:"gmtModifiedTime,omitempty"`
	// jobSpecs holds the node configuration of each role.
	// +listType=atomic
	JobSpecs []JobSpec `json:"jobSpecs,omitempty"`
	// jobReplicaStatuses holds the replica counters of each role.
	// +listType=atomic
	JobReplicaStatuses []JobReplicaStatus `json:"jobReplicaStatuses,omitempty"`
	// pods lists the pods of the job.
	// +listType=atomic
	Pods []PodItem `json:"pods,omitempty"`
	// elasticSpec holds the elastic training parameters.
	ElasticSpec *JobElasticSpec `json:"elasticSpec,omitempty"`
	// settings holds extra job settings.
	Settings *JobSettings `json:"settings,omitempty"`
	// credentialConfig holds the credential injection settings (tokens are always redacted).
	CredentialConfig *CredentialConfig `json:"credentialConfig,omitempty"`
	// codeSource is the code source used.
	CodeSource *CodeSource `json:"codeSource,omitempty"`
	// dataSources lists the data sources used.
	// +listType=atomic
	DataSources []DataSource `json:"dataSources,omitempty"`
	// userVpc holds the user VPC settings.
	UserVpc *UserVpc `json:"userVpc,omitempty"`
	// userCommand is the start command run on every node (redacted unless Commands is revealed).
	UserCommand string `json:"userCommand,omitempty"`
	// userScript is the user script (redacted unless Commands is revealed).
	UserScript string `json:"userScript,omitempty"`
	// workingDir is the working directory.
	WorkingDir string `json:"workingDir,omitempty"`
	// envs holds the environment variables injected at run time. Values are redacted unless the
	// JobQuery reveals EnvValues.
	Envs map[string]string `json:"envs,omitempty"`
	// systemEnvs holds the system environment variables, redacted like envs.
	SystemEnvs map[string]string `json:"systemEnvs,omitempty"`
	// thirdpartyLibs lists the Python libraries installed before the run (each redacted unless
	// Libraries is revealed: a line may name an index URL with a password).
	// +listType=atomic
	ThirdpartyLibs []string `json:"thirdpartyLibs,omitempty"`
	// thirdpartyLibDir is the directory that holds requirements.txt.
	ThirdpartyLibDir string `json:"thirdpartyLibDir,omitempty"`
	// templateId is the job template the job came from.
	TemplateID string `json:"templateId,omitempty"`
	// templateName is the name of that template.
	TemplateName string `json:"templateName,omitempty"`
	// supportedProfilingTypes lists the supported profiling types, e.g. sysom.
	SupportedProfilingTypes string `json:"supportedProfilingTypes,omitempty"`
}

// StatusTransitionItem is one status a job went through.
type StatusTransitionItem struct {
	// status is the job status of this period.
	Status string `json:"status,omitempty"`
	// startTime is when the period began.
	StartTime string `json:"startTime,omitempty"`
	// endTime is when it ended.
	EndTime string `json:"endTime,omitempty"`
	// reasonCode is the reason code of the period.
	ReasonCode string `json:"reasonCode,omitempty"`
	// reasonMessage is the reason message of the period.
	ReasonMessage string `json:"reasonMessage,omitempty"`
}

// JobReplicaStatus counts the replicas of one role.
type JobReplicaStatus struct {
	// type is the role, e.g. Worker.
	Type string `json:"type,omitempty"`
	// active is the number of active pods.
	Active *int32 `json:"active,omitempty"`
	// queuing is the number of queuing pods.
	Queuing *int32 `json:"queuing,omitempty"`
	// dequeued is the number of dequeued pods.
	Dequeued *int32 `json:"dequeued,omitempty"`
	// estimatedPodCount is the estimated pod count (auto scaling).
	EstimatedPodCount *int64 `json:"estimatedPodCount,omitempty"`
	// estimatedResourceConfig is the estimated resource configuration.
	EstimatedResourceConfig *ResourceConfig `json:"estimatedResourceConfig,omitempty"`
	// estimatedAutoScalingSpec is the estimated auto scaling configuration.
	EstimatedAutoScalingSpec *AutoScalingSpec `json:"estimatedAutoScalingSpec,omitempty"`
	// currentSpotInstanceType is the spot instance type in use.
	CurrentSpotInstanceType string `json:"currentSpotInstanceType,omitempty"`
}

// PodItem is one pod of a job.
type PodItem struct {
	// podId is the pod ID.
	PodID string `json:"podId,omitempty"`
	// podUid is the pod UID.
	PodUID string `json:"podUid,omitempty"`
	// type is the role of the pod, e.g. Worker.
	Type string `json:"type,omitempty"`
	// status is the pod status, e.g. Running.
	Status string `json:"status,omitempty"`
	// subStatus is the pod sub-status, e.g. Evicted.
	SubStatus string `json:"subStatus,omitempty"`
	// ip is the pod IP.
	IP string `json:"ip,omitempty"`
	// podIp is the pod IP.
	PodIP string `json:"podIp,omitempty"`
	// podIps lists the network interfaces of the pod.
	// +listType=atomic
	PodIPs []PodNetworkInterface `json:"podIps,omitempty"`
	// nodeName is the node the pod runs on.
	NodeName string `json:"nodeName,omitempty"`
	// gmtCreateTime is when the pod was created.
	GmtCreateTime string `json:"gmtCreateTime,omitempty"`
	// gmtStartTime is when the pod started.
	GmtStartTime string `json:"gmtStartTime,omitempty"`
	// gmtFinishTime is when the pod finished.
	GmtFinishTime string `json:"gmtFinishTime,omitempty"`
	// historyPods lists earlier incarnations of the pod (without their own history).
	// +listType=atomic
	HistoryPods []HistoryPodItem `json:"historyPods,omitempty"`
	// supportedProfilingTypes lists the supported profiling types.
	SupportedProfilingTypes string `json:"supportedProfilingTypes,omitempty"`
}

// HistoryPodItem is an earlier incarnation of a pod. It has the shape of PodItem without a
// further history: a CRD schema cannot be recursive, and the API nests only one level.
type HistoryPodItem struct {
	// podId is the pod ID.
	PodID string `json:"podId,omitempty"`
	// podUid is the pod UID.
	PodUID string `json:"podUid,omitempty"`
	// type is the role of the pod.
	Type string `json:"type,omitempty"`
	// status is the pod status.
	Status string `json:"status,omitempty"`
	// subStatus is the pod sub-status.
	SubStatus string `json:"subStatus,omitempty"`
	// ip is the pod IP.
	IP string `json:"ip,omitempty"`
	// podIp is the pod IP.
	PodIP string `json:"podIp,omitempty"`
	// podIps lists the network interfaces of the pod.
	// +listType=atomic
	PodIPs []PodNetworkInterface `json:"podIps,omitempty"`
	// nodeName is the node the pod ran on.
	NodeName string `json:"nodeName,omitempty"`
	// gmtCreateTime is when the pod was created.
	GmtCreateTime string `json:"gmtCreateTime,omitempty"`
	// gmtStartTime is when the pod started.
	GmtStartTime string `json:"gmtStartTime,omitempty"`
	// gmtFinishTime is when the pod finished.
	GmtFinishTime string `json:"gmtFinishTime,omitempty"`
	// supportedProfilingTypes lists the supported profiling types.
	SupportedProfilingTypes string `json:"supportedProfilingTypes,omitempty"`
}

// PodNetworkInterface is one network interface of a pod.
type PodNetworkInterface struct {
	// interfaceName is the interface name.
	InterfaceName string `json:"interfaceName,omitempty"`
	// ip is its IP.
	IP string `json:"ip,omitempty"`
}

// JobSpec is the node configuration of one role.
type JobSpec struct {
	// type is the role, e.g. Worker, Master, Chief, PS.
	Type string `json:"type,omitempty"`
	// image is the image of the role.
	Image string `json:"image,omitempty"`
	// imageConfig holds private registry settings (password and auth are always redacted).
	ImageConfig *ImageConfig `json:"imageConfig,omitempty"`
	// podCount is the number of replicas.
	PodCount *int64 `json:"podCount,omitempty"`
	// ecsSpec is the instance type, e.g. ecs.c6.large.
	EcsSpec string `json:"ecsSpec,omitempty"`
	// resourceConfig holds the resources of each pod.
	ResourceConfig *ResourceConfig `json:"resourceConfig,omitempty"`
	// restartPolicy is Always, Never, OnFailure or ExitCode.
	RestartPolicy string `json:"restartPolicy,omitempty"`
	// isChief is true for the chief role.
	IsChief *bool `json:"isChief,omitempty"`
	// isCheif is the deprecated misspelling of isChief, kept as the API sends it.
	IsCheif *bool `json:"isCheif,omitempty"`
	// considerInSuccessPolicy is true when the role counts for success under a Partial policy.
	ConsiderInSuccessPolicy *bool `json:"considerInSuccessPolicy,omitempty"`
	// useSpotInstance is deprecated.
	UseSpotInstance *bool `json:"useSpotInstance,omitempty"`
	// spotSpec holds spot settings.
	SpotSpec *SpotSpec `json:"spotSpec,omitempty"`
	// elasticSpotSpecs holds elastic spot settings.
	// +listType=atomic
	ElasticSpotSpecs []ElasticSpotSpec `json:"elasticSpotSpecs,omitempty"`
	// autoScalingSpec holds auto scaling settings.
	AutoScalingSpec *AutoScalingSpec `json:"autoScalingSpec,omitempty"`
	// assignNodeSpec holds node pinning settings.
	AssignNodeSpec *AssignNodeSpec `json:"assignNodeSpec,omitempty"`
	// hyperNodeSchedulingConfig holds hyper node scheduling settings.
	HyperNodeSchedulingConfig *HyperNodeSchedulingConfig `json:"hyperNodeSchedulingConfig,omitempty"`
	// extraPodSpec holds extra pod settings.
	ExtraPodSpec *ExtraPodSpec `json:"extraPodSpec,omitempty"`
	// serviceSpec holds service exposure settings.
	ServiceSpec *ServiceSpec `json:"serviceSpec,omitempty"`
	// localMountSpecs lists local mounts.
	// +listType=atomic
	LocalMountSpecs []LocalMountSpec `json:"localMountSpecs,omitempty"`
	// startupDependencies lists roles that must be ready first.
	// +listType=atomic
	StartupDependencies []StartupDependency `json:"startupDependencies,omitempty"`
	// systemDisk holds system disk settings.
	SystemDisk *SystemDisk `json:"systemDisk,omitempty"`
	// oversoldType is the oversold type.
	OversoldType string `json:"oversoldType,omitempty"`
	// quotaId is the quota ID.
	QuotaID string `json:"quotaId,omitempty"`
	// driver is the driver version.
	Driver string `json:"driver,omitempty"`
}

// ResourceConfig holds the resources of a pod, as strings in the API.
type ResourceConfig struct {
	// cpu is the CPU count, e.g. 10.
	CPU string `json:"cpu,omitempty"`
	// gpu is the GPU count, e.g. 3.
	GPU string `json:"gpu,omitempty"`
	// gpuType is the GPU type, e.g. Tesla-V100-16G.
	GPUType string `json:"gpuType,omitempty"`
	// memory is the memory, e.g. 10Gi.
	Memory string `json:"memory,omitempty"`
	// sharedMemory is the shared memory, e.g. 5Gi.
	SharedMemory string `json:"sharedMemory,omitempty"`
}

// ImageConfig holds private registry settings.
type ImageConfig struct {
	// dockerRegistry is the registry address.
	DockerRegistry string `json:"dockerRegistry,omitempty"`
	// username is the registry user.
	Username string `json:"username,omitempty"`
	// password is always redacted by dlcsync.
	Password string `json:"password,omitempty"`
	// auth is always redacted by dlcsync.
	Auth string `json:"auth,omitempty"`
}

// SpotSpec holds spot instance settings.
type SpotSpec struct {
	// spotStrategy is the spot strategy, e.g. SpotWithPriceLimit.
	SpotStrategy string `json:"spotStrategy,omitempty"`
	// spotDiscountLimit is the discount limit, e.g. 0.8.
	SpotDiscountLimit *float64 `json:"spotDiscountLimit,omitempty"`
	// spotPriceLimit is the price limit in CNY per minute.
	SpotPriceLimit *float64 `json:"spotPriceLimit,omitempty"`
}

// ElasticSpotSpec holds one elastic spot setting.
type ElasticSpotSpec struct {
	// instanceType is the instance type.
	InstanceType string `json:"instanceType,omitempty"`
	// spotStrategy is LowestPrice or CapacityOptimized.
	SpotStrategy string `json:"spotStrategy,omitempty"`
	// spotDiscountLimit is the discount limit in percent, e.g. 90.
	SpotDiscountLimit *float64 `json:"spotDiscountLimit,omitempty"`
	// spotPriceLimit is the maximum hourly price.
	SpotPriceLimit *float64 `json:"spotPriceLimit,omitempty"`
}

// AutoScalingSpec holds auto scaling settings.
type AutoScalingSpec struct {
	// scalingStrategy is Default, ScaleByAPI, RayAutoscaler or CloudMonitorMetric.
	ScalingStrategy string `json:"scalingStrategy,omitempty"`
	// minReplicas is the minimum replica count.
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// maxReplicas is the maximum replica count.
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
	// podsToDelete lists pods to remove on scale-in.
	// +listType=atomic
	PodsToDelete []string `json:"podsToDelete,omitempty"`
	// autoscalingMetricSpec holds the metric that drives scaling.
	AutoscalingMetricSpec *AutoscalingMetricSpec `json:"autoscalingMetricSpec,omitempty"`
}

// AutoscalingMetricSpec is the metric that drives auto scaling.
type AutoscalingMetricSpec struct {
	// metricName is the metric name.
	MetricName string `json:"metricName,omitempty"`
	// targetValue is the target value.
	TargetValue *int32 `json:"targetValue,omitempty"`
	// tolerance is the tolerance in percent.
	Tolerance string `json:"tolerance,omitempty"`
	// stabilizationWindowSeconds is the cool-down.
	StabilizationWindowSeconds *int32 `json:"stabilizationWindowSeconds,omitempty"`
}

// AssignNodeSpec holds node pinning settings.
type AssignNodeSpec struct {
	// enableAssignNode is true when nodes are assigned.
	EnableAssignNode *bool `json:"enableAssignNode,omitempty"`
	// nodeNames lists the assigned nodes, comma-separated.
	NodeNames string `json:"nodeNames,omitempty"`
	// antiAffinityNodeNames lists nodes to avoid, comma-separated.
	AntiAffinityNodeNames string `json:"antiAffinityNodeNames,omitempty"`
	// hyperNodes lists assigned hyper nodes.
	// +listType=atomic
	HyperNodes []HyperNodeSpec `json:"hyperNodes,omitempty"`
	// antiAffinityHyperNodes lists hyper nodes to avoid.
	// +listType=atomic
	AntiAffinityHyperNodes []HyperNodeSpec `json:"antiAffinityHyperNodes,omitempty"`
}

// HyperNodeSpec is one hyper node.
type HyperNodeSpec struct {
	// hyperNodeName is the hyper node name.
	HyperNodeName string `json:"hyperNodeName,omitempty"`
	// nodeNames lists its nodes, comma-separated.
	NodeNames string `json:"nodeNames,omitempty"`
}

// HyperNodeSchedulingConfig holds hyper node scheduling settings.
type HyperNodeSchedulingConfig struct {
	// minAvailable is the minimum number of available nodes.
	MinAvailable *int32 `json:"minAvailable,omitempty"`
	// qualityPolicy is the quality policy.
	QualityPolicy string `json:"qualityPolicy,omitempty"`
}

// LocalMountSpec is one local mount.
type LocalMountSpec struct {
	// mountPath is the absolute mount path.
	MountPath string `json:"mountPath,omitempty"`
	// mountMode is Block or Filesystem.
	MountMode string `json:"mountMode,omitempty"`
	// localPath is the local path (ignored in Block mode).
	LocalPath string `json:"localPath,omitempty"`
}

// StartupDependency is a role that must reach a phase first.
type StartupDependency struct {
	// type is the role depended on.
	Type string `json:"type,omitempty"`
	// onPhase is the phase that satisfies the dependency.
	OnPhase string `json:"onPhase,omitempty"`
	// minReplicas is how many replicas must reach it.
	MinReplicas string `json:"minReplicas,omitempty"`
}

// SystemDisk holds system disk settings.
type SystemDisk struct {
	// category is the disk category.
	Category string `json:"category,omitempty"`
	// performanceLevel is the performance level.
	PerformanceLevel string `json:"performanceLevel,omitempty"`
	// size is the disk size.
	Size *int64 `json:"size,omitempty"`
}

// ServiceSpec holds service exposure settings.
type ServiceSpec struct {
	// serviceMode is PerRole or PerPod.
	ServiceMode string `json:"serviceMode,omitempty"`
	// defaultPort is the default port.
	DefaultPort *int32 `json:"defaultPort,omitempty"`
	// extraPorts lists further ports.
	// +listType=atomic
	ExtraPorts []int32 `json:"extraPorts,omitempty"`
}

// ExtraPodSpec holds extra pod settings.
type ExtraPodSpec struct {
	// initContainers lists init containers.
	// +listType=atomic
	InitContainers []ContainerSpec `json:"initContainers,omitempty"`
	// sideCarContainers lists sidecar containers.
	// +listType=atomic
	SideCarContainers []ContainerSpec `json:"sideCarContainers,omitempty"`
	// sharedVolumeMountPaths lists shared volume mount paths.
	// +listType=atomic
	SharedVolumeMountPaths []string `json:"sharedVolumeMountPaths,omitempty"`
	// lifecycle holds the main container hooks.
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`
	// mainContainerSecurityContext is the main container's security context.
	MainContainerSecurityContext *SecurityContext `json:"mainContainerSecurityContext,omitempty"`
	// podLabels holds pod labels (deprecated in the API).
	PodLabels map[string]string `json:"podLabels,omitempty"`
	// podAnnotations holds pod annotations (deprecated in the API); values are redacted unless
	// PodAnnotations is revealed.
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`
}

// ContainerSpec is an extra container.
type ContainerSpec struct {
	// name is the container name.
	Name string `json:"name,omitempty"`
	// image is the container image.
	Image string `json:"image,omitempty"`
	// command is the entrypoint (redacted unless Commands is revealed).
	// +listType=atomic
	Command []string `json:"command,omitempty"`
	// args are the arguments (redacted unless Commands is revealed).
	// +listType=atomic
	Args []string `json:"args,omitempty"`
	// workingDir is the working directory.
	WorkingDir string `json:"workingDir,omitempty"`
	// env lists environment variables; values are redacted like the job's envs.
	// +listType=atomic
	Env []EnvVar `json:"env,omitempty"`
	// resources holds resource limits and requests.
	Resources *ResourceRequirements `json:"resources,omitempty"`
	// securityContext is the container's security context.
	SecurityContext *SecurityContext `json:"securityContext,omitempty"`
}

// EnvVar is one environment variable.
type EnvVar struct {
	// name is the variable name.
	Name string `json:"name,omitempty"`
	// value is the variable value (redacted unless EnvValues is revealed).
	Value string `json:"value,omitempty"`
}

// ResourceRequirements holds resource limits and requests.
type ResourceRequirements struct {
	// limits maps resource names to limits.
	Limits map[string]string `json:"limits,omitempty"`
	// requests maps resource names to requests.
	Requests map[string]string `json:"requests,omitempty"`
}

// Lifecycle holds container hooks.
type Lifecycle struct {
	// postStart runs after the container starts.
	PostStart *LifecycleHandler `json:"postStart,omitempty"`
	// preStop runs before the container stops.
	PreStop *LifecycleHandler `json:"preStop,omitempty"`
}

// LifecycleHandler is one hook.
type LifecycleHandler struct {
	// exec runs a command.
	Exec *ExecAction `json:"exec,omitempty"`
}

// ExecAction is a command.
type ExecAction struct {
	// command is the command line (redacted unless Commands is revealed).
	// +listType=atomic
	Command []string `json:"command,omitempty"`
}

// SecurityContext is a container security context.
type SecurityContext struct {
	// privileged runs the container privileged.
	Privileged *bool `json:"privileged,omitempty"`
	// runAsUser is the UID.
	RunAsUser *int64 `json:"runAsUser,omitempty"`
	// runAsGroup is the GID.
	RunAsGroup *int64 `json:"runAsGroup,omitempty"`
	// capabilities adds and drops capabilities.
	Capabilities *Capabilities `json:"capabilities,omitempty"`
	// seccompProfile is the seccomp profile.
	SeccompProfile *SeccompProfile `json:"seccompProfile,omitempty"`
}

// Capabilities adds and drops Linux capabilities.
type Capabilities struct {
	// add lists capabilities to add.
	// +listType=atomic
	Add []string `json:"add,omitempty"`
	// drop lists capabilities to drop.
	// +listType=atomic
	Drop []string `json:"drop,omitempty"`
}

// SeccompProfile is a seccomp profile.
type SeccompProfile struct {
	// type is Localhost, RuntimeDefault or Unconfined.
	Type string `json:"type,omitempty"`
	// localhostProfile is the profile path for Localhost.
	LocalhostProfile string `json:"localhostProfile,omitempty"`
}

// JobElasticSpec holds elastic training parameters.
type JobElasticSpec struct {
	// enableElasticTraining turns elastic training on.
	EnableElasticTraining *bool `json:"enableElasticTraining,omitempty"`
	// minParallelism is the minimum parallelism.
	MinParallelism *int32 `json:"minParallelism,omitempty"`
	// maxParallelism is the maximum parallelism.
	MaxParallelism *int32 `json:"maxParallelism,omitempty"`
	// enableAIMaster turns AIMaster on.
	EnableAIMaster *bool `json:"enableAIMaster,omitempty"`
	// aiMasterType is the AIMaster instance type.
	AIMasterType string `json:"aiMasterType,omitempty"`
	// aiMasterDockerImage is the AIMaster image.
	AIMasterDockerImage string `json:"aiMasterDockerImage,omitempty"`
	// elasticStrategy is the elastic strategy.
	ElasticStrategy string `json:"elasticStrategy,omitempty"`
	// enablePsJobElasticPS makes PS elastic.
	EnablePsJobElasticPS *bool `json:"enablePsJobElasticPS,omitempty"`
	// enablePsJobElasticWorker makes workers elastic.
	EnablePsJobElasticWorker *bool `json:"enablePsJobElasticWorker,omitempty"`
	// enablePsResourceEstimate turns PS resource estimation on.
	EnablePsResourceEstimate *bool `json:"enablePsResourceEstimate,omitempty"`
	// psMinParallelism is the minimum PS parallelism.
	PSMinParallelism *int32 `json:"psMinParallelism,omitempty"`
	// psMaxParallelism is the maximum PS parallelism.
	PSMaxParallelism *int32 `json:"psMaxParallelism,omitempty"`
	// enableEDP turns EDP on.
	EnableEDP *bool `json:"enableEDP,omitempty"`
	// edpMinParallelism is the minimum EDP parallelism.
	EDPMinParallelism *int32 `json:"edpMinParallelism,omitempty"`
	// edpMaxParallelism is the maximum EDP parallelism.
	EDPMaxParallelism *int32 `json:"edpMaxParallelism,omitempty"`
}

// JobSettings holds extra job settings.
type JobSettings struct {
	// advancedSettings holds extra advanced settings, any JSON object; its string and number
	// values are redacted unless Settings is revealed.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	AdvancedSettings *apiextensionsv1.JSON `json:"advancedSettings,omitempty"`
	// allocateAllRDMADevices mounts all RDMA NICs.
	AllocateAllRDMADevices *bool `json:"allocateAllRDMADevices,omitempty"`
	// allowUnschedulableNodes allows unschedulable nodes.
	AllowUnschedulableNodes *bool `json:"allowUnschedulableNodes,omitempty"`
	// businessUserId is the associated user ID.
	BusinessUserID string `json:"businessUserId,omitempty"`
	// caller is the caller, e.g. SilkFlow.
	Caller string `json:"caller,omitempty"`
	// dataJuicerConfig holds DataJuicer task settings.
	DataJuicerConfig *DataJuicerConfig `json:"dataJuicerConfig,omitempty"`
	// disableEcsStockCheck skips the stock check.
	DisableEcsStockCheck *bool `json:"disableEcsStockCheck,omitempty"`
	// driver is the NVIDIA driver version.
	Driver string `json:"driver,omitempty"`
	// elasticSpotJobMaxRestartTimes bounds restarts of elastic spot jobs.
	ElasticSpotJobMaxRestartTimes *int32 `json:"elasticSpotJobMaxRestartTimes,omitempty"`
	// enableCPUAffinity turns CPU affinity on.
	EnableCPUAffinity *bool `json:"enableCPUAffinity,omitempty"`
	// enableDSWDev turns DSW development on.
	EnableDSWDev *bool `json:"enableDSWDev,omitempty"`
	// enableErrorMonitoringInAIMaster turns fault-tolerance monitoring on.
	EnableErrorMonitoringInAIMaster *bool `json:"enableErrorMonitoringInAIMaster,omitempty"`
	// enableOssAppend allows OSS append writes.
	EnableOssAppend *bool `json:"enableOssAppend,omitempty"`
	// enableRDMA allows RDMA.
	EnableRDMA *bool `json:"enableRDMA,omitempty"`
	// enableSanityCheck turns the compute health check on.
	EnableSanityCheck *bool `json:"enableSanityCheck,omitempty"`
	// enableTideResource allows tidal resources.
	EnableTideResource *bool `json:"enableTideResource,omitempty"`
	// errorMonitoringArgs holds fault-tolerance monitoring arguments (redacted unless Settings is
	// revealed).
	ErrorMonitoringArgs string `json:"errorMonitoringArgs,omitempty"`
	// jobReservedMinutes keeps resources this long after the job ends.
	JobReservedMinutes *int32 `json:"jobReservedMinutes,omitempty"`
	// jobReservedPolicy is the retention policy after the end, e.g. Always.
	JobReservedPolicy string `json:"jobReservedPolicy,omitempty"`
	// modelConfig holds the output model settings.
	ModelConfig *ModelConfig `json:"modelConfig,omitempty"`
	// oversoldType is ForbiddenQuotaOverSold, AcceptQuotaOverSold or ForceQuotaOverSold.
	OversoldType string `json:"oversoldType,omitempty"`
	// pipelineId is the workflow ID.
	PipelineID string `json:"pipelineId,omitempty"`
	// sanityCheckArgs holds health-check arguments (redacted unless Settings is revealed).
	SanityCheckArgs string `json:"sanityCheckArgs,omitempty"`
	// shell is the shell, e.g. /bin/bash.
	Shell string `json:"shell,omitempty"`
	// tags holds the job's custom tags.
	Tags map[string]string `json:"tags,omitempty"`
	// terminationGracePeriodSeconds is the termination grace period.
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
}

// DataJuicerConfig holds DataJuicer task settings.
type DataJuicerConfig struct {
	// commandType is shell or config.
	CommandType string `json:"commandType,omitempty"`
	// executionMode is standalone or distributed.
	ExecutionMode string `json:"executionMode,omitempty"`
	// enableResourceEstimation turns resource estimation on.
	EnableResourceEstimation *bool `json:"enableResourceEstimation,omitempty"`
	// resourceLimit bounds the resources.
	ResourceLimit *DataJuicerResourceLimit `json:"resourceLimit,omitempty"`
}

// DataJuicerResourceLimit bounds DataJuicer resources.
type DataJuicerResourceLimit struct {
	// cpu is the CPU limit.
	CPU string `json:"cpu,omitempty"`
	// gpu is the GPU limit.
	GPU string `json:"gpu,omitempty"`
	// memory is the memory limit.
	Memory string `json:"memory,omitempty"`
}

// ModelConfig holds the output model settings.
type ModelConfig struct {
	// modelName is the model name.
	ModelName string `json:"modelName,omitempty"`
	// modelTemplate is the model template.
	ModelTemplate *ModelTemplate `json:"modelTemplate,omitempty"`
}

// ModelTemplate is a model template.
type ModelTemplate struct {
	// collections is the collections.
	Collections string `json:"collections,omitempty"`
	// modelName is the model name.
	ModelName string `json:"modelName,omitempty"`
	// provider is the provider.
	Provider string `json:"provider,omitempty"`
}

// CredentialConfig holds credential injection settings.
type CredentialConfig struct {
	// enableCredentialInject turns credential injection on.
	EnableCredentialInject *bool `json:"enableCredentialInject,omitempty"`
	// aliyunEnvRoleKey is the role key.
	AliyunEnvRoleKey string `json:"aliyunEnvRoleKey,omitempty"`
	// credentialConfigItems lists the credentials injected.
	// +listType=atomic
	CredentialConfigItems []CredentialConfigItem `json:"credentialConfigItems,omitempty"`
}

// CredentialConfigItem is one injected credential.
type CredentialConfigItem struct {
	// key is the credential key.
	Key string `json:"key,omitempty"`
	// type is the credential type.
	Type string `json:"type,omitempty"`
	// roles lists the roles assumed.
	// +listType=atomic
	Roles []CredentialRole `json:"roles,omitempty"`
}

// CredentialRole is one assumed role.
type CredentialRole struct {
	// roleArn is the role ARN.
	RoleArn string `json:"roleArn,omitempty"`
	// roleType is the role type.
	RoleType string `json:"roleType,omitempty"`
	// assumeRoleFor is whom the role is assumed for.
	AssumeRoleFor string `json:"assumeRoleFor,omitempty"`
	// policy is the session policy.
	Policy string `json:"policy,omitempty"`
	// assumeUserInfo describes the assuming user (the security token is always redacted).
	AssumeUserInfo *AssumeUserInfo `json:"assumeUserInfo,omitempty"`
}

// AssumeUserInfo describes the user that assumes a role.
type AssumeUserInfo struct {
	// id is the user ID.
	ID string `json:"id,omitempty"`
	// type is the user type.
	Type string `json:"type,omitempty"`
	// accessKeyId is the AccessKey ID in use (always redacted by dlcsync).
	AccessKeyID string `json:"accessKeyId,omitempty"`
	// securityToken is always redacted by dlcsync.
	SecurityToken string `json:"securityToken,omitempty"`
}

// CodeSource is the code source a job used.
type CodeSource struct {
	// codeSourceId is the code source ID.
	CodeSourceID string `json:"codeSourceId,omitempty"`
	// branch is the branch.
	Branch string `json:"branch,omitempty"`
	// commit is the commit ID.
	Commit string `json:"commit,omitempty"`
	// mountPath is the mount path.
	MountPath string `json:"mountPath,omitempty"`
}

// DataSource is a data source a job used.
type DataSource struct {
	// dataSourceId is the data source ID.
	DataSourceID string `json:"dataSourceId,omitempty"`
	// mountPath is the mount path.
	MountPath string `json:"mountPath,omitempty"`
}

// UserVpc holds user VPC settings.
type UserVpc struct {
	// vpcId is the VPC ID.
	VpcID string `json:"vpcId,omitempty"`
	// switchId is the vSwitch ID.
	SwitchID string `json:"switchId,omitempty"`
	// securityGroupId is the security group ID.
	SecurityGroupID string `json:"securityGroupId,omitempty"`
	// extendedCidrs lists extra CIDRs to reach.
	// +listType=atomic
	ExtendedCidrs []string `json:"extendedCidrs,omitempty"`
	// defaultRoute is eth0 or eth1.
	DefaultRoute string `json:"defaultRoute,omitempty"`
}
