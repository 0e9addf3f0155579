// Command manager runs the Waygate operator: the controllers that compute the
// state in effect of every Waygate resource, and the admission webhooks.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/waygate-dev/waygate/controllers"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/scheme"
	waygatewebhook "github.com/waygate-dev/waygate/internal/webhook"
)

// Names the rotator needs; they match config/default.
const (
	webhookService     = "waygate-webhook-service"
	webhookSecret      = "waygate-webhook-cert"
	validatingWebhooks = "waygate-validating-webhook-configuration"
	mutatingWebhooks   = "waygate-mutating-webhook-configuration"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=waygate-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// The certificate rotator reads Secrets and webhook configurations through
// watches (which cannot be limited by name), and changes only its own.
// +kubebuilder:rbac:groups="",namespace=waygate-system,resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=waygate-system,resources=secrets,verbs=update,resourceNames=waygate-webhook-cert
// +kubebuilder:rbac:groups="",namespace=waygate-system,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=update,resourceNames=waygate-validating-webhook-configuration
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,verbs=update,resourceNames=waygate-mutating-webhook-configuration
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

func main() {
	var o options
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to; 0 disables it.")
	flag.BoolVar(&o.secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, authenticated and authorized through the API server.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "Address a Go pprof endpoint binds to, for profiling; 0 disables it.")
	flag.IntVar(&o.concurrency, "concurrency", 4, "How many objects of each kind to reconcile at once.")
	flag.Float64Var(&o.qps, "kube-api-qps", 500, "Requests per second the operator may make to the API server (API Priority and Fairness protects it too).")
	flag.IntVar(&o.burst, "kube-api-burst", 1000, "Requests the operator may make to the API server in a burst.")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that only one replica reconciles at a time.")
	flag.StringVar(&o.webhookHost, "webhook-host", "", "Address the admission webhook server listens on; empty for every interface.")
	flag.IntVar(&o.webhookPort, "webhook-port", 9443, "Port the admission webhook server listens on.")
	flag.StringVar(&o.certDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Directory holding the webhook serving certificate (tls.crt, tls.key).")
	flag.BoolVar(&o.rotateCerts, "cert-rotation", false, "Create and rotate the webhook serving certificate in Secret "+webhookSecret+" and inject its CA into the webhook configurations (in-cluster installs).")
	flag.Var(&o.auditSuppressors, "audit-suppressors", "Comma-separated usernames whose waygate.dev/audit: \"false\" annotation is honoured (programmatic seeding); from anyone else it is ignored.")
	flag.DurationVar(&o.auditMaxAge, "audit-max-age", 90*24*time.Hour, "Prune audit entries older than this; 0 keeps them forever.")
	flag.IntVar(&o.auditMaxEntries, "audit-max-entries", 10000, "Keep at most this many audit entries per namespace (the newest); 0 is no limit.")
	flag.DurationVar(&o.auditPruneInterval, "audit-prune-interval", 10*time.Minute, "How often to prune audit entries.")
	flag.StringVar(&o.auditExport, "audit-export", "", "Write every pruned audit entry as a JSON line to this file (appended), or to stdout with \"-\"; empty exports nothing.")
	flag.StringVar(&o.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "Namespace the operator runs in (for leader election and the certificate Secret).")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(o); err != nil {
		ctrl.Log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

// options are the manager's command-line settings.
type options struct {
	metricsAddr, probeAddr, certDir, namespace, webhookHost string
	pprofAddr                                               string
	webhookPort                                             int
	leaderElect, secureMetrics, rotateCerts                 bool
	auditSuppressors                                        stringList
	auditMaxAge, auditPruneInterval                         time.Duration
	auditMaxEntries, concurrency, burst                     int
	qps                                                     float64
	auditExport                                             string
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

func run(o options) error {

	// HTTP/2 is off for the webhook and metrics servers (CVE-2023-44487, CVE-2023-39325).
	noHTTP2 := func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }
	metricsOpts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.secureMetrics, TLSOpts: []func(*tls.Config){noHTTP2}}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	cfg := ctrl.GetConfigOrDie()
	// Every audited change costs the operator two requests; client-side
	// throttling at controller-runtime's default (20/s) would cap the audit
	// trail at about ten changes a second.
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	// The webhook tells the operator's own writes (bookkeeping) from people's.
	operator, err := waygatewebhook.Whoami(context.Background(), cfg)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.Scheme,
		Cache:                   controllers.CacheOptions(),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "waygate-manager.waygate.dev",
		LeaderElectionNamespace: o.namespace,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: o.webhookHost, Port: o.webhookPort, CertDir: o.certDir, TLSOpts: []func(*tls.Config){noHTTP2},
		}),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.Setup(mgr, o.concurrency); err != nil {
		return fmt.Errorf("setting up controllers: %w", err)
	}
	retention := &audit.Retention{
		Reader: mgr.GetAPIReader(), Client: mgr.GetClient(),
		MaxAge: o.auditMaxAge, MaxPerNamespace: o.auditMaxEntries, Interval: o.auditPruneInterval,
	}
	switch o.auditExport {
	case "":
	case "-":
		retention.Export = os.Stdout
	default:
		f, err := os.OpenFile(o.auditExport, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("opening the audit export file: %w", err)
		}
		defer func() { _ = f.Close() }()
		retention.Export = f
	}
	if err := mgr.Add(retention); err != nil {
		return err
	}

	// Webhooks are served once a certificate is in place: at once when it is
	// given, or after the rotator has written it.
	certsReady := make(chan struct{})
	if o.rotateCerts {
		if o.namespace == "" {
			return fmt.Errorf("--cert-rotation needs the operator's namespace: set --namespace or POD_NAMESPACE")
		}
		if err := rotator.AddRotator(mgr, &rotator.CertRotator{
			SecretKey:      types.NamespacedName{Namespace: o.namespace, Name: webhookSecret},
			CertDir:        o.certDir,
			CAName:         "waygate-ca",
			CAOrganization: "waygate",
			DNSName:        fmt.Sprintf("%s.%s.svc", webhookService, o.namespace),
			IsReady:        certsReady,
			Webhooks: []rotator.WebhookInfo{
				{Name: validatingWebhooks, Type: rotator.Validating},
				{Name: mutatingWebhooks, Type: rotator.Mutating},
			},
		}); err != nil {
			return fmt.Errorf("setting up certificate rotation: %w", err)
		}
	} else {
		close(certsReady)
	}
	var webhooks atomic.Pointer[healthz.Checker]
	go func() {
		<-certsReady
		if err := waygatewebhook.Setup(mgr, waygatewebhook.Options{Operator: operator, AuditSuppressors: o.auditSuppressors}); err != nil {
			ctrl.Log.Error(err, "registering the admission webhooks")
			os.Exit(1)
		}
		started := mgr.GetWebhookServer().StartedChecker()
		webhooks.Store(&started)
	}()

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhooks", func(req *http.Request) error {
		started := webhooks.Load()
		if started == nil {
			return errors.New("waiting for the webhook serving certificate")
		}
		return (*started)(req)
	}); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}
