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
)

// ReasonSegmentCycle: segments name each other in a circle.
const ReasonSegmentCycle = "SegmentCycle"

// SegmentReconciler resolves the segments a segment's rules name and reports
// missing ones and cycles in Ready.
type SegmentReconciler struct {
	client.Client
	Audit *audit.Writer
}

// +kubebuilder:rbac:groups=waygate.dev,resources=segments,verbs=get;list;watch
// +kubebuilder:rbac:groups=waygate.dev,resources=segments/status,verbs=get;update;patch

// Reconcile records the key in effect and whether the segment's references resolve.
func (r *SegmentReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	return reconcileKeyed(ctx, r.Client, r.Audit, req.NamespacedName, "segment", "Segment",
		func(seg *waygatev1.Segment) *string { return &seg.Status.Key },
		func(ns, key string) (*waygatev1.Segment, error) { return segmentByKey(ctx, r.Client, ns, key) },
		func(seg *waygatev1.Segment) (bool, string, string, error) { return r.check(ctx, seg) })
}

func (r *SegmentReconciler) check(ctx context.Context, seg *waygatev1.Segment) (bool, string, string, error) {
	ns, key := seg.Namespace, seg.Key()
	if msg, err := missingSegment(ctx, r.Client, ns, rulesSegmentRefs(seg)); err != nil || msg != "" {
		return false, ReasonSegmentNotFound, msg, err
	}
	cycle, err := findCycle(seg, key, func(k string) (*waygatev1.Segment, error) { return segmentByKey(ctx, r.Client, ns, k) }, rulesSegmentRefs)
	if err != nil {
		return false, "", "", err
	}
	if cycle != nil {
		return false, ReasonSegmentCycle, fmt.Sprintf(
			"segments name each other in a cycle: %s; remove one of these clauses", arrow(cycle)), nil
	}
	return true, ReasonResolved, "all segments named in rules resolve", nil
}

func rulesSegmentRefs(s *waygatev1.Segment) []string { return segmentRefs(s.RuleClauses()) }

// SetupWithManager registers the reconciler and its indexes. A segment is
// re-checked when a segment it names, or one with the same key, changes.
func (r *SegmentReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &waygatev1.Segment{}, keyIndex, func(o client.Object) []string {
		return []string{o.(*waygatev1.Segment).Key()}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &waygatev1.Segment{}, segmentRefIndex, func(o client.Object) []string {
		return rulesSegmentRefs(o.(*waygatev1.Segment))
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&waygatev1.Segment{}, own).
		Watches(&waygatev1.Segment{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			s := o.(*waygatev1.Segment)
			return append(
				requestsFor(ctx, r.Client, &waygatev1.SegmentList{}, indexed(s.Namespace, segmentRefIndex, s.Key())...),
				requestsFor(ctx, r.Client, &waygatev1.SegmentList{}, indexed(s.Namespace, keyIndex, s.Key())...)...)
		})).
		WithOptions(opts).
		Named("segment").
		Complete(r)
}
