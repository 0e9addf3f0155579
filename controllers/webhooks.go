package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

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

// addWebhooks serves the admission webhooks once a certificate is in place:
// after the rotator has written it (with o.RotateCerts), else once it is in
// o.Webhook.CertDir (at once, or when another issuer such as cert-manager
// has written it). Until then the operator is not ready; a registration that
// fails afterwards makes it unhealthy, so that the kubelet restarts it.
func addWebhooks(ctx context.Context, mgr ctrl.Manager, webhooks waygatewebhook.Options, o ManagerOptions) error {
	var started atomic.Pointer[healthz.Checker]
	var failed atomic.Pointer[error]
	setup := func() error {
		if err := waygatewebhook.Setup(mgr, webhooks); err != nil {
			return fmt.Errorf("registering the admission webhooks: %w", err)
		}
		checker := mgr.GetWebhookServer().StartedChecker()
		started.Store(&checker)
		return nil
	}
	certsReady := make(chan struct{})
	switch {
	case o.RotateCerts:
		if err := addRotator(mgr, o, certsReady); err != nil {
			return err
		}
	case certsPresent(o.Webhook.CertDir):
		close(certsReady)
	default:
		// Another issuer (cert-manager) writes the certificate into the
		// Secret, which reaches the pod a while after it starts.
		ctrl.Log.Info("waiting for the webhook serving certificate", "dir", o.Webhook.CertDir)
		go awaitCerts(ctx, o.Webhook.CertDir, certsReady)
	}
	go func() {
		select {
		case <-certsReady:
			if err := setup(); err != nil {
				ctrl.Log.Error(err, "the operator cannot serve its webhooks")
				failed.Store(&err)
			}
		case <-ctx.Done():
		}
	}()
	if err := mgr.AddHealthzCheck("healthz", func(*http.Request) error {
		if err := failed.Load(); err != nil {
			return *err
		}
		return nil
	}); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("webhooks", func(req *http.Request) error {
		checker := started.Load()
		if checker == nil {
			return errors.New("waiting for the webhook serving certificate")
		}
		return (*checker)(req)
	})
}

// certsPresent says whether dir holds a serving certificate and its key.
func certsPresent(dir string) bool {
	for _, name := range []string{"tls.crt", "tls.key"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

// awaitCerts closes ready once dir holds a serving certificate.
func awaitCerts(ctx context.Context, dir string, ready chan<- struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !certsPresent(dir) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	close(ready)
}

// addRotator creates and rotates the webhook serving certificate in
// o.Namespace and injects its CA into the webhook configurations; ready is
// closed once the certificate is on disk.
func addRotator(mgr ctrl.Manager, o ManagerOptions, ready chan struct{}) error {
	err := rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:      types.NamespacedName{Namespace: o.Namespace, Name: WebhookSecret},
		CertDir:        o.Webhook.CertDir,
		CAName:         "waygate-ca",
		CAOrganization: "waygate",
		DNSName:        fmt.Sprintf("%s.%s.svc", WebhookService, o.Namespace),
		IsReady:        ready,
		Webhooks: []rotator.WebhookInfo{
			{Name: ValidatingWebhooks, Type: rotator.Validating},
			{Name: MutatingWebhooks, Type: rotator.Mutating},
		},
	})
	if err != nil {
		return fmt.Errorf("setting up certificate rotation: %w", err)
	}
	return nil
}
