package dlcsim

import (
	"fmt"
	mathrand "math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// generator makes plausible synthetic jobs, deterministically under a seed.
type generator struct {
	mu    sync.Mutex
	rng   *mathrand.Rand
	users []genUser
	seq   int
}

type genUser struct{ id, name string }

type genWorkspace struct{ id, name string }

// genJobType is a kind of job the generator makes: its weight among the kinds, image, commands
// and roles.
type genJobType struct {
	name   string
	weight int
	image  string
	cmd    []string
	roles  []string
}

const (
	reasonJobFailed = "JobFailed"
	roleMaster      = "Master"
	roleWorker      = "Worker"
)

var (
	workspaces = []genWorkspace{{"268", "dlc-workspace"}, {"1024", "vision-team"}, {"2048", "推荐算法"}, {"4096", "llm-research"}}
	jobTypes   = []genJobType{
		{"PyTorchJob", 40, "dsw-registry-vpc.cn-hangzhou.cr.aliyuncs.com/pai/pytorch-training:2.1-gpu-py310-cu121-ubuntu22.04",
			[]string{"torchrun --nproc_per_node 8 train.py --epochs 90", "python train.py --config configs/resnet50.yaml",
				"python -m torch.distributed.run finetune.py --model llama-7b"},
			[]string{roleMaster, roleWorker}},
		{"TFJob", 18, "dsw-registry-vpc.cn-hangzhou.cr.aliyuncs.com/pai/tensorflow-training:2.14-gpu-py310-cu118-ubuntu22.04",
			[]string{"python /root/code/mnist.py", "python train_estimator.py --train_steps 10000"}, []string{"Chief", "PS", roleWorker}},
		{"XGBoostJob", 8, "dsw-registry-vpc.cn-hangzhou.cr.aliyuncs.com/pai/xgboost:1.7-cpu-py39",
			[]string{"python xgb_train.py --rounds 500", "python -m ctr.train --booster gbtree"}, []string{roleMaster, roleWorker}},
		{"ElasticBatchJob", 7, "dsw-registry-vpc.cn-hangzhou.cr.aliyuncs.com/pai/elastic-batch:1.0-py310",
			[]string{"python batch_infer.py --input oss://bucket/data"}, []string{roleWorker}},
		{"OneFlowJob", 5, "dsw-registry-vpc.cn-hangzhou.cr.aliyuncs.com/pai/oneflow:0.9-cu117",
			[]string{"python3 -m oneflow.distributed.launch train.py"}, []string{roleMaster, roleWorker}},
		{"MPIJob", 7, "dsw-registry-vpc.cn-hangzhou.cr.aliyuncs.com/pai/horovod:0.28-pytorch2.0-gpu",
			[]string{"horovodrun -np 16 python train_hvd.py"}, []string{"Launcher", roleWorker}},
		{"RayJob", 8, "dsw-registry-vpc.cn-hangzhou.cr.aliyuncs.com/pai/ray:2.9-py310-gpu",
			[]string{"python ray_tune.py --num-samples 64", "ray job submit -- python train_rl.py"}, []string{"Head", roleWorker}},
	}
	nameStems = []string{"resnet50-imagenet", "llama-7b-sft", "bert-base-finetune", "yolov8-det", "ctr-deepfm", "qwen-14b-lora",
		"wav2vec-asr", "stable-diffusion-xl", "gpt2-pretrain", "vit-b16", "图像分类训练", "推荐模型离线训练", "大模型微调", "语音识别实验", "目标检测评估"}
	failures = []struct{ code, message string }{
		{reasonJobFailed, "Worker-0 exited with code 137: OOMKilled, the container ran out of memory."},
		{reasonJobFailed, "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB."},
		{reasonJobFailed, "训练进程异常退出：显存不足 (CUDA out of memory)。"},
		{"ImagePullFailed", "Failed to pull image: manifest unknown."},
		{"NodeFailure", "节点故障，任务被驱逐后重试次数用尽。"},
		{reasonJobFailed, "NCCL timeout: watchdog caught collective operation timeout."},
		{reasonJobFailed, "ModuleNotFoundError: No module named 'transformers'."},
	}
	quotas = []struct{ id, name string }{{"quota1vision", "vision-gpu-quota"}, {"quota2llm", "llm-a100-quota"}, {"quota3rec", "推荐算法配额"}}
	gpus   = []string{"0", "1", "1", "2", "4", "8", "8", "16"}
)

func newGenerator(seed uint64, identities []Identity) *generator {
	g := &generator{rng: mathrand.New(mathrand.NewPCG(seed, seed+1))}
	for _, id := range identities {
		g.users = append(g.users, genUser{id.UserID, id.Username})
	}
	g.users = append(g.users, genUser{"1557702098194904", "alice"}, genUser{"1557702098194905", "bob"},
		genUser{"1557702098194906", "pai-dlc-role"}, genUser{"1557702098194907", "张伟"})
	return g
}

func (g *generator) pick(n int) int { return g.rng.IntN(n) }

// jobID returns an ID shaped like the service's (dlc + 14 lowercase alphanumerics).
func (g *generator) jobID() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 14)
	for i := range b {
		b[i] = alphabet[g.pick(len(alphabet))]
	}
	return "dlc" + string(b)
}

// Generate returns n jobs created over the 30 days before now, in plausible states.
func (g *generator) generate(n int, now time.Time) []Job {
	out := make([]Job, 0, n)
	for i := 0; i < n; i++ {
		// A fifth of the jobs are from the last six hours, the rest spread over 30 days.
		span := 30 * 24 * time.Hour
		if g.pick(5) == 0 {
			span = 6 * time.Hour
		}
		created := now.Add(-time.Duration(g.rng.Int64N(int64(span))))
		out = append(out, g.job(created, now, ""))
	}
	return out
}

// newJob returns a job submitted at now, in state Creating, owned by userID when set.
func (g *generator) newJob(now time.Time, userID string) Job {
	g.mu.Lock()
	defer g.mu.Unlock()
	j := g.jobLocked(now, now, userID)
	setStatus(&j.JobItem, dlc.StatusCreating, "", "", now)
	j.UseOversoldResource = nil
	return j
}

func (g *generator) job(created, now time.Time, userID string) Job {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.jobLocked(created, now, userID)
}

// jobLocked generates one job created at created, as seen at now, submitted by userID (or a
// random user). The random draws happen in a fixed order, so a seed always generates the
// same jobs; keep the order when changing a part.
func (g *generator) jobLocked(created, now time.Time, userID string) Job {
	g.seq++
	jt := g.pickJobType()
	user := g.pickUser(userID)
	ws := workspaces[g.pick(len(workspaces))]
	gpu := gpus[g.pick(len(gpus))]
	cpu := int64(4 + 4*g.pick(16))
	priority := int32(1 + g.pick(9))
	stem := nameStems[g.pick(len(nameStems))]
	it := dlc.JobItem{
		JobID:         g.jobID(),
		DisplayName:   fmt.Sprintf("%s-%d", stem, 1+g.pick(999)),
		JobType:       jt.name,
		Accessibility: []string{dlc.AccessibilityPublic, dlc.AccessibilityPublic, dlc.AccessibilityPublic, dlc.AccessibilityPrivate}[g.pick(4)],
		WorkspaceID:   ws.id,
		WorkspaceName: ws.name,
		UserID:        user.id,
		Username:      user.name,
		TenantID:      "1557702098194900",
		ClusterID:     "c9e1a2b3c4d5e6f70",
		ResourceType:  []string{"ECS", "ECS", "Lingjun", "ACS"}[g.pick(4)],
		Priority:      &priority,
		RequestCPU:    &cpu,
		RequestGPU:    gpu,
		RequestMemory: strconv.FormatInt(cpu*4, 10) + "Gi",
		NodeCount:     strconv.Itoa(1 + g.pick(4)),
		RestartTimes:  "0",
		UserCommand:   jt.cmd[g.pick(len(jt.cmd))],
		WorkingDir:    "/root/code",
		Envs:          map[string]string{"NCCL_DEBUG": "INFO", "WANDB_API_KEY": "wandb-" + strconv.Itoa(100000+g.pick(900000))},
		TemplateID:    []string{"", "", "tml1a2b3c", "tml4d5e6f"}[g.pick(4)],
		Settings: &dlc.JobSettings{
			Caller: []string{"local", "console", "SilkFlow", "sdk"}[g.pick(4)],
			Tags:   map[string]string{"team": []string{"vision", "nlp", "rec", "speech"}[g.pick(4)], "env": []string{"prod", "dev"}[g.pick(2)]},
			Driver: "535.54.03",
			Shell:  "/bin/bash",
		},
		GmtCreateTime: dlc.FormatTime(created),
	}
	g.addSettingsAndQuota(&it, user)
	it.JobSpecs = g.jobSpecs(jt, it.ResourceID != "", cpu, gpu)
	job := Job{JobItem: it, Description: fmt.Sprintf("%s run %d by %s", stem, g.seq, user.name)}

	status := g.pickStatus(created, now)
	g.advanceTo(&job.JobItem, status, created, now)
	if status == dlc.StatusCreating || status == dlc.StatusQueuing {
		// Not scheduled yet: whether it will use idle resources is not decided (see schedule).
		job.UseOversoldResource = nil
	}
	return job
}

// pickJobType draws a job type by weight.
func (g *generator) pickJobType() genJobType {
	total := 0
	for _, t := range jobTypes {
		total += t.weight
	}
	k, w := g.pick(total), 0
	for _, t := range jobTypes {
		if w += t.weight; k < w {
			return t
		}
	}
	return jobTypes[0]
}

// pickUser draws a user; with userID set, the draw still happens (the order of draws is what a
// seed reproduces) and the user of that ID is returned.
func (g *generator) pickUser(userID string) genUser {
	user := g.users[g.pick(len(g.users))]
	if userID != "" {
		for _, u := range g.users {
			if u.id == userID {
				user = u
			}
		}
	}
	return user
}

// addSettingsAndQuota sets the optional pipeline and business user, and for most jobs a quota
// with its oversold settings.
func (g *generator) addSettingsAndQuota(it *dlc.JobItem, user genUser) {
	if g.pick(5) == 0 {
		it.Settings.PipelineID = fmt.Sprintf("flow-%06d", g.pick(1000000))
	}
	if g.pick(6) == 0 {
		it.Settings.BusinessUserID = "bu-" + user.id
	}
	if g.pick(4) > 0 {
		q := quotas[g.pick(len(quotas))]
		it.ResourceID, it.ResourceQuotaName, it.ResourceName = q.id, q.name, q.name
		it.Settings.OversoldType = oversoldTypes[g.pick(len(oversoldTypes))]
		used := g.pick(2) == 0
		it.UseOversoldResource = &used
	}
}

// jobSpecs is one spec per role of the job type; jobs without a quota may run on spot instances.
func (g *generator) jobSpecs(jt genJobType, onQuota bool, cpu int64, gpu string) []dlc.JobSpec {
	specs := make([]dlc.JobSpec, 0, len(jt.roles))
	for _, role := range jt.roles {
		pods := int64(1 + g.pick(4))
		spec := dlc.JobSpec{Type: role, Image: jt.image, PodCount: &pods, EcsSpec: "ecs.gn7i-c32g1.8xlarge",
			ResourceConfig: &dlc.ResourceConfig{CPU: strconv.FormatInt(cpu, 10), GPU: gpu, GPUType: "NVIDIA-A10",
				Memory: strconv.FormatInt(cpu*4, 10) + "Gi"}}
		if !onQuota && g.pick(3) == 0 {
			discount := 0.8
			spec.SpotSpec = &dlc.SpotSpec{SpotStrategy: "SpotWithPriceLimit", SpotDiscountLimit: &discount}
		}
		if g.pick(10) == 0 {
			on := true
			spec.AssignNodeSpec = &dlc.AssignNodeSpec{EnableAssignNode: &on, NodeNames: "lingjun-node-1"}
		}
		specs = append(specs, spec)
	}
	return specs
}

// pickStatus draws the status of a job created at created, as seen at now: a job created long
// ago has most likely finished; a recent one may still be on its way.
func (g *generator) pickStatus(created, now time.Time) string {
	r := g.pick(100)
	if now.Sub(created) > 6*time.Hour {
		switch {
		case r < 60:
			return dlc.StatusSucceeded
		case r < 78:
			return dlc.StatusFailed
		case r < 88:
			return dlc.StatusStopped
		case r < 92:
			// Long queues happen on busy quotas.
			return dlc.StatusQueuing
		}
		return dlc.StatusRunning
	}
	switch {
	case r < 15:
		return dlc.StatusCreating
	case r < 35:
		return dlc.StatusQueuing
	case r < 45:
		return dlc.StatusEnvPreparing
	case r < 60:
		return dlc.StatusSucceeded
	case r < 66:
		return dlc.StatusFailed
	}
	return dlc.StatusRunning
}

// advanceTo fills the timestamps and history of a job that went from creation to status.
func (g *generator) advanceTo(it *dlc.JobItem, status string, created, now time.Time) {
	path := []string{dlc.StatusCreating, dlc.StatusQueuing, dlc.StatusEnvPreparing, dlc.StatusRunning}
	t := created
	it.StatusHistory = nil
	for _, s := range path {
		setStatus(it, s, "", "", t)
		if s == status {
			return
		}
		t = t.Add(time.Duration(30+g.pick(600)) * time.Second)
		if t.After(now) {
			t = now
		}
	}
	end := t.Add(time.Duration(600+g.pick(36000)) * time.Second)
	if end.After(now) {
		end = now
	}
	code, msg := "", ""
	switch status {
	case dlc.StatusSucceeded:
		code, msg = "JobSucceeded", "Job has succeeded."
	case dlc.StatusFailed:
		f := failures[g.pick(len(failures))]
		code, msg = f.code, f.message
	case dlc.StatusStopped:
		code, msg = "JobStoppedByUser", "Job is stopped by user."
	}
	setStatus(it, status, code, msg, end)
}

// setStatus moves a job to status at t: history, timestamps, duration and reason follow.
func setStatus(it *dlc.JobItem, status, reasonCode, reasonMessage string, t time.Time) {
	ts := dlc.FormatTime(t)
	if n := len(it.StatusHistory); n > 0 {
		it.StatusHistory[n-1].EndTime = ts
	}
	it.StatusHistory = append(it.StatusHistory,
		dlc.StatusTransitionItem{Status: status, StartTime: ts, ReasonCode: reasonCode, ReasonMessage: reasonMessage})
	it.Status, it.ReasonCode, it.ReasonMessage, it.GmtModifiedTime = status, reasonCode, reasonMessage, ts
	switch status {
	case dlc.StatusQueuing:
		it.GmtSubmittedTime = ts
	case dlc.StatusRunning:
		if it.GmtRunningTime == "" {
			it.GmtRunningTime = ts
		}
		it.SubStatus = ""
	case dlc.StatusRestarting:
		it.SubStatus = dlc.StatusRestarting
		n, _ := strconv.Atoi(it.RestartTimes)
		it.RestartTimes = strconv.Itoa(n + 1)
	case dlc.StatusSucceeded:
		it.GmtSuccessedTime, it.GmtFinishTime = ts, ts
	case dlc.StatusFailed:
		it.GmtFailedTime, it.GmtFinishTime = ts, ts
	case dlc.StatusStopped:
		it.GmtStoppedTime, it.GmtFinishTime = ts, ts
	}
	if it.GmtRunningTime != "" {
		if start, err := time.Parse(dlc.TimeLayout, it.GmtRunningTime); err == nil && !t.Before(start) {
			d := int64(t.Sub(start) / time.Second)
			it.Duration = &d
		}
	}
}

// Generate adds n synthetic jobs created over the 30 days before the server's clock.
func (s *Server) Generate(n int) []Job {
	jobs := s.gen.generate(n, s.clock.Now())
	s.Upsert(jobs...)
	return jobs
}
