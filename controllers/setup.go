package controllers

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/waygate-dev/waygate/internal/audit"
)

// Setup registers every Waygate reconciler with the manager. Each drains its
// objects' audit journals before anything else.
func Setup(mgr ctrl.Manager) error {
	c, w := mgr.GetClient(), &audit.Writer{Client: mgr.GetClient(), Reader: mgr.GetAPIReader()}
	if err := (&RouteGateReconciler{Client: c, Audit: w, Recorder: mgr.GetEventRecorder("waygate")}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&FeatureFlagReconciler{Client: c, Audit: w}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&SegmentReconciler{Client: c, Audit: w}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&RateLimitPolicyReconciler{Client: c, Audit: w}).SetupWithManager(mgr)
}
