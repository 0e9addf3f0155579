package controllers

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

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
// at once when it is given, or after the rotator has written it (with
// o.RotateCerts). Until then the operator is not ready; a registration that
// fails afterwards makes it unhealthy, so that the kubelet restarts it.
func addWebhooks(mgr ctrl.Manager, webhooks waygatewebhook.Options, o ManagerOptions) error {
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
	if o.RotateCerts {
		certsReady := make(chan struct{})
		if err := addRotator(mgr, o, certsReady); err != nil {
			return err
		}
		go func() {
			<-certsReady
			if err := setup(); err != nil {
				ctrl.Log.Error(err, "the operator cannot serve its webhooks")
				failed.Store(&err)
			}
		}()
	} else if err := setup(); err != nil {
		return err
	}
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
