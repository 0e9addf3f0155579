package controllers

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/waygate-dev/waygate/internal/audit"
)

// Setup registers every Waygate reconciler with the manager. Each drains its
// objects' audit journals before anything else, and reconciles up to
// concurrency objects at once.
func Setup(mgr ctrl.Manager, concurrency int, keys *audit.Keyring) error {
	opts := controller.Options{MaxConcurrentReconciles: concurrency}
	c, w := mgr.GetClient(), &audit.Writer{Client: mgr.GetClient(), Keys: keys}
	if err := (&RouteGateReconciler{Client: c, Audit: w, Recorder: mgr.GetEventRecorder("waygate")}).SetupWithManager(mgr, opts); err != nil {
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

// CacheOptions is how the manager's cache holds objects: without their
// managedFields, which the operator never reads (less memory per object).
func CacheOptions() cache.Options {
	return cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
}
