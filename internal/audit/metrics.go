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
)

func init() {
	metrics.Registry.MustRegister(entriesWritten, writeErrors, journalDepth)
}
