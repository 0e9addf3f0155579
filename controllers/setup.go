package controllers

import (
	"slices"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/waygate-dev/waygate/internal/audit"
)

// Setup registers every Waygate reconciler with the manager. Each drains its
// objects' audit journals before anything else, and reconciles up to
// concurrency objects at once. Windows open and close, and reconciles wait,
// on clk: the wall clock, or a test's.
func Setup(mgr ctrl.Manager, concurrency int, keys *audit.Keyring, clk clock.WithTicker) error {
	opts := controller.Options{
		MaxConcurrentReconciles: concurrency,
		// A reconcile asked for later (a window's boundary) waits on clk.
		NewQueue: func(name string, limiter workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
			return workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Name: name, Clock: clk})
		},
	}
	c, w := mgr.GetClient(), &audit.Writer{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Keys: keys, Clock: clk}
	if err := (&RouteGateReconciler{Client: c, Audit: w, Recorder: mgr.GetEventRecorder("waygate"), Clock: clk}).SetupWithManager(mgr, opts); err != nil {
		return err
	}
	if err := (&FeatureFlagReconciler{Client: c, Audit: w}).SetupWithManager(mgr, opts); err != nil {
		return err
	}
	if err := (&SegmentReconciler{Client: c, Audit: w}).SetupWithManager(mgr, opts); err != nil {
		return err
	}
	return (&RateLimitPolicyReconciler{Client: c, Audit: w}).SetupWithManager(mgr, opts)
}

// own are the changes of an object that its reconciler acts on: its spec
// (a generation), its annotations (the audit journal, a counter reset) and
// its finalizers (the operator holds a new object first, and drains it when
// that write comes back). Not the operator's status writes: in a bulk
// change each would bring its object back once more, for nothing.
var own = builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{},
	predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return !slices.Equal(e.ObjectOld.GetFinalizers(), e.ObjectNew.GetFinalizers())
	}}))

// specs are the changes of an object that others depend on: its creation,
// its spec and its deletion (route gates and rate limit policies: another
// one's state follows from their specs alone; a flag's Ready follows its
// prerequisites' down the chain, so flags and segments watch every change).
var specs = builder.WithPredicates(predicate.GenerationChangedPredicate{})

// CacheOptions is how the manager's cache holds objects: without what the
// operator never reads (less memory per object): managed fields, kubectl's
// last applied configuration, and the records of the audit journal already
// written (status.auditSequence acknowledges them; the webhook drops them
// at the next write). The operator writes its objects with patches of what
// it changed, so what the cache leaves out is never written back.
func CacheOptions() cache.Options {
	return cache.Options{DefaultTransform: lean}
}

// lastApplied is kubectl's annotation of the configuration it last applied.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

func lean(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil // a deletion's last known state
	}
	o.SetManagedFields(nil)
	a, ok := o.(audit.Object)
	if !ok {
		return obj, nil
	}
	ann := o.GetAnnotations()
	delete(ann, lastApplied)
	if journal, err := audit.Journal(o); err == nil { // an unreadable one is kept, for Drain to report
		if err := audit.SetJournal(o, audit.Pending(journal, a.Common().AuditSequence)); err != nil {
			return nil, err
		}
	}
	if len(o.GetAnnotations()) == 0 {
		o.SetAnnotations(nil) // the decoded map is not kept for nothing
	}
	return obj, nil
}
