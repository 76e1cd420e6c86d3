package controllers

import (
	"encoding/json"
	"fmt"
	"strings"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// leakedSecrets are the credentials the tests of this package hand to the manager (AccessKey IDs
// and secrets, right and wrong) and an environment value of the jobs they list.
func leakedSecrets() []string {
	return []string{simAdmin.AccessKeyID, simAdmin.AccessKeySecret, simDeny.AccessKeyID, simDeny.AccessKeySecret,
		"very-secret-value", "wrong-secret", "breaker-wrong-secret", "x-secret", "old-wrong"}
}

// scanForLeaks runs after every test of the package (TestMain), in whatever order and subset
// they ran: after they synced, failed, rotated and retried, no credential and no environment
// value may appear in a log line (debug included), an event, a JobQuery status or a snapshot.
func scanForLeaks() error {
	var queries dlcv1alpha1.JobQueryList
	var snaps dlcv1alpha1.DLCJobSnapshotList
	var evs eventsv1.EventList
	sources := map[string]string{"logs": capturedLogs.String()}
	if sources["logs"] == "" {
		return fmt.Errorf("no log line was captured: the scan would prove nothing")
	}
	for name, obj := range map[string]client.ObjectList{"JobQuery statuses": &queries, "snapshots": &snaps, "events": &evs} {
		if err := k8s.List(testCtx, obj); err != nil {
			return fmt.Errorf("listing %s: %w", name, err)
		}
		data, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		sources[name] = string(data)
	}
	var found []string
	for where, text := range sources {
		for _, secret := range leakedSecrets() {
			if strings.Contains(text, secret) {
				found = append(found, fmt.Sprintf("%q appears in the %s", secret, where))
			}
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("leaked: %s", strings.Join(found, "; "))
	}
	return nil
}
