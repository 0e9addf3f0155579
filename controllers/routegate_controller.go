package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/kube"
	"github.com/waygate-dev/waygate/internal/routes"
)

// Ready reasons of a RouteGate.
const (
	ReasonStateApplied       = "StateApplied"
	ReasonWindowScheduled    = "WindowScheduled"
	ReasonWindowOpen         = "WindowOpen"
	ReasonDisabledUntil      = "DisabledUntil"
	ReasonServiceMaintenance = "ServiceMaintenance"
)

// RouteGateReconciler computes the state in effect of each route: its own
// state, its maintenance window or the end of its disable, and the
// service-wide gates that cover it.
type RouteGateReconciler struct {
	client.Client
	Audit    *audit.Writer
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
}

// +kubebuilder:rbac:groups=waygate.dev,resources=routegates,verbs=get;list;watch
// +kubebuilder:rbac:groups=waygate.dev,resources=routegates/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile computes and records the state in effect of one RouteGate, and
// asks to be called again when a window starts or ends, or a disable ends.
func (r *RouteGateReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	return reconcileKind(ctx, r.Client, r.Audit, req.NamespacedName, func(rg, was *waygatev1.RouteGate) (reconcile.Result, error) {
		return r.compute(ctx, rg, was)
	})
}

// compute fills in rg's status; was is rg as read, with its status as last
// written.
func (r *RouteGateReconciler) compute(ctx context.Context, rg, was *waygatev1.RouteGate) (reconcile.Result, error) {
	now := r.Clock.Now()
	var peers waygatev1.RouteGateList
	if err := claims(ctx, r.Client, &peers, rg.Namespace, rg.Spec.Service, rg.Spec.Route); err != nil {
		return reconcile.Result{}, err
	}
	serviceGates, err := r.serviceGates(ctx, rg)
	if err != nil {
		return reconcile.Result{}, err
	}

	eff := routes.Effective(rg, serviceGates, now)
	rg.Status.State = eff.State
	rg.Status.Reason = eff.Reason
	rg.Status.GovernedBy = eff.GovernedBy
	rg.Status.NextTransition = nil
	if !eff.Next.IsZero() {
		rg.Status.NextTransition = &metav1.Time{Time: eff.Next}
	}
	if h := kube.Holder(peers.Items); h != nil && h.Name != rg.Name {
		setReady(rg.Common(), rg.Generation, false, ReasonDuplicate,
			fmt.Sprintf("route %s%s is already gated by RouteGate %q; delete this RouteGate or merge it into %q",
				rg.Spec.Route, serviceSuffix(rg.Spec.Service), h.Name, h.Name))
	} else {
		reason, msg := readyReason(rg, eff)
		setReady(rg.Common(), rg.Generation, true, reason, msg)
	}
	// The window's boundaries (or the disable's end) passed since the status
	// was last computed (or since the edit that made this generation) are the
	// scheduler's changes: recorded before the status that shows them.
	journal, err := audit.Journal(was)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := r.Audit.Write(ctx, rg, audit.Unrecorded(was, journal, now)...); err != nil {
		return reconcile.Result{}, err
	}
	before := &was.Status
	if before.State != "" && before.State != eff.State {
		r.Recorder.Eventf(rg, nil, corev1.EventTypeNormal, "StateChanged", "ChangeState",
			"route %s: %s → %s%s", rg.Spec.Route, before.State, eff.State, because(eff.Reason))
	}
	if eff.Next.IsZero() {
		return reconcile.Result{}, nil
	}
	// A second late rather than early: the clock must have passed the
	// boundary when we compute again.
	return reconcile.Result{RequeueAfter: eff.Next.Sub(now) + time.Second}, nil
}

// serviceGates lists the service-wide gates that may cover rg: those of its
// service and those of the whole namespace.
func (r *RouteGateReconciler) serviceGates(ctx context.Context, rg *waygatev1.RouteGate) ([]waygatev1.RouteGate, error) {
	if rg.Spec.Route == waygatev1.AllRoutes {
		return nil, nil
	}
	services := []waygatev1.ServiceName{""}
	if rg.Spec.Service != "" {
		services = append(services, rg.Spec.Service)
	}
	var gates []waygatev1.RouteGate
	for _, s := range services {
		var list waygatev1.RouteGateList
		if err := claims(ctx, r.Client, &list, rg.Namespace, s, waygatev1.AllRoutes); err != nil {
			return nil, err
		}
		// Only the holder of a contested key is in effect.
		if h := kube.Holder(list.Items); h != nil {
			gates = append(gates, *h)
		}
	}
	return gates, nil
}

func readyReason(rg *waygatev1.RouteGate, eff routes.RouteState) (string, string) {
	switch {
	case eff.GovernedBy != "":
		return ReasonServiceMaintenance, fmt.Sprintf("in maintenance by service-wide RouteGate %q", eff.GovernedBy)
	case !eff.Ends.IsZero() && rg.Spec.Window != nil:
		return ReasonWindowOpen, fmt.Sprintf("maintenance window open until %s", eff.Ends.UTC().Format(time.RFC3339))
	case !eff.Ends.IsZero():
		return ReasonDisabledUntil, fmt.Sprintf("route is disabled until %s", eff.Ends.UTC().Format(time.RFC3339))
	case rg.Spec.Window != nil && !eff.Next.IsZero():
		return ReasonWindowScheduled, fmt.Sprintf("%s; maintenance window starts %s", eff.State, rg.Spec.Window.Start.UTC().Format(time.RFC3339))
	default:
		return ReasonStateApplied, fmt.Sprintf("route is %s", eff.State)
	}
}

// SetupWithManager registers the reconciler and its indexes. A change to a
// service-wide gate re-computes every route it may cover; a change to any gate
// re-computes the gates that claim the same route (one of them may now hold it).
func (r *RouteGateReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	if err := indexScopes(mgr, &waygatev1.RouteGate{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&waygatev1.RouteGate{}, own).
		Watches(&waygatev1.RouteGate{}, handler.EnqueueRequestsFromMapFunc(r.affected), specs).
		WithOptions(opts).
		Named("routegate").
		Complete(r)
}

// affected maps a RouteGate to the other gates whose state may depend on it.
func (r *RouteGateReconciler) affected(ctx context.Context, o client.Object) []reconcile.Request {
	rg := o.(*waygatev1.RouteGate)
	if rg.Spec.Route != waygatev1.AllRoutes {
		var list waygatev1.RouteGateList
		return requests(ctx, &list, claims(ctx, r.Client, &list, rg.Namespace, rg.Spec.Service, rg.Spec.Route))
	}
	// A namespace-wide gate covers every route of the namespace, a
	// service-wide one those of its service: picked here from the
	// namespace's, as an index of every gate's service would cost memory
	// for every gate, for a change that is rare.
	var list waygatev1.RouteGateList
	if err := r.List(ctx, &list, client.InNamespace(rg.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing dependent objects")
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if rg.Spec.Service == "" || list.Items[i].Spec.Service == rg.Spec.Service {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

func serviceSuffix(s waygatev1.ServiceName) string {
	if s == "" {
		return ""
	}
	return " of service " + string(s)
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}
