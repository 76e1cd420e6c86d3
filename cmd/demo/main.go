// Command demo runs the whole of dlcsync on one machine with no cloud account and no cluster: a
// local kube-apiserver and etcd, the dlcsim simulator with a changing workload, the sample
// JobQueries, and the manager; then it shows the snapshots and events live.
//
//	make demo                       # until Ctrl-C
//	make demo DEMO_ARGS="--for 90s" # non-interactive, prints a summary and exits 0
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/controllers"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
	"github.com/dlcsync/dlcsync/internal/version"
)

const namespace = "dlc-demo"

type options struct {
	runFor     time.Duration
	kubeconfig string
	jobs       int
	interval   time.Duration
	refresh    time.Duration
	rows       int
}

func main() {
	var o options
	fs := pflag.NewFlagSet("demo", pflag.ContinueOnError)
	fs.DurationVar(&o.runFor, "for", 0, "run this long, print a summary and exit (0: until Ctrl-C)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "bin/demo-kubeconfig", "where to write the kubeconfig of the demo cluster")
	fs.IntVar(&o.jobs, "jobs", 200, "synthetic jobs the simulator starts with")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "sync interval of the demo JobQueries")
	fs.DurationVar(&o.refresh, "refresh", 10*time.Second, "how often the snapshot table is printed")
	fs.IntVar(&o.rows, "rows", 12, "how many of the newest snapshots the table shows")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(name string, f func() error) error {
	start := time.Now()
	fmt.Printf("==> %s ...\n", name)
	if err := f(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Printf("    done in %.1fs\n", time.Since(start).Seconds())
	return nil
}

func run(o options) error {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.runFor)
		defer cancel()
	}

	var env *envtest.Environment
	var k8s client.Client
	var kubectlPath string
	if err := step("Starting a local kube-apiserver and etcd with the dlcsync CRDs", func() error {
		e, cfg, err := testenv.Start()
		if err != nil {
			return err
		}
		env = e
		k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
		if err != nil {
			return err
		}
		kubectlPath = filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
		return testenv.WriteKubeconfig(env, "demo", o.kubeconfig)
	}); err != nil {
		return err
	}
	defer func() {
		fmt.Println("==> Stopping the control plane")
		_ = env.Stop()
	}()

	var simURL string
	if err := step(fmt.Sprintf("Starting dlcsim with %d jobs that keep changing", o.jobs), func() (err error) {
		simURL, err = startSimulator(ctx, o.jobs)
		return err
	}); err != nil {
		return err
	}

	if err := step("Creating namespace "+namespace+", the credentials Secret and the sample JobQueries", func() error {
		return createSamples(ctx, k8s, simURL, demoIdentity, o.interval)
	}); err != nil {
		return err
	}

	mgrDone := make(chan error, 1)
	if err := step("Starting the dlcsync manager", func() error { return startManager(ctx, env, mgrDone) }); err != nil {
		return err
	}

	printInstructions(o, kubectlPath)

	tracker := newTracker()
	go watchEvents(ctx, env, tracker)
	ticker := time.NewTicker(o.refresh)
	defer ticker.Stop()
	showTable(kubectlPath, o.kubeconfig, o.rows)
	for {
		select {
		case <-ctx.Done():
			tracker.summary(ctx, k8s)
			if err := <-mgrDone; err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("manager: %w", err)
			}
			return nil
		case <-ticker.C:
			showTable(kubectlPath, o.kubeconfig, o.rows)
			tracker.snapshotPhases(context.Background(), k8s)
		}
	}
}

// demoIdentity is the one AccessKey the demo's simulator knows and its Secret holds.
var demoIdentity = dlcsim.Identity{AccessKeyID: "demo-key", AccessKeySecret: "demo-secret-do-not-use", UserID: "1557702098194903",
	Username: "demo-admin", Admin: true}

// startSimulator serves that many generated jobs, which keep changing, on a loopback port until ctx
// ends, and returns its URL.
func startSimulator(ctx context.Context, jobs int) (string, error) {
	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{demoIdentity}, Control: true, Seed: uint64(time.Now().UnixNano())})
	sim.Generate(jobs)
	sim.EnableLifecycle(dlcsim.Lifecycle{SubmitPerMinute: 12, Pace: 0.5})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	simURL := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	go sim.RunLifecycle(ctx, time.Second)
	fmt.Printf("    ListJobs at %s (control API at %s/_sim/stats)\n", simURL, simURL)
	return simURL, nil
}

// startManager runs the reconciler as the manager binary does, until ctx ends; its end is sent
// to done.
func startManager(ctx context.Context, env *envtest.Environment, done chan<- error) error {
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: testenv.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: controllers.CacheOptions(nil)})
	if err != nil {
		return err
	}
	// The simulator listens on loopback over plain HTTP, which an administrator must
	// allow explicitly, as with --allowed-endpoints=http://127.0.0.1:* on the real manager.
	if _, err := controllers.Setup(ctx, mgr, controllers.Options{AllowedEndpoints: testenv.LoopbackEndpoints}); err != nil {
		return err
	}
	go func() { done <- mgr.Start(ctx) }()
	return nil
}

// printInstructions tells the user what to paste into another terminal.
func printInstructions(o options, kubectlPath string) {
	abs, _ := filepath.Abs(o.kubeconfig)
	fmt.Printf("\nThe demo cluster is running. In another terminal:\n\n"+
		"    export KUBECONFIG=%s\n"+
		"    alias kubectl=%s\n"+
		"    kubectl get jobqueries -n %s\n"+
		"    kubectl get dlcjobsnapshots -n %s -l dlc.dlcsync.io/status=Failed\n"+
		"    kubectl wait -n %s djs --all --for=condition=Complete --timeout=60s\n"+
		"    make -C %[6]s build-plugin && %[6]s/bin/kubectl-dlcsync status recent-jobs -n %[3]s\n\n",
		abs, kubectlPath, namespace, namespace, namespace, testenv.RepoRoot())
	if o.runFor > 0 {
		fmt.Printf("Running for %s, then printing a summary.\n\n", o.runFor)
	} else {
		fmt.Print("Press Ctrl-C to stop everything.\n\n")
	}
}

// createSamples creates the namespace, the Secret and the JobQueries of config/samples, pointed at
// the simulator and synced every interval.
func createSamples(ctx context.Context, k8s client.Client, simURL string, id dlcsim.Identity, interval time.Duration) error {
	// The Secret's label lets the JobQueries of the namespace use it (docs/quickstart.md).
	if err := testenv.CreateTenant(ctx, k8s, namespace, id.AccessKeyID, id.AccessKeySecret); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "dlc_v1alpha1_*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		q := &dlcv1alpha1.JobQuery{}
		if err := yaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096).Decode(q); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		q.Namespace = namespace
		q.Spec.Endpoint = simURL
		q.Spec.Interval = metav1.Duration{Duration: interval}
		if err := k8s.Create(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		fmt.Printf("    JobQuery %s (%s)\n", q.Name, filepath.Base(f))
	}
	return nil
}

// showTable prints the newest snapshots the way `kubectl get djs` does, through the real kubectl.
func showTable(kubectl, kubeconfig string, rows int) {
	out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "get", "djs", "-n", namespace,
		"--sort-by=.status.createdAt").CombinedOutput()
	if err != nil {
		fmt.Printf("kubectl: %v: %s\n", err, out)
		return
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	fmt.Printf("--- %s  kubectl get djs -n %s (newest %d of %d) ---\n",
		time.Now().Format("15:04:05"), namespace, min(rows, len(lines)-1), len(lines)-1)
	if len(lines) > 0 {
		fmt.Println(lines[0])
		start := max(1, len(lines)-rows)
		for i := len(lines) - 1; i >= start; i-- {
			fmt.Println(lines[i])
		}
	}
	fmt.Println()
}

// tracker remembers the phases first seen and the events received.
type tracker struct {
	mu         sync.Mutex
	firstPhase map[string]string
	lastPhase  map[string]string
	names      map[string]string
	events     map[string]int
}

func newTracker() *tracker {
	return &tracker{firstPhase: map[string]string{}, lastPhase: map[string]string{}, names: map[string]string{}, events: map[string]int{}}
}

func (t *tracker) snapshotPhases(ctx context.Context, k8s client.Client) {
	var list dlcv1alpha1.DLCJobSnapshotList
	if err := k8s.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range list.Items {
		if _, ok := t.firstPhase[s.Name]; !ok {
			t.firstPhase[s.Name] = s.Status.Phase
		}
		t.lastPhase[s.Name] = s.Status.Phase
		t.names[s.Name] = s.Status.DisplayName
	}
}

func watchEvents(ctx context.Context, env *envtest.Environment, t *tracker) {
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return
	}
	w, err := cs.EventsV1().Events(namespace).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		e, ok := ev.Object.(*eventsv1.Event)
		if !ok {
			continue
		}
		t.mu.Lock()
		t.events[e.Reason]++
		t.mu.Unlock()
		fmt.Printf("EVENT %s  %-7s %-20s %s/%s: %s\n", time.Now().Format("15:04:05"), e.Type, e.Reason,
			strings.ToLower(e.Regarding.Kind), e.Regarding.Name, e.Note)
	}
}

func (t *tracker) summary(_ context.Context, k8s client.Client) {
	t.snapshotPhases(context.Background(), k8s)
	var queries dlcv1alpha1.JobQueryList
	_ = k8s.List(context.Background(), &queries, client.InNamespace(namespace))
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Println("\n=== Summary ===")
	for _, q := range queries.Items {
		ready := "-"
		for _, c := range q.Status.Conditions {
			if c.Type == dlcv1alpha1.ConditionReady {
				ready = string(c.Status) + " (" + c.Reason + ")"
			}
		}
		fmt.Printf("JobQuery %-22s ready %-18s matched %4d  snapshots %4d\n", q.Name, ready, q.Status.MatchedJobs, q.Status.Snapshots)
	}
	phases := map[string]int{}
	var changed []string
	for name, last := range t.lastPhase {
		phases[last]++
		if first := t.firstPhase[name]; first != last {
			changed = append(changed, fmt.Sprintf("  %s (%s): %s -> %s", name, t.names[name], first, last))
		}
	}
	sort.Strings(changed)
	fmt.Printf("Snapshots: %d, by status: %v\n", len(t.lastPhase), phases)
	fmt.Printf("Snapshots whose status changed during the run: %d\n", len(changed))
	for i, c := range changed {
		if i == 15 {
			fmt.Printf("  ... and %d more\n", len(changed)-15)
			break
		}
		fmt.Println(c)
	}
	fmt.Printf("Events by reason: %v\n", t.events)
}
