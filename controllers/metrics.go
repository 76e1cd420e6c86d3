package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// Label names shared by several metrics.
const (
	labelNamespace = "namespace"
	labelQuery     = "query"
	labelResult    = "result"
)

// Metrics of dlcsync, served by the controller-runtime metrics server. docs/operating.md ("Metrics") lists them.
var (
	syncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dlcsync_sync_duration_seconds",
		Help:    "Duration of JobQuery syncs (listing and snapshot writes), by result and listing mode (Full, Incremental).",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
	}, []string{labelResult, "mode"})
	lastSyncTimestamp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dlcsync_last_sync_timestamp_seconds",
		Help: "Unix time at which the last sync of a JobQuery ended, successful or not. A sync that changes " +
			"nothing does not write the JobQuery status, so this is the liveness signal.",
	}, []string{labelNamespace, labelQuery})
	syncsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dlcsync_syncs_total",
		Help: "JobQuery syncs by namespace, query and result (success or the failure reason).",
	}, []string{labelNamespace, labelQuery, labelResult})
	apiRequestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dlcsync_dlc_api_requests_total",
		Help: "PAI-DLC ListJobs HTTP requests by answer: 200, a known error code or failure kind, or other.",
	}, []string{"code"})
	apiThrottledTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dlcsync_dlc_api_throttled_total",
		Help: "PAI-DLC ListJobs answers that were throttling errors.",
	})
	snapshotWritesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dlcsync_snapshot_writes_total",
		Help: "Writes to DLCJobSnapshots by request: create (a new snapshot, whole), patch (one JSON patch per changed snapshot), delete.",
	}, []string{"operation"})
	queryStatusWritesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dlcsync_jobquery_status_writes_total",
		Help: "Writes of JobQuery statuses by reason: change (something besides the sync times changed) or " +
			"freshness (only the sync times did, at most once per --status-refresh-interval and per sync).",
	}, []string{"reason"})
	jobsGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dlcsync_jobs",
		Help: "Jobs kept as snapshots by namespace, JobQuery and job phase.",
	}, []string{labelNamespace, labelQuery, "phase"})
	breakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dlcsync_circuit_breaker_state",
		Help: "Worst state of the circuit breakers (one per credential, endpoint, region and namespace) of an endpoint " +
			"host and region: 1 half-open, 2 open; no series when they are all closed.",
	}, []string{"endpoint"})
)

var (
	cloudEventsSentTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dlcsync_cloudevents_sent_total",
		Help: "CloudEvents delivery attempts, by result: delivered (the sink answered 2xx) or failed (retried with backoff).",
	}, []string{labelResult})
	cloudEventsBacklog = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dlcsync_cloudevents_backlog",
		Help: "Transitions waiting for delivery to a JobQuery's CloudEvents sink.",
	}, []string{labelNamespace, labelQuery})
	cloudEventsDroppedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dlcsync_cloudevents_dropped_total",
		Help: "Transitions a JobQuery's CloudEvents sink never received because its backlog was full.",
	}, []string{labelNamespace, labelQuery})
)

func init() {
	metrics.Registry.MustRegister(syncDuration, lastSyncTimestamp, syncsTotal, apiRequestsTotal, apiThrottledTotal,
		snapshotWritesTotal, queryStatusWritesTotal, jobsGauge, breakerState, cloudEventsSentTotal, cloudEventsBacklog,
		cloudEventsDroppedTotal)
}

// ObserveAPIResponse counts one ListJobs answer; pass it as the client's Observer.
func ObserveAPIResponse(code string) {
	apiRequestsTotal.WithLabelValues(dlc.BoundedCode(code)).Inc()
	if dlc.IsThrottlingCode(code) {
		apiThrottledTotal.Inc()
	}
}

// ObserveBreaker records a breaker state change; pass it as GovernorConfig.OnBreakerChange. The
// name is the endpoint host and region, never anything derived from a credential.
func ObserveBreaker(name string, state gobreaker.State) {
	// The state is the worst of the breakers of that host and region; closed (all of them)
	// drops the series, so a tenant-chosen region leaves none behind.
	if state == gobreaker.StateClosed {
		breakerState.DeleteLabelValues(name)
		return
	}
	breakerState.WithLabelValues(name).Set(float64(state))
}

// forgetQuery deletes the series of a deleted JobQuery.
func forgetQuery(namespace, name string) {
	syncsTotal.DeletePartialMatch(prometheus.Labels{labelNamespace: namespace, labelQuery: name})
	jobsGauge.DeletePartialMatch(prometheus.Labels{labelNamespace: namespace, labelQuery: name})
	lastSyncTimestamp.DeletePartialMatch(prometheus.Labels{labelNamespace: namespace, labelQuery: name})
	cloudEventsBacklog.DeletePartialMatch(prometheus.Labels{labelNamespace: namespace, labelQuery: name})
	cloudEventsDroppedTotal.DeletePartialMatch(prometheus.Labels{labelNamespace: namespace, labelQuery: name})
}

// setJobCounts replaces the per-phase gauge of a query.
func setJobCounts(namespace, name string, counts map[string]int32) {
	jobsGauge.DeletePartialMatch(prometheus.Labels{labelNamespace: namespace, labelQuery: name})
	for phase, n := range counts {
		jobsGauge.WithLabelValues(namespace, name, phase).Set(float64(n))
	}
}
