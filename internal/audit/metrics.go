package audit

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	entriesWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "waygate_audit_entries_written_total",
		Help: "Audit entries written, by action.",
	}, []string{"action"})
	writeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "waygate_audit_write_errors_total",
		Help: "Audit entries that could not be written (they are retried).",
	})
	journalDepth = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "waygate_audit_journal_depth",
		Help:    "Changes waiting in an object's journal when the controller drains it.",
		Buckets: []float64{0, 1, 2, 4, 8, 16, 32, 64},
	})
	drainLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "waygate_audit_drain_lag_seconds",
		Help:    "How long the oldest change in an object's journal had waited, since the webhook admitted it, when the controller drains the journal.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
	})
	journalFull = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "waygate_audit_journal_full_total",
		Help: "Changes refused (429, for the client to retry) because the object's journal was full: the operator has not drained it, being behind or not running.",
	})
	exportDelivered = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "waygate_audit_export_delivered_total",
		Help: "Audit entries the export delivered (an entry sent again after a restart counts again).",
	})
	exportFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "waygate_audit_export_failures_total",
		Help: "Deliveries of a batch of audit entries that failed (the batch is sent again).",
	})
	exportLag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "waygate_audit_export_lag_seconds",
		Help: "Age of the oldest audit entry the export has not delivered yet (0 when it is caught up).",
	})
	exportDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "waygate_audit_export_delay_seconds",
		Help:    "Time from an audit entry's creation to its delivery by the export.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600},
	})
	entriesPruned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "waygate_audit_entries_pruned_total",
		Help: "Audit entries retention deleted.",
	})
)

func init() {
	metrics.Registry.MustRegister(entriesWritten, writeErrors, journalDepth, drainLag, journalFull,
		exportDelivered, exportFailures, exportLag, exportDelay, entriesPruned)
}
