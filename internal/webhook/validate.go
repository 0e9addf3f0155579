// Package webhook holds the admission handlers the manager serves. They are
// thin: decode, decide with the logic in internal/, respond. The schema
// validates everything it can; these check only what it cannot.
package webhook

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/pkg/flags"
)

// +kubebuilder:webhook:path=/validate-waygate-dev-v1alpha1-featureflag,mutating=false,failurePolicy=fail,sideEffects=None,groups=waygate.dev,resources=featureflags,verbs=create;update,versions=v1alpha1,name=vfeatureflag.waygate.dev,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-waygate-dev-v1alpha1-segment,mutating=false,failurePolicy=fail,sideEffects=None,groups=waygate.dev,resources=segments,verbs=create;update,versions=v1alpha1,name=vsegment.waygate.dev,admissionReviewVersions=v1,timeoutSeconds=5

// Options configure the admission handlers.
type Options struct {
	// Operator is the operator's own username (see Whoami).
	Operator string
	// AuditSuppressors may suppress the audit of their changes.
	AuditSuppressors []string
	// Keys sign the journal records the webhook writes.
	Keys *audit.Keyring
	// Clock stamps the records.
	Clock clock.PassiveClock
}

// Setup registers the admission handlers with the manager's webhook server.
func Setup(mgr ctrl.Manager, opts Options) error {
	mgr.GetWebhookServer().Register("/audit-waygate-dev-v1alpha1", &webhook.Admission{Handler: &Auditor{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Operator: opts.Operator, Suppressors: opts.AuditSuppressors, Keys: opts.Keys, Clock: opts.Clock,
	}})
	if err := ctrl.NewWebhookManagedBy(mgr, &waygatev1.FeatureFlag{}).
		WithValidator(validator[*waygatev1.FeatureFlag]{kind: "FeatureFlag", check: checkFlag}).Complete(); err != nil {
		return err
	}
	return ctrl.NewWebhookManagedBy(mgr, &waygatev1.Segment{}).
		WithValidator(validator[*waygatev1.Segment]{kind: "Segment", check: checkSegment}).Complete()
}

// validator rejects objects for what their schema cannot check.
type validator[T client.Object] struct {
	kind  string
	check func(T) field.ErrorList
}

func (v validator[T]) ValidateCreate(_ context.Context, obj T) (admission.Warnings, error) {
	return nil, v.invalid(obj)
}

func (v validator[T]) ValidateUpdate(_ context.Context, _, obj T) (admission.Warnings, error) {
	return nil, v.invalid(obj)
}

func (v validator[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) {
	return nil, nil
}

func (v validator[T]) invalid(obj T) error {
	errs := v.check(obj)
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(waygatev1.GroupVersion.WithKind(v.kind).GroupKind(), obj.GetName(), errs)
}

// checkFlag: variation values of the flag's type, clause values that suit
// their operators.
func checkFlag(ff *waygatev1.FeatureFlag) field.ErrorList {
	errs := flags.ValidateVariationValues(ff.Spec.Type, ff.Spec.Variations, field.NewPath("spec", "variations"))
	return append(errs, ruleClauses(ff.RuleClauses())...)
}

// checkSegment: clause values that suit their operators.
func checkSegment(s *waygatev1.Segment) field.ErrorList {
	return ruleClauses(s.RuleClauses())
}

func ruleClauses(rules [][]waygatev1.Clause) field.ErrorList {
	var errs field.ErrorList
	path := field.NewPath("spec", "rules")
	for i, clauses := range rules {
		errs = append(errs, flags.ValidateClauses(clauses, path.Index(i).Child("clauses"))...)
	}
	return errs
}
