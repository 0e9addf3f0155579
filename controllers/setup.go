package controllers

import (
	ctrl "sigs.k8s.io/controller-runtime"
)

// Setup registers every Waygate reconciler with the manager.
func Setup(mgr ctrl.Manager) error {
	if err := (&RouteGateReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("waygate")}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&FeatureFlagReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&SegmentReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&RateLimitPolicyReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)
}
