// Package controllers holds one reconciler per Waygate kind. Reconcilers are
// level-triggered and idempotent, and write only status: the spec belongs to
// the people and GitOps tools that apply it.
package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
)

// Reasons of the Ready condition shared by several kinds.
const (
	// ReasonDuplicate: another object already holds the same key or scope.
	ReasonDuplicate = "Duplicate"
	// ReasonResolved: every reference resolves.
	ReasonResolved = "Resolved"
)

// setReady records the Ready condition for generation gen.
func setReady(s *waygatev1.CommonStatus, gen int64, ready bool, reason, message string) {
	status := metav1.ConditionFalse
	if ready {
		status = metav1.ConditionTrue
	}
	s.ObservedGeneration = gen
	meta.SetStatusCondition(&s.Conditions, metav1.Condition{
		Type:               waygatev1.ConditionReady,
		Status:             status,
		ObservedGeneration: gen,
		Reason:             reason,
		Message:            message,
	})
}

// reconcileKind is the reconcile every kind shares: fetch the object, write
// its pending audit records, let compute fill in its status (given the
// object as it was), and write the status if it changed. The audit sequence
// and the rest of the status go out in one write.
func reconcileKind[T any, P interface {
	*T
	audit.Object
}](ctx context.Context, c client.Client, w *audit.Writer, key types.NamespacedName, compute func(obj, was P) (reconcile.Result, error)) (reconcile.Result, error) {
	obj := P(new(T))
	if err := c.Get(ctx, key, obj); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	was := obj.DeepCopyObject().(P)
	drained, updated, err := w.Drain(ctx, obj)
	switch {
	case apierrors.IsConflict(err):
		// Changed meanwhile: the event of that change brings us back, with
		// no backoff (bursts conflict often).
		return reconcile.Result{}, nil
	case err != nil:
		return reconcile.Result{}, err
	case updated || obj.GetDeletionTimestamp() != nil:
		// The object's own write brings us back, or it is going away.
		return reconcile.Result{}, nil
	}
	res, err := compute(obj, was)
	if err != nil {
		return reconcile.Result{}, err
	}
	if drained > 0 && (res.RequeueAfter == 0 || drained < res.RequeueAfter) {
		res.RequeueAfter = drained
	}
	return res, writeStatus(ctx, c, obj, was)
}

// reconcileKeyed reconciles a flag or a segment: it records the key in
// effect in the status, and reports in Ready that another object of the
// kind holds the key, or else check's verdict on what the object names.
func reconcileKeyed[T any, P interface {
	*T
	audit.Object
	Key() string
}](ctx context.Context, c client.Client, w *audit.Writer, name types.NamespacedName, noun, kind string,
	statusKey func(P) *string, byKey func(ns, key string) (P, error), check func(P) (bool, string, string, error)) (reconcile.Result, error) {
	return reconcileKind(ctx, c, w, name, func(obj, _ P) (reconcile.Result, error) {
		key := obj.Key()
		*statusKey(obj) = key
		h, err := byKey(obj.GetNamespace(), key)
		if err != nil {
			return reconcile.Result{}, err
		}
		ready, reason, msg := false, ReasonDuplicate, ""
		if h != nil && h.GetName() != obj.GetName() {
			msg = fmt.Sprintf("%s key %q is already used by %s %q; set a different spec.key", noun, key, kind, h.GetName())
		} else if ready, reason, msg, err = check(obj); err != nil {
			return reconcile.Result{}, err
		}
		setReady(obj.Common(), obj.GetGeneration(), ready, reason, msg)
		return reconcile.Result{}, nil
	})
}

// writeStatus writes obj's status when it differs from was's (obj as it was
// read), as a merge patch of the status alone, so that spec writes in
// between do not conflict with it.
func writeStatus(ctx context.Context, c client.Client, obj, was client.Object) error {
	if equality.Semantic.DeepEqual(obj, was) {
		return nil
	}
	return c.Status().Patch(ctx, obj, client.MergeFrom(was))
}
