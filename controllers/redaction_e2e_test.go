package controllers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/snapshot/snapshottest"
)

// userinfo matches the password of the URLs seeded into every field that is not a secret field.
var userinfo = regexp.MustCompile(`alice|pw\d{3}z`)

// leakJob is a job whose every string field holds something secret-looking: the fields that can
// carry a secret a distinct marker each (returned by path), every other field a URL with a
// password in its userinfo; only the fields the simulator and the snapshot name need are valid.
func leakJob(id, displayName string) (dlcsim.Job, map[string]string) {
	job := dlc.JobItem{}
	markers := map[string]string{}
	n := 0
	snapshottest.Seed(&job, func(path string) string {
		n++
		if _, secret := snapshottest.SecretFields[path]; secret {
			markers[path] = fmt.Sprintf("s3cr3t%03dx", n)
			return markers[path]
		}
		return fmt.Sprintf("see https://alice:pw%03dz@example.com/p", n)
	})
	job.JobID, job.JobType, job.Status = id, "PyTorchJob", dlc.StatusRunning
	// The filter's prefix, then a URL with a password, as a careless user names a job.
	job.DisplayName = displayName + " from https://alice:pw999z@example.com/data"
	job.UserID, job.WorkspaceID, job.Accessibility = simAdmin.UserID, "268", "PUBLIC"
	// Every top-level timestamp valid, so the simulator orders and filters the job.
	v := reflect.ValueOf(&job).Elem()
	for i := 0; i < v.NumField(); i++ {
		if strings.HasPrefix(v.Type().Field(i).Name, "Gmt") && v.Field(i).Kind() == reflect.String {
			v.Field(i).SetString(dlc.FormatTime(time.Now().Add(-2 * time.Hour)))
		}
	}
	return dlcsim.Job{JobItem: job}, markers
}

// Every secret-looking value of a job, in every string field, reaches no log line, event, metric,
// JobQuery status or snapshot, through the real manager; the revealed groups show up in the
// snapshot of a query that reveals them, in a namespace where that is allowed, and nowhere else.
func TestNoSecretOfAJobReachesLogsEventsMetricsOrStatusUnlessRevealed(t *testing.T) {
	g := NewWithT(t)
	own := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{simAdmin}, Seed: 17})
	srv := httptest.NewServer(own.Handler())
	t.Cleanup(srv.Close)
	job, markers := leakJob("dlcleake2e0001", "leake2e")
	own.Upsert(job)
	g.Expect(markers).To(HaveLen(len(snapshottest.SecretFields)), "a secret field was not seeded")

	plain := newNamespace(t)
	reveal := newNamedNamespace(t, revealAllowed)
	for ns, groups := range map[string][]dlcv1alpha1.RevealGroup{plain: nil, reveal: dlcv1alpha1.RevealGroups} {
		q := query(ns, "leak")
		q.Spec.Endpoint = srv.URL
		q.Spec.Filter.DisplayName = "leake2e"
		q.Spec.Snapshot.Reveal = groups
		createReady(t, q, dlcv1alpha1.ReasonSynced)
	}
	// The job fails (a phase change: an event that names the job and its reason), and the next
	// request fails with a made-up code: counted, but never a label of its own.
	own.Patch(job.JobID, func(j *dlcsim.Job) { j.Status = dlc.StatusFailed })
	own.SetFaults(dlcsim.Faults{FailRequests: []int{1}, FailCode: "s3cr3tCODEx", FailStatus: 500})
	g.Expect(resync(t, plain, "leak", dlcv1alpha1.ReasonSynced).Status.LastSyncStats.Retries).To(BeNumerically(">=", 1),
		"the failing request was not sent")
	resync(t, reveal, "leak", dlcv1alpha1.ReasonSynced)
	g.Eventually(func(g Gomega) {
		g.Expect(events(g, plain)).To(ContainElement(HaveField("Note", ContainSubstring("changed from Running to Failed"))))
	}).WithTimeout(10 * time.Second).Should(Succeed())

	shown := map[string]string{}
	for _, ns := range []string{plain, reveal} {
		snaps := snapshots(g, ns)
		g.Expect(snaps).To(HaveKey(job.JobID), ns)
		// The whole object: labels and annotations as well as the status.
		shown["snapshot in "+ns] = marshal(g, snaps[job.JobID])
		shown["JobQuery in "+ns] = marshal(g, getQuery(g, ns, "leak").Status)
		shown["events in "+ns] = marshal(g, events(g, ns))
	}
	shown["logs"] = capturedLogs.String()
	shown["metrics"] = gatheredMetrics(g)
	g.Expect(shown["metrics"]).To(ContainSubstring(`dlcsync_dlc_api_requests_total{code="other"}`))

	revealed := 0
	for path, marker := range markers {
		group := snapshottest.SecretFields[path]
		for where, text := range shown {
			want := where == "snapshot in "+reveal && group != snapshottest.Always
			if want {
				revealed++
			}
			g.Expect(strings.Contains(text, marker)).To(Equal(want), "%s (%s) in the %s", path, group, where)
		}
	}
	g.Expect(revealed).To(BeNumerically(">=", 15), "the revealing query showed too little to prove anything")
	for where, text := range shown {
		g.Expect(userinfo.FindString(text)).To(BeEmpty(), "URL userinfo in the %s", where)
	}
	g.Expect(shown["metrics"]).NotTo(ContainSubstring("s3cr3tCODEx"), "a made-up code became a label")
}

func marshal(g Gomega, v any) string {
	data, err := json.Marshal(v)
	g.Expect(err).NotTo(HaveOccurred())
	return string(data)
}

// gatheredMetrics is the manager's metrics registry in the text exposition format.
func gatheredMetrics(g Gomega) string {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	var out bytes.Buffer
	for _, f := range families {
		_, err := expfmt.MetricFamilyToText(&out, f)
		g.Expect(err).NotTo(HaveOccurred())
	}
	return out.String()
}
