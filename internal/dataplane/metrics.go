package dataplane

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/waygate-dev/waygate/internal/gate"
	"github.com/waygate-dev/waygate/internal/gate/counters"
)

// Metrics are the gate's Prometheus metrics.
type Metrics struct {
	Registry  *prometheus.Registry
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	// store are the counter store's: its failures, and whether it answers
	// (1) or the gate fails open, or closed, without it (0).
	store         counters.Instruments
	objects       prometheus.Gauge
	problems      prometheus.Gauge
	builds        prometheus.Counter
	nsCompiles    prometheus.Counter
	lastBuild     prometheus.Gauge
	flagCompiles  prometheus.Counter
	ofrepRequests *prometheus.CounterVec
	unknownScopes *prometheus.CounterVec
	// lastUnknown is when an unknown scope was last logged (Unix ns).
	lastUnknown atomic.Int64
}

// Protocols a decision arrives by, a label of the latency histogram.
const (
	ProtocolForwardAuth = "forward_auth"
	ProtocolExtAuthz    = "ext_authz"
)

// NewMetrics registers the gate's metrics in a new registry (with the Go
// and process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waygate_gate_decisions_total",
			Help: "Requests decided, by verdict and namespace (\"unknown\" for namespaces with no Waygate objects).",
		}, []string{"verdict", "namespace"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "waygate_gate_decision_duration_seconds",
			Help:    "Time to decide a request, from receiving it to answering, by protocol.",
			Buckets: []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3},
		}, []string{"protocol"}),
		store: counters.Instruments{
			Errors: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "waygate_gate_counter_errors_total",
				Help: "Rate-limit counting failures (the Redis counter store did not answer in time); such requests fail open unless --fail-closed.",
			}),
			Up: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "waygate_gate_counter_store_up",
				Help: "1 while the rate-limit counter store answers, 0 after a failure until it answers again.",
			}),
		},
		objects: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "waygate_gate_snapshot_objects",
			Help: "RouteGates and RateLimitPolicies in the snapshot in effect.",
		}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "waygate_gate_snapshot_problems",
			Help: "Objects left out of the snapshot in effect because they could not be compiled (see the log).",
		}),
		builds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waygate_gate_snapshot_builds_total",
			Help: "Snapshots built (one per burst of changes to RouteGates, RateLimitPolicies or namespaces' environment labels; the operator's status writes build none).",
		}),
		nsCompiles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waygate_gate_snapshot_namespaces_compiled_total",
			Help: "Namespaces whose routes and limits were compiled (a snapshot compiles the namespaces its changes touched; the first, every namespace, counted as one).",
		}),
		lastBuild: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "waygate_gate_snapshot_timestamp_seconds",
			Help: "When the snapshot in effect was built (Unix time).",
		}),
		unknownScopes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waygate_gate_unknown_scope_total",
			Help: "Decisions asked for a namespace with no Waygate objects, or a service no object names (allowed: a typo in a gateway's check URL shows here and in the log).",
		}, []string{"scope"}),
		ofrepRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waygate_gate_ofrep_requests_total",
			Help: "OFREP requests answered, by HTTP status and namespace (\"unknown\" for namespaces with no flags).",
		}, []string{"code", "namespace"}),
	}
	m.flagCompiles = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "waygate_gate_flag_compiles_total",
		Help: "Namespaces whose flags and segments were compiled: one for each namespace a change touched.",
	})
	m.store.Up.Set(1)
	m.Registry.MustRegister(m.decisions, m.latency, m.store.Errors, m.store.Up, m.objects, m.problems, m.builds, m.nsCompiles, m.lastBuild, m.ofrepRequests, m.unknownScopes, m.flagCompiles,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, v := range gate.Verdicts() {
		m.decisions.WithLabelValues(v.String(), unknownNamespace)
	}
	for _, scope := range []string{"namespace", "service"} {
		m.unknownScopes.WithLabelValues(scope)
	}
	return m
}

const unknownNamespace = "unknown"

// observe records one decision.
func (m *Metrics) observe(protocol string, snap *gate.Snapshot, namespace, service string, v gate.Verdict, took time.Duration) {
	label, nsKnown, svcKnown := snap.Scope(namespace, service, unknownNamespace)
	m.decisions.WithLabelValues(v.String(), label).Inc()
	m.latency.WithLabelValues(protocol).Observe(took.Seconds())
	if v != gate.NotReady && !svcKnown {
		m.unknownScope(protocol, namespace, service, nsKnown)
	}
}

// unknownScopeLogEvery bounds the log lines about unknown scopes.
const unknownScopeLogEvery = 10 * time.Second

// unknownScope counts a decision for a namespace or service the gate knows
// nothing of, and says so in the log at most every unknownScopeLogEvery.
func (m *Metrics) unknownScope(protocol, namespace, service string, nsKnown bool) {
	scope := "namespace"
	if nsKnown {
		scope = "service"
	}
	m.unknownScopes.WithLabelValues(scope).Inc()
	now, last := time.Now().UnixNano(), m.lastUnknown.Load()
	if now-last >= int64(unknownScopeLogEvery) && m.lastUnknown.CompareAndSwap(last, now) {
		ctrl.Log.WithName("gate").Info("a check names a "+scope+" with no Waygate objects: allowed; check the gateway's URL for a typo",
			"protocol", protocol, "namespace", namespace, "service", service)
	}
}

// ReportStaleness publishes how far behind the API server the gate's view
// may be, as stale says.
func (m *Metrics) ReportStaleness(stale func() time.Duration) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "waygate_gate_snapshot_age_seconds",
		Help: "How far behind the API server the gate's view may be: 0 while its watches are connected, else the time since they failed. The gate keeps enforcing the last state it saw.",
	}, func() float64 { return stale().Seconds() }))
}

// SnapshotBuilt implements SourceMetrics.
func (m *Metrics) SnapshotBuilt(s *gate.Snapshot, namespaces int) {
	m.builds.Inc()
	m.nsCompiles.Add(float64(namespaces))
	m.objects.Set(float64(s.Objects))
	m.problems.Set(float64(len(s.Problems)))
	m.lastBuild.SetToCurrentTime()
}

// FlagsCompiled implements SourceMetrics.
func (m *Metrics) FlagsCompiled() { m.flagCompiles.Inc() }

// ofrep records one OFREP request.
func (m *Metrics) ofrep(namespace string, status int) {
	m.ofrepRequests.WithLabelValues(strconv.Itoa(status), namespace).Inc()
}
