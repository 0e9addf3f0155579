package controllers

import (
	"context"
	"fmt"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
)

// Ready reasons of a FeatureFlag.
const (
	ReasonPrerequisiteNotFound          = "PrerequisiteNotFound"
	ReasonPrerequisiteVariationNotFound = "PrerequisiteVariationNotFound"
	ReasonPrerequisiteCycle             = "PrerequisiteCycle"
	ReasonSegmentNotFound               = "SegmentNotFound"
)

// FeatureFlagReconciler resolves each flag's prerequisites and segments and
// reports in Ready what is missing or circular. References are not rejected
// when written, since GitOps applies objects in any order.
type FeatureFlagReconciler struct {
	client.Client
	Audit *audit.Writer
}

// +kubebuilder:rbac:groups=waygate.dev,resources=featureflags,verbs=get;list;watch
// +kubebuilder:rbac:groups=waygate.dev,resources=featureflags/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=waygate.dev,resources=segments,verbs=get;list;watch

// Reconcile records the key in effect and whether the flag's references resolve.
func (r *FeatureFlagReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	return reconcileKeyed(ctx, r.Client, r.Audit, req.NamespacedName, "flag", "FeatureFlag",
		func(ff *waygatev1.FeatureFlag) *string { return &ff.Status.Key },
		func(ns, key string) (*waygatev1.FeatureFlag, error) { return flagByKey(ctx, r.Client, ns, key) },
		func(ff *waygatev1.FeatureFlag) (bool, string, string, error) { return r.check(ctx, ff) })
}

func (r *FeatureFlagReconciler) check(ctx context.Context, ff *waygatev1.FeatureFlag) (bool, string, string, error) {
	ns, key := ff.Namespace, ff.Key()
	for _, p := range ff.Spec.Prerequisites {
		dep, err := flagByKey(ctx, r.Client, ns, string(p.Flag))
		if err != nil {
			return false, "", "", err
		}
		if dep == nil {
			return false, ReasonPrerequisiteNotFound, fmt.Sprintf(
				"prerequisite flag %q does not exist in namespace %s; create it or remove it from spec.prerequisites", p.Flag, ns), nil
		}
		if !hasVariation(dep, p.Variation) {
			return false, ReasonPrerequisiteVariationNotFound, fmt.Sprintf(
				"prerequisite flag %q has no variation %q; use one of: %s", p.Flag, p.Variation, variationNames(dep)), nil
		}
	}
	cycle, err := findCycle(ff, key, func(k string) (*waygatev1.FeatureFlag, error) { return flagByKey(ctx, r.Client, ns, k) }, prerequisiteKeys)
	if err != nil {
		return false, "", "", err
	}
	if cycle != nil {
		return false, ReasonPrerequisiteCycle, fmt.Sprintf(
			"prerequisites form a cycle: %s; remove one of these prerequisites", arrow(cycle)), nil
	}
	if msg, err := missingSegment(ctx, r.Client, ns, segmentRefs(ff.RuleClauses())); err != nil || msg != "" {
		return false, ReasonSegmentNotFound, msg, err
	}
	return true, ReasonResolved, "all prerequisites and segments resolve", nil
}

func prerequisiteKeys(ff *waygatev1.FeatureFlag) []string {
	keys := make([]string, len(ff.Spec.Prerequisites))
	for i, p := range ff.Spec.Prerequisites {
		keys[i] = string(p.Flag)
	}
	return keys
}

func hasVariation(ff *waygatev1.FeatureFlag, name string) bool {
	for _, v := range ff.Spec.Variations {
		if v.Name == name {
			return true
		}
	}
	return false
}

func variationNames(ff *waygatev1.FeatureFlag) string {
	names := make([]string, len(ff.Spec.Variations))
	for i, v := range ff.Spec.Variations {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}

// SetupWithManager registers the reconciler and its indexes. A flag is
// re-checked when a flag it depends on, or a segment it names, changes.
func (r *FeatureFlagReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &waygatev1.FeatureFlag{}, keyIndex, func(o client.Object) []string {
		return []string{o.(*waygatev1.FeatureFlag).Key()}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &waygatev1.FeatureFlag{}, prerequisiteIndex, func(o client.Object) []string {
		return prerequisiteKeys(o.(*waygatev1.FeatureFlag))
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &waygatev1.FeatureFlag{}, segmentRefIndex, func(o client.Object) []string {
		return segmentRefs(o.(*waygatev1.FeatureFlag).RuleClauses())
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&waygatev1.FeatureFlag{}, own).
		Watches(&waygatev1.FeatureFlag{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			ff := o.(*waygatev1.FeatureFlag)
			// Dependents, and flags that share the key (one of them may now hold it).
			return append(
				requestsFor(ctx, r.Client, &waygatev1.FeatureFlagList{}, indexed(ff.Namespace, prerequisiteIndex, ff.Key())...),
				requestsFor(ctx, r.Client, &waygatev1.FeatureFlagList{}, indexed(ff.Namespace, keyIndex, ff.Key())...)...)
		})).
		Watches(&waygatev1.Segment{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			s := o.(*waygatev1.Segment)
			return requestsFor(ctx, r.Client, &waygatev1.FeatureFlagList{}, indexed(s.Namespace, segmentRefIndex, s.Key())...)
		})).
		WithOptions(opts).
		Named("featureflag").
		Complete(r)
}
