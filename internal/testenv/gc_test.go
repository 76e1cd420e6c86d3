package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestTheGarbageCollectorCollectsAndStops: a started collector completes a foreground deletion
// (only a garbage collector removes the foregroundDeletion finalizer and the dependent), runs
// nothing but the garbage collector, and ends on Stop.
func TestTheGarbageCollectorCollectsAndStops(t *testing.T) {
	env, cfg, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	started := time.Now()
	gc := StartGarbageCollector(t, cfg)
	t.Logf("collecting %s after the start", time.Since(started).Round(10*time.Millisecond))

	ctx := context.Background()
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "owner"}}
	if err := c.Create(ctx, owner); err != nil {
		t.Fatal(err)
	}
	dependent := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "dependent",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: owner.UID}}}}
	if err := c.Create(ctx, dependent); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, owner, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []client.Object{dependent, owner} {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
			return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(obj), &corev1.ConfigMap{})), nil
		})
		if err != nil {
			t.Fatalf("%s was not collected: %v\n%s", obj.GetName(), err, gc.Tail(40))
		}
	}
	// Note: no other controller runs, so nothing else of the cluster changes under a test.
	var controllers []string
	for line := range strings.Lines(gc.Tail(1000)) {
		if strings.Contains(line, `"Starting controller"`) {
			controllers = append(controllers, line)
		}
	}
	if len(controllers) != 1 || !strings.Contains(controllers[0], `controller="garbagecollector"`) {
		t.Errorf("controllers started: %q, want only the garbage collector", controllers)
	}
	stopping := time.Now()
	if err := gc.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %s", time.Since(stopping).Round(10*time.Millisecond))
	if !gc.Exited() {
		t.Fatal("kube-controller-manager still running after Stop")
	}
	if err := gc.Stop(); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
}
