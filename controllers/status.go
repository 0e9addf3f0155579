// Package controllers holds one reconciler per Waygate kind. Reconcilers are
// level-triggered and idempotent, and write only status: the spec belongs to
// the people and GitOps tools that apply it.
package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// drainAudit writes obj's pending audit records and acknowledges them in its
// status (written with the rest of the status). done says the reconcile ends
// here: obj is being deleted, or changed meanwhile (its event brings us
// back, without backoff: bursts conflict often).
func drainAudit(ctx context.Context, w *audit.Writer, obj audit.Object) (result reconcile.Result, done bool, err error) {
	after, err := w.Drain(ctx, obj)
	switch {
	case apierrors.IsConflict(err):
		return reconcile.Result{}, true, nil
	case err != nil:
		return reconcile.Result{}, true, err
	}
	return reconcile.Result{RequeueAfter: after}, obj.GetDeletionTimestamp() != nil, nil
}

// writeStatus writes obj's status when it differs from base's (a copy of obj
// with the status it had), as a merge patch of the status alone, so that
// spec writes in between do not conflict with it.
func writeStatus(ctx context.Context, c client.Client, obj, base client.Object) error {
	if equality.Semantic.DeepEqual(obj, base) {
		return nil
	}
	return c.Status().Patch(ctx, obj, client.MergeFrom(base))
}

// holder returns the object that holds a key several objects claim: the
// oldest, then the lowest name, so that every reconcile agrees on it.
func holder[T any, P interface {
	*T
	client.Object
}](items []T) P {
	var best P
	for i := range items {
		p := P(&items[i])
		if best == nil || createdBefore(p, best) {
			best = p
		}
	}
	return best
}

func createdBefore(a, b client.Object) bool {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.GetName() < b.GetName()
}
