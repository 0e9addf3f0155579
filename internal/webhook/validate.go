// Package webhook holds the admission handlers the manager serves. They are
// thin: decode, decide with the logic in internal/, respond. The schema
// validates everything it can; these check only what it cannot.
package webhook

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/gate"
)

// +kubebuilder:webhook:path=/validate-waygate-dev-v1alpha1-featureflag,mutating=false,failurePolicy=fail,sideEffects=None,groups=waygate.dev,resources=featureflags,verbs=create;update,versions=v1alpha1,name=vfeatureflag.waygate.dev,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-waygate-dev-v1alpha1-segment,mutating=false,failurePolicy=fail,sideEffects=None,groups=waygate.dev,resources=segments,verbs=create;update,versions=v1alpha1,name=vsegment.waygate.dev,admissionReviewVersions=v1

// Setup registers the admission handlers with the manager's webhook server.
func Setup(mgr ctrl.Manager) error {
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
	errs := gate.ValidateVariationValues(ff.Spec.Type, ff.Spec.Variations, field.NewPath("spec", "variations"))
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
		errs = append(errs, gate.ValidateClauses(clauses, path.Index(i).Child("clauses"))...)
	}
	return errs
}
