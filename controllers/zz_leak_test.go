package controllers

import (
	"encoding/json"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// TestNoSecretReachesLogsEventsOrStatus runs last (files run in name order): after every other
// test of the package has synced, failed, rotated and retried, no credential secret and no
// environment value appears in a log line (debug included), an event, a JobQuery status or a
// snapshot.
func TestNoSecretReachesLogsEventsOrStatus(t *testing.T) {
	g := NewWithT(t)
	secrets := []string{simAdmin.AccessKeySecret, simDeny.AccessKeySecret, "very-secret-value", "wrong-secret",
		"breaker-wrong-secret", "x-secret", "old-wrong"}

	var queries dlcv1alpha1.JobQueryList
	g.Expect(k8s.List(testCtx, &queries)).To(Succeed())
	if len(queries.Items) < 10 {
		t.Skip("run the whole package: this scan needs what the other tests leave behind")
	}
	logs := capturedLogs.String()
	g.Expect(strings.Count(logs, "\n")).To(BeNumerically(">", 100), "the logs were not captured")
	var snaps dlcv1alpha1.DLCJobSnapshotList
	g.Expect(k8s.List(testCtx, &snaps)).To(Succeed())
	var evs eventsv1.EventList
	g.Expect(k8s.List(testCtx, &evs)).To(Succeed())
	g.Expect(queries.Items).NotTo(BeEmpty())
	g.Expect(evs.Items).NotTo(BeEmpty())

	sources := map[string]string{"logs": logs}
	for name, obj := range map[string]any{"JobQuery statuses": queries, "snapshots": snaps, "events": evs} {
		data, err := json.Marshal(obj)
		g.Expect(err).NotTo(HaveOccurred())
		sources[name] = string(data)
	}
	for where, text := range sources {
		for _, secret := range secrets {
			g.Expect(strings.Contains(text, secret)).To(BeFalse(), "%q appears in the %s", secret, where)
		}
	}
}
