package controllers

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/kube"
)

// Scopes of a RateLimitPolicy.
const (
	ScopeRoute     = "route"
	ScopeService   = "service"
	ScopeNamespace = "namespace"
)

// ReasonDisabled: the policy is valid but spec.enabled is false.
const ReasonDisabled = "Disabled"

// RateLimitPolicyReconciler reports each policy's scope and whether it is the
// one in effect for that scope.
type RateLimitPolicyReconciler struct {
	client.Client
	Audit *audit.Writer
}

// +kubebuilder:rbac:groups=waygate.dev,resources=ratelimitpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=waygate.dev,resources=ratelimitpolicies/status,verbs=get;update;patch

// Reconcile records the policy's scope and whether it is in effect.
func (r *RateLimitPolicyReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	return reconcileKind(ctx, r.Client, r.Audit, req.NamespacedName, func(p, _ *waygatev1.RateLimitPolicy) (reconcile.Result, error) {
		var peers waygatev1.RateLimitPolicyList
		if err := claims(ctx, r.Client, &peers, p.Namespace, p.Spec.Service, p.Spec.Route); err != nil {
			return reconcile.Result{}, err
		}
		p.Status.Scope = rateLimitScope(&p.Spec)
		switch h := kube.Holder(peers.Items); {
		case h != nil && h.Name != p.Name:
			setReady(p.Common(), p.Generation, false, ReasonDuplicate, fmt.Sprintf(
				"route %s%s already has RateLimitPolicy %q; delete this policy or merge it into %q (use tiers for per-plan limits)",
				p.Spec.Route, serviceSuffix(p.Spec.Service), h.Name, h.Name))
		case !p.Spec.Enabled:
			setReady(p.Common(), p.Generation, true, ReasonDisabled, "policy is disabled: it limits nothing until spec.enabled is true")
		default:
			setReady(p.Common(), p.Generation, true, ReasonResolved, fmt.Sprintf(
				"%s per %s key, %s", p.Spec.Limit, p.Spec.KeyStrategy, p.Spec.Algorithm))
		}
		return reconcile.Result{}, nil
	})
}

func rateLimitScope(s *waygatev1.RateLimitPolicySpec) string {
	switch {
	case s.Route != waygatev1.AllRoutes:
		return ScopeRoute
	case s.Service != "":
		return ScopeService
	default:
		return ScopeNamespace
	}
}

// SetupWithManager registers the reconciler and its index. Policies of the
// same scope are re-checked together, as one of them may now hold the scope.
func (r *RateLimitPolicyReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	if err := indexScopes(mgr, &waygatev1.RateLimitPolicy{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&waygatev1.RateLimitPolicy{}, own).
		Watches(&waygatev1.RateLimitPolicy{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			p := o.(*waygatev1.RateLimitPolicy)
			var list waygatev1.RateLimitPolicyList
			return requests(ctx, &list, claims(ctx, r.Client, &list, p.Namespace, p.Spec.Service, p.Spec.Route))
		}), specs).
		WithOptions(opts).
		Named("ratelimitpolicy").
		Complete(r)
}
