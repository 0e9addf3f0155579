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
		WithValidator(clauseValidator[*waygatev1.FeatureFlag]{kind: "FeatureFlag", rules: (*waygatev1.FeatureFlag).RuleClauses}).Complete(); err != nil {
		return err
	}
	return ctrl.NewWebhookManagedBy(mgr, &waygatev1.Segment{}).
		WithValidator(clauseValidator[*waygatev1.Segment]{kind: "Segment", rules: (*waygatev1.Segment).RuleClauses}).Complete()
}

// clauseValidator rejects clause values that do not suit their operator
// (a regular expression that does not compile, a number that is not one).
type clauseValidator[T client.Object] struct {
	kind string
	// rules returns the clauses of each of the object's rules, in order.
	rules func(T) [][]waygatev1.Clause
}

func (v clauseValidator[T]) ValidateCreate(_ context.Context, obj T) (admission.Warnings, error) {
	return nil, v.invalid(obj)
}

func (v clauseValidator[T]) ValidateUpdate(_ context.Context, _, obj T) (admission.Warnings, error) {
	return nil, v.invalid(obj)
}

func (v clauseValidator[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) {
	return nil, nil
}

func (v clauseValidator[T]) invalid(obj T) error {
	var errs field.ErrorList
	path := field.NewPath("spec", "rules")
	for i, clauses := range v.rules(obj) {
		errs = append(errs, gate.ValidateClauses(clauses, path.Index(i).Child("clauses"))...)
	}
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(waygatev1.GroupVersion.WithKind(v.kind).GroupKind(), obj.GetName(), errs)
}
