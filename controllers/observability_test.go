package controllers_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	_ "k8s.io/apiserver/pkg/admission/metrics" // the API server's admission metrics, which the webhook alerts read
	"k8s.io/component-base/metrics/legacyregistry"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/dataplane"
	"github.com/waygate-dev/waygate/internal/gate"
)

// config/prometheus renders; its ServiceMonitors each select one Service
// of config/default, on a port it has; every alert parses as PromQL, reads
// only metrics the code registers and label values that exist, has a
// severity and a runbook section in docs/observability.md.
func TestPrometheusConfig(t *testing.T) {
	monitors, rules := prometheusConfig(t)
	vocab, doc, known := newVocabulary(t, monitors), readDoc(t), knownMetrics()
	for _, g := range rules.Spec.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				known.recorded[r.Record] = true
			}
		}
	}
	alerts := map[string]bool{}
	for _, g := range rules.Spec.Groups {
		for _, r := range g.Rules {
			name := r.Record
			if r.Alert != "" {
				name = r.Alert + "/" + r.Labels["severity"]
			}
			t.Run(name, func(t *testing.T) {
				vocab.check(t, known, doc, r.Expr.String())
				if r.For != nil {
					if _, err := model.ParseDuration(string(*r.For)); err != nil {
						t.Errorf("for: %v", err)
					}
				}
				if r.Alert == "" {
					return
				}
				if alerts[name] {
					t.Errorf("two rules for %s", name)
				}
				alerts[name] = true
				if s := r.Labels["severity"]; s != "critical" && s != "warning" {
					t.Errorf("severity %q, want critical or warning", s)
				}
				for _, a := range []string{"summary", "description"} {
					if r.Annotations[a] == "" {
						t.Errorf("no %s annotation", a)
					}
				}
				anchor := strings.ToLower(r.Alert)
				if want := "https://github.com/waygate-dev/waygate/blob/main/docs/observability.md#" + anchor; r.Annotations["runbook_url"] != want {
					t.Errorf("runbook_url %q, want %q", r.Annotations["runbook_url"], want)
				}
				if !slices.Contains(doc.headings, r.Alert) {
					t.Errorf("docs/observability.md has no section %q saying what the alert means and what to do", "### "+r.Alert)
				}
			})
		}
	}
}

// config/grafana is a ConfigMap of waygate.json for Grafana's sidecar; each
// of the dashboard's queries parses and reads registered metrics.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(env.Root, "config", "grafana", "waygate.json"))
	if err != nil {
		t.Fatal(err)
	}
	objs := renderObjects(t, "grafana")
	if len(objs) != 1 || objs[0].GetKind() != "ConfigMap" || objs[0].GetLabels()["grafana_dashboard"] != "1" {
		t.Fatalf("config/grafana renders %d objects, want one ConfigMap labelled grafana_dashboard: \"1\"", len(objs))
	}
	if data, _, _ := unstructured.NestedString(objs[0].Object, "data", "waygate.json"); data != string(raw) {
		t.Error("the ConfigMap's waygate.json is not config/grafana/waygate.json")
	}
	var dash grafanaPanel
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("config/grafana/waygate.json: %v", err)
	}
	monitors, _ := prometheusConfig(t)
	vocab, doc, known := newVocabulary(t, monitors), readDoc(t), knownMetrics()
	queries := 0
	var walk func(p grafanaPanel)
	walk = func(p grafanaPanel) {
		for _, q := range p.Targets {
			queries++
			t.Run(p.Title+"/"+q.RefID, func(t *testing.T) {
				vocab.check(t, known, doc, grafanaVariable.ReplaceAllStringFunc(q.Expr, grafanaValue))
			})
		}
		for _, child := range p.Panels {
			walk(child)
		}
	}
	walk(dash)
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}
}

// The metrics docs/observability.md lists are registered under those
// names, with the type it says.
func TestMetricsAreDocumented(t *testing.T) {
	doc, known := readDoc(t), knownMetrics()
	for name := range doc.metrics {
		if !known.has(name) {
			t.Errorf("docs/observability.md lists %s, which nothing registers", name)
		}
	}
	for _, reg := range []prometheus.Gatherer{gateMetrics().Registry, metrics.Registry} {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if !strings.HasPrefix(f.GetName(), "waygate_") {
				continue
			}
			want := strings.ToLower(f.GetType().String())
			if got, ok := doc.metrics[f.GetName()]; !ok {
				t.Errorf("docs/observability.md does not list %s", f.GetName())
			} else if got != want {
				t.Errorf("docs/observability.md lists %s as a %s, want %s", f.GetName(), got, want)
			}
		}
	}
}

// Whoever is bound to waygate-metrics-reader may GET the operator's
// /metrics, as the metrics server asks the API server; nobody else may.
func TestMetricsReaderRole(t *testing.T) {
	ctx := context.Background()
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "metrics-reader-"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "waygate-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "prometheus", Namespace: "monitoring"}},
	}
	create(t, binding)
	t.Cleanup(func() { _ = k8s.Delete(ctx, binding) })
	mayScrape := func(user string) (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"},
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
		}}
		err := k8s.Create(ctx, sar)
		return sar.Status.Allowed, err
	}
	// The authorizer's view of new bindings may lag a moment.
	eventually(t, 10*time.Second, func() error {
		ok, err := mayScrape("system:serviceaccount:monitoring:prometheus")
		if err == nil && !ok {
			err = errors.New("bound to waygate-metrics-reader, may not GET /metrics")
		}
		return err
	})
	if ok, err := mayScrape("system:serviceaccount:monitoring:someone-else"); err != nil || ok {
		t.Errorf("without the role, may GET /metrics: %v (%v), want not", ok, err)
	}
}

// A drained change shows in the drain lag and journal depth histograms.
func TestAuditDrainMetrics(t *testing.T) {
	ns := env.Namespace(t, "metrics")
	before := histogramCounts(t)
	create(t, routeGate(ns, "get-reports", waygatev1.RouteGateSpec{Route: "GET:/reports", State: waygatev1.RouteMaintenance}))
	waitEntries(t, ns, "get-reports", 1)
	after := histogramCounts(t)
	for _, name := range []string{"waygate_audit_drain_lag_seconds", "waygate_audit_journal_depth"} {
		if after[name] <= before[name] {
			t.Errorf("%s counted %d drains before the change and %d after it was written, want more", name, before[name], after[name])
		}
	}
}

// histogramCounts are the sample counts of the operator's histograms.
func histogramCounts(t *testing.T) map[string]uint64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, f := range families {
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, m := range f.GetMetric() {
				counts[f.GetName()] += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return counts
}

// prometheusConfig are the ServiceMonitors and the PrometheusRule of
// config/prometheus.
func prometheusConfig(t *testing.T) ([]monitoringv1.ServiceMonitor, monitoringv1.PrometheusRule) {
	t.Helper()
	var monitors []monitoringv1.ServiceMonitor
	var rules []monitoringv1.PrometheusRule
	for _, u := range renderObjects(t, "prometheus") {
		switch u.GetKind() {
		case monitoringv1.ServiceMonitorsKind:
			monitors = append(monitors, decodeStrict[monitoringv1.ServiceMonitor](t, u))
		case monitoringv1.PrometheusRuleKind:
			rules = append(rules, decodeStrict[monitoringv1.PrometheusRule](t, u))
		default:
			t.Errorf("config/prometheus has a %s %s: only ServiceMonitors and PrometheusRules belong there", u.GetKind(), u.GetName())
		}
	}
	if len(monitors) != 2 || len(rules) != 1 {
		t.Fatalf("config/prometheus has %d ServiceMonitors and %d PrometheusRules, want 2 (operator, gate) and 1", len(monitors), len(rules))
	}
	return monitors, rules[0]
}

// renderObjects builds config/<dir> as kubectl apply -k would.
func renderObjects(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := env.RenderObjects(filepath.Join(env.Root, "config", dir))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// decodeStrict converts u to T, refusing fields T does not have.
func decodeStrict[T any](t *testing.T, u *unstructured.Unstructured) T {
	t.Helper()
	var out T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// install is what config/default installs that monitoring refers to.
type install struct {
	services []corev1.Service
	webhooks []string
}

func installed(t *testing.T) install {
	t.Helper()
	var in install
	for _, u := range renderObjects(t, "default") {
		switch u.GetKind() {
		case "Service":
			in.services = append(in.services, decodeStrict[corev1.Service](t, u))
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
			for _, h := range hooks {
				in.webhooks = append(in.webhooks, h.(map[string]any)["name"].(string))
			}
		}
	}
	return in
}

// jobOf is the job Prometheus names sm's targets after: the one Service of
// sm's namespace it selects, which must have the ports sm scrapes.
func (in install) jobOf(t *testing.T, sm monitoringv1.ServiceMonitor) string {
	t.Helper()
	if sm.Spec.JobLabel != "" || sm.Spec.NamespaceSelector.Any || len(sm.Spec.NamespaceSelector.MatchNames) > 0 {
		t.Fatalf("ServiceMonitor %s: jobLabel or namespaceSelector set; this test knows jobs named after Services of the monitor's namespace", sm.Name)
	}
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatalf("ServiceMonitor %s: %v", sm.Name, err)
	}
	var found []corev1.Service
	for _, s := range in.services {
		if s.Namespace == sm.Namespace && sel.Matches(k8slabels.Set(s.Labels)) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("ServiceMonitor %s selects %d Services of config/default, want 1", sm.Name, len(found))
	}
	for _, ep := range sm.Spec.Endpoints {
		if err := ep.Validate(); err != nil {
			t.Errorf("ServiceMonitor %s: %v", sm.Name, err)
		}
		if !slices.ContainsFunc(found[0].Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
			t.Errorf("ServiceMonitor %s scrapes port %q, which Service %s does not have", sm.Name, ep.Port, found[0].Name)
		}
	}
	return found[0].Name
}

// vocabulary is what the label matchers of a query may name.
type vocabulary struct {
	jobs, verdicts, webhooks []string
}

// newVocabulary: the jobs of monitors' targets, the gate's verdicts and
// the webhooks of config/default.
func newVocabulary(t *testing.T, monitors []monitoringv1.ServiceMonitor) vocabulary {
	t.Helper()
	in := installed(t)
	v := vocabulary{webhooks: in.webhooks}
	for _, sm := range monitors {
		v.jobs = append(v.jobs, in.jobOf(t, sm))
	}
	for _, verdict := range gate.Verdicts() {
		v.verdicts = append(v.verdicts, verdict.String())
	}
	return v
}

// check parses expr and checks that each metric it reads is registered
// (and, for Waygate's own, documented), and that its matchers name jobs
// Prometheus scrapes, verdicts the gate decides and all of Waygate's
// webhooks.
func (v vocabulary) check(t *testing.T, known *metricIndex, doc observabilityDoc, expr string) {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		switch {
		case !known.has(vs.Name):
			t.Errorf("%s: nothing registers %s", expr, vs.Name)
		case strings.HasPrefix(vs.Name, "waygate_") && doc.metrics[known.baseName(vs.Name)] == "":
			t.Errorf("%s: docs/observability.md does not list %s", expr, vs.Name)
		}
		for _, m := range vs.LabelMatchers {
			switch m.Name {
			case "job":
				v.alternatives(t, expr, m, v.jobs, "Prometheus scrapes no job")
			case "verdict":
				v.alternatives(t, expr, m, v.verdicts, "the gate has no verdict")
			case "name":
				if !strings.HasPrefix(vs.Name, "apiserver_admission_webhook_") {
					continue
				}
				for _, w := range v.webhooks {
					if !m.Matches(w) {
						t.Errorf("%s: %s does not match the webhook %s", expr, m, w)
					}
				}
			}
		}
		return nil
	})
}

// alternatives checks that each value m names ("a" or "a|b") is in known.
func (vocabulary) alternatives(t *testing.T, expr string, m *labels.Matcher, known []string, what string) {
	t.Helper()
	for _, val := range strings.Split(m.Value, "|") {
		if !slices.Contains(known, val) {
			t.Errorf("%s: %s %q (known: %s)", expr, what, val, strings.Join(known, ", "))
		}
	}
}

// metricIndex knows the metrics a query may read.
type metricIndex struct {
	registries []prometheus.Registerer
	recorded   map[string]bool
}

// knownMetrics are the metrics of the gate, the operator (with
// controller-runtime's) and the API server's admission.
func knownMetrics() *metricIndex {
	return &metricIndex{
		registries: []prometheus.Registerer{gateMetrics().Registry, metrics.Registry, legacyregistry.Registerer()},
		recorded:   map[string]bool{},
	}
}

// gateMetrics are the gate's metrics, all of them registered.
func gateMetrics() *dataplane.Metrics {
	m := dataplane.NewMetrics()
	m.ReportStaleness(func() time.Duration { return 0 })
	return m
}

// has says whether Prometheus (up), a recording rule or a registry serves
// the metric name; a histogram's series by the histogram's name.
func (ix *metricIndex) has(name string) bool {
	return name == "up" || ix.recorded[name] || ix.registered(ix.baseName(name))
}

// registered says whether a registry holds a metric called name.
func (ix *metricIndex) registered(name string) bool {
	return slices.ContainsFunc(ix.registries, func(reg prometheus.Registerer) bool { return registered(reg, name) })
}

// baseName is name less a histogram series' suffix, when a histogram of
// that name is registered.
func (ix *metricIndex) baseName(name string) string {
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && ix.registered(base) {
			return base
		}
	}
	return name
}

// registered says whether reg holds a metric called name: registering
// another by that name then fails. (Gathering would miss vectors no label
// values were given yet.)
func registered(reg prometheus.Registerer, name string) bool {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
	if err := reg.Register(probe); err != nil {
		return true
	}
	reg.Unregister(probe)
	return false
}

// observabilityDoc is what docs/observability.md documents: its metrics
// tables (name → type) and its headings.
type observabilityDoc struct {
	metrics  map[string]string
	headings []string
}

// metricRow is a metrics table's row: | `name` | type | labels | meaning |.
var metricRow = regexp.MustCompile("^\\| `([a-z_:]+)` \\| ([a-z]+) \\|")

func readDoc(t *testing.T) observabilityDoc {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(env.Root, "docs", "observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := observabilityDoc{metrics: map[string]string{}}
	for _, line := range strings.Split(string(raw), "\n") {
		if m := metricRow.FindStringSubmatch(line); m != nil {
			doc.metrics[m[1]] = m[2]
		}
		if h, ok := strings.CutPrefix(line, "### "); ok {
			doc.headings = append(doc.headings, h)
		}
	}
	if len(doc.metrics) == 0 {
		t.Fatal("docs/observability.md has no metrics table")
	}
	return doc
}

// grafanaPanel is what the test reads of a dashboard, or of its panels: a
// collapsed row holds its panels.
type grafanaPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// grafanaVariable is a dashboard variable in a query, replaced by
// grafanaValue with a value that parses where the variable stands.
var grafanaVariable = regexp.MustCompile(`\$\{?\w+\}?`)

func grafanaValue(v string) string {
	if strings.Contains(v, "interval") {
		return "5m"
	}
	return ".*"
}
