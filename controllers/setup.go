package controllers

import (
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
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
	return obj, nil
}
