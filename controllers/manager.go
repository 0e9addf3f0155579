package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/kube"
	"github.com/waygate-dev/waygate/internal/scheme"
	waygatewebhook "github.com/waygate-dev/waygate/internal/webhook"
)

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
	// AuditExport receives every audit entry as it is written (nil: no
	// export); retention then prunes only what it delivered.
	AuditExport audit.Sink
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
	if o.Namespace == "" {
		return nil, errors.New("the operator needs its namespace (its signing key and lease live there): set --namespace or POD_NAMESPACE")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
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
		// The process ends when the manager does: hand the lease over at
		// once (a rolling update need not wait for it to expire).
		LeaderElectionReleaseOnCancel: true,
		WebhookServer:                 webhook.NewServer(o.Webhook),
		Controller:                    config.Controller{SkipNameValidation: ptr.To(o.SkipNameValidation)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	keys, err := audit.LoadKeyring(ctx, mgr.GetClient(), mgr.GetAPIReader(), o.Namespace)
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(keys); err != nil {
		return nil, err
	}
	if err := Setup(mgr, o.Concurrency, keys, o.Clock); err != nil {
		return nil, fmt.Errorf("setting up controllers: %w", err)
	}
	retention := &audit.Retention{
		Reader: mgr.GetAPIReader(), Client: mgr.GetClient(),
		MaxAge: o.AuditMaxAge, MaxPerNamespace: o.AuditMaxEntries, Interval: o.AuditPruneInterval, Clock: o.Clock,
	}
	if o.AuditExport != nil {
		if err := addExport(mgr, cfg, o); err != nil {
			return nil, err
		}
		retention.Delivered = func(ctx context.Context) (string, error) {
			return audit.ReadCursor(ctx, mgr.GetAPIReader(), o.Namespace)
		}
	}
	if err := mgr.Add(retention); err != nil {
		return nil, err
	}
	webhooks := waygatewebhook.Options{Operator: me, AuditSuppressors: o.AuditSuppressors, Keys: keys, Clock: o.Clock}
	if err := addWebhooks(ctx, mgr, webhooks, o); err != nil {
		return nil, err
	}
	return mgr, nil
}

// addExport sends every audit entry to o.AuditExport, from the leader.
func addExport(mgr ctrl.Manager, cfg *rest.Config, o ManagerOptions) error {
	// Entries are never cached: the export watches them itself.
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	return mgr.Add(&audit.Exporter{
		Client: c, Namespace: o.Namespace, Sink: o.AuditExport,
		BatchSize: 256, FlushInterval: 200 * time.Millisecond, Backoff: time.Second, MaxBackoff: 30 * time.Second,
	})
}
