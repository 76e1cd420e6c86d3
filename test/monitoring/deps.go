// Package monitoring checks what dlcsync ships for Prometheus and Grafana against the real
// manager's metrics and the Prometheus Operator's API.
package monitoring
