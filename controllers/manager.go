package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/kube"
	"github.com/waygate-dev/waygate/internal/scheme"
	waygatewebhook "github.com/waygate-dev/waygate/internal/webhook"
)

// Names the certificate rotator needs; they match config/default.
const (
	WebhookService     = "waygate-webhook-service"
	WebhookSecret      = "waygate-webhook-cert"
	ValidatingWebhooks = "waygate-validating-webhook-configuration"
	MutatingWebhooks   = "waygate-mutating-webhook-configuration"
)

// The certificate rotator reads Secrets and webhook configurations through
// watches (which cannot be limited by name), and changes only its own.
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=waygate-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=waygate-system,resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=waygate-system,resources=secrets,verbs=update,resourceNames=waygate-webhook-cert
// +kubebuilder:rbac:groups="",namespace=waygate-system,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=update,resourceNames=waygate-validating-webhook-configuration
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,verbs=update,resourceNames=waygate-mutating-webhook-configuration
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// ManagerOptions configure the operator.
type ManagerOptions struct {
	Metrics              metricsserver.Options
	ProbeAddr, PprofAddr string
	Webhook              webhook.Options
	// Namespace is where the leader lease and the certificate Secret live.
	Namespace   string
	LeaderElect bool
	// RotateCerts creates and rotates the webhook certificate and injects
	// its CA into the webhook configurations (in-cluster installs).
	RotateCerts bool
	Concurrency int
	// AuditSuppressors may suppress the audit of their changes.
	AuditSuppressors []string
	// Audit retention (audit.Retention).
	AuditMaxAge        time.Duration
	AuditMaxEntries    int
	AuditPruneInterval time.Duration
	AuditExport        io.Writer
	// SkipNameValidation lets one process start the operator more than once
	// (tests that restart it).
	SkipNameValidation bool
	// Clock is the operator's time (default the wall clock): tests give one
	// they can move.
	Clock clock.WithTicker
}

// NewManager composes the operator for cfg, ready to Start: the
// controllers, the admission webhooks, audit retention, certificate rotation
// and probes. cmd/manager runs it from its flags, and the envtest suites run
// the very same composition. It asks the API server who it is (a
// SelfSubjectReview), so that the audit webhook tells its own bookkeeping
// writes from people's wherever it runs.
func NewManager(ctx context.Context, cfg *rest.Config, o ManagerOptions) (ctrl.Manager, error) {
	me, err := kube.Whoami(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("asking the API server who the operator is: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.Scheme,
		Cache:                   CacheOptions(),
		Metrics:                 o.Metrics,
		HealthProbeBindAddress:  o.ProbeAddr,
		PprofBindAddress:        o.PprofAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "waygate-manager.waygate.dev",
		LeaderElectionNamespace: o.Namespace,
		WebhookServer:           webhook.NewServer(o.Webhook),
		Controller:              config.Controller{SkipNameValidation: ptr.To(o.SkipNameValidation)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if o.Namespace == "" {
		return nil, errors.New("the operator needs its namespace (its signing key and lease live there): set --namespace or POD_NAMESPACE")
	}
	keys, err := audit.LoadKeyring(ctx, mgr.GetClient(), mgr.GetAPIReader(), o.Namespace)
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(keys); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if err := Setup(mgr, o.Concurrency, keys, o.Clock); err != nil {
		return nil, fmt.Errorf("setting up controllers: %w", err)
	}
	if err := mgr.Add(&audit.Retention{
		Reader: mgr.GetAPIReader(), Client: mgr.GetClient(),
		MaxAge: o.AuditMaxAge, MaxPerNamespace: o.AuditMaxEntries, Interval: o.AuditPruneInterval, Export: o.AuditExport,
	}); err != nil {
		return nil, err
	}

	// Webhooks are served once a certificate is in place: at once when it is
	// given, or after the rotator has written it.
	certsReady := make(chan struct{})
	if o.RotateCerts {
		if err := rotator.AddRotator(mgr, &rotator.CertRotator{
			SecretKey:      types.NamespacedName{Namespace: o.Namespace, Name: WebhookSecret},
			CertDir:        o.Webhook.CertDir,
			CAName:         "waygate-ca",
			CAOrganization: "waygate",
			DNSName:        fmt.Sprintf("%s.%s.svc", WebhookService, o.Namespace),
			IsReady:        certsReady,
			Webhooks: []rotator.WebhookInfo{
				{Name: ValidatingWebhooks, Type: rotator.Validating},
				{Name: MutatingWebhooks, Type: rotator.Mutating},
			},
		}); err != nil {
			return nil, fmt.Errorf("setting up certificate rotation: %w", err)
		}
	} else {
		close(certsReady)
	}
	var webhooks atomic.Pointer[healthz.Checker]
	var failed atomic.Pointer[error]
	setup := func() error {
		if err := waygatewebhook.Setup(mgr, waygatewebhook.Options{Operator: me, AuditSuppressors: o.AuditSuppressors, Keys: keys, Clock: o.Clock}); err != nil {
			return fmt.Errorf("registering the admission webhooks: %w", err)
		}
		started := mgr.GetWebhookServer().StartedChecker()
		webhooks.Store(&started)
		return nil
	}
	if !o.RotateCerts {
		if err := setup(); err != nil {
			return nil, err
		}
	} else {
		go func() {
			<-certsReady
			if err := setup(); err != nil {
				ctrl.Log.Error(err, "the operator cannot serve its webhooks")
				failed.Store(&err) // unhealthy: the kubelet restarts it
			}
		}()
	}

	if err := mgr.AddHealthzCheck("healthz", func(*http.Request) error {
		if err := failed.Load(); err != nil {
			return *err
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("webhooks", func(req *http.Request) error {
		started := webhooks.Load()
		if started == nil {
			return errors.New("waiting for the webhook serving certificate")
		}
		return (*started)(req)
	}); err != nil {
		return nil, err
	}
	return mgr, nil
}
