// Command manager runs the Waygate operator: the controllers that compute the
// state in effect of every Waygate resource, the admission webhooks and audit
// retention (controllers.NewManager composes them; this reads the flags).
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/waygate-dev/waygate/controllers"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/memlimit"
)

// version is the release, set when the images are built.
var version = "dev"

func main() {
	var o controllers.ManagerOptions
	var metricsAddr, webhookHost, certDir, auditExport string
	var secureMetrics bool
	var webhookPort int
	var qps float64
	var burst int
	var suppressors stringList
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to; 0 disables it.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, authenticated and authorized through the API server.")
	flag.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	flag.StringVar(&o.PprofAddr, "pprof-bind-address", "0", "Address a Go pprof endpoint binds to, for profiling; 0 disables it.")
	flag.IntVar(&o.Concurrency, "concurrency", 4, "How many objects of each kind to reconcile at once.")
	flag.Float64Var(&qps, "kube-api-qps", 500, "Requests per second the operator may make to the API server (API Priority and Fairness protects it too).")
	flag.IntVar(&burst, "kube-api-burst", 1000, "Requests the operator may make to the API server in a burst.")
	flag.BoolVar(&o.LeaderElect, "leader-elect", false, "Elect a leader, so that only one replica reconciles at a time.")
	flag.StringVar(&webhookHost, "webhook-host", "", "Address the admission webhook server listens on; empty for every interface.")
	flag.IntVar(&webhookPort, "webhook-port", 9443, "Port the admission webhook server listens on.")
	flag.StringVar(&certDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Directory holding the webhook serving certificate (tls.crt, tls.key).")
	flag.BoolVar(&o.RotateCerts, "cert-rotation", false, "Create and rotate the webhook serving certificate in Secret "+controllers.WebhookSecret+" and inject its CA into the webhook configurations (in-cluster installs).")
	flag.Var(&suppressors, "audit-suppressors", "Comma-separated usernames whose waygate.dev/audit: \"false\" annotation is honoured (programmatic seeding); from anyone else it is ignored.")
	flag.DurationVar(&o.AuditMaxAge, "audit-max-age", 90*24*time.Hour, "Prune audit entries older than this; 0 keeps them forever.")
	flag.IntVar(&o.AuditMaxEntries, "audit-max-entries", 10000, "Keep at most this many audit entries per namespace (the newest); 0 is no limit.")
	flag.DurationVar(&o.AuditPruneInterval, "audit-prune-interval", 10*time.Minute, "How often to prune audit entries.")
	flag.StringVar(&auditExport, "audit-export", "", "Send every audit entry, as it is written, to an OpenTelemetry collector (otlp: configured by the OTEL_EXPORTER_OTLP_* environment variables) or to stdout as JSON lines (stdout); empty exports nothing. With an export, retention prunes only delivered entries.")
	flag.StringVar(&o.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "Namespace the operator runs in (for leader election and the certificate Secret).")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	memlimit.Set(ctrl.Log)

	// HTTP/2 is off for the webhook and metrics servers (CVE-2023-44487, CVE-2023-39325).
	noHTTP2 := func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }
	o.Metrics = metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: []func(*tls.Config){noHTTP2}}
	if secureMetrics {
		o.Metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	o.Webhook = webhook.Options{Host: webhookHost, Port: webhookPort, CertDir: certDir, TLSOpts: []func(*tls.Config){noHTTP2}}
	o.AuditSuppressors = suppressors
	if err := run(o, auditExport, qps, burst); err != nil {
		ctrl.Log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

func run(o controllers.ManagerOptions, auditExport string, qps float64, burst int) error {
	ctx := ctrl.SetupSignalHandler()
	switch auditExport {
	case "":
	case "stdout":
		o.AuditExport = audit.JSONLines{W: os.Stdout}
	case "otlp":
		sink, err := audit.NewOTLP(ctx, version)
		if err != nil {
			return fmt.Errorf("--audit-export=otlp: %w", err)
		}
		o.AuditExport = sink
	default:
		return fmt.Errorf("--audit-export=%s: use otlp (to an OpenTelemetry collector) or stdout (JSON lines)", auditExport)
	}
	cfg := ctrl.GetConfigOrDie()
	// Every audited change costs the operator two requests; client-side
	// throttling at controller-runtime's default (20/s) would cap the audit
	// trail at about ten changes a second.
	cfg.QPS, cfg.Burst = float32(qps), burst
	mgr, err := controllers.NewManager(ctx, cfg, o)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// stringList is a comma-separated flag value.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
