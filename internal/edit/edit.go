// Package edit writes Waygate's objects as a person, for the CLI and the
// dashboard alike: with the client of the person's own identity, under the
// field manager that names the front end (so that the audit trail says who,
// and from where), on the latest version of an object, and not over what a
// GitOps tool manages unless forced.
package edit

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/routes"
)

// Writer writes as one person, from one front end.
type Writer struct {
	client       client.Client
	fieldManager string
	// platform is what the audit trail makes of fieldManager, the mark a
	// deletion carries.
	platform waygatev1.Platform
}

// New returns a writer that writes with c, as c's user, under fieldManager
// (audit.CLIFieldManager, audit.DashboardFieldManager).
func New(c client.Client, fieldManager string) *Writer {
	return &Writer{client: c, fieldManager: fieldManager, platform: audit.PlatformOf(fieldManager, "")}
}

// ManagedError says that a GitOps tool manages the object a change was
// refused for: the tool's next sync would silently undo the change. Each
// front end says how to force it.
type ManagedError struct {
	// Kind is the object's kind (RouteGate, ...).
	Kind, Namespace, Name string
	// Tool is the GitOps tool, Mark what on the object says so
	// (audit.ManagedBy).
	Tool, Mark string
}

func (e *ManagedError) Error() string {
	return fmt.Sprintf("%s %s/%s is managed by %s (%s): the next sync reverts a change made here", e.Kind, e.Namespace, e.Name, e.Tool, e.Mark)
}

// guard refuses, with a *ManagedError, to change obj when a GitOps tool
// manages it, unless force is set.
func (w *Writer) guard(obj client.Object, force bool) error {
	tool, mark := audit.ManagedBy(obj)
	if tool == "" || force {
		return nil
	}
	kind := "object"
	if gvk, err := apiutil.GVKForObject(obj, w.client.Scheme()); err == nil {
		kind = gvk.Kind
	}
	return &ManagedError{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), Tool: tool, Mark: mark}
}

// Update reads the latest version of obj (by its namespace and name) into
// obj, applies mutate to it and writes it, retrying on conflict. It writes
// nothing when a GitOps tool manages the latest version and force is not
// set (a *ManagedError), or when mutate changes nothing. It returns obj as
// it was before.
func Update[T client.Object](ctx context.Context, w *Writer, obj T, force bool, mutate func(T) error) (before T, err error) {
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := w.client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		if err := w.guard(obj, force); err != nil {
			return err
		}
		before = obj.DeepCopyObject().(T)
		if err := mutate(obj); err != nil {
			return err
		}
		if equality.Semantic.DeepEqual(before, obj) {
			return nil
		}
		return w.client.Update(ctx, obj, client.FieldOwner(w.fieldManager))
	})
	return before, err
}

// Create creates obj; obj is then as the API server stored it.
func (w *Writer) Create(ctx context.Context, obj client.Object) error {
	return w.client.Create(ctx, obj, client.FieldOwner(w.fieldManager))
}

// NameForRoute names obj, a new RouteGate or RateLimitPolicy of route key
// in service, as both front ends name them: after the route
// (routes.ObjectName), with a suffix (routes.UniqueName) when an object of
// obj's kind in its namespace has that name already.
func (w *Writer) NameForRoute(ctx context.Context, obj client.Object, service, key string) error {
	name := routes.ObjectName(service, key)
	obj.SetName(name)
	err := w.client.Get(ctx, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
	switch {
	case err == nil:
		obj.SetName(routes.UniqueName(name, service, key))
	case !apierrors.IsNotFound(err):
		return err
	}
	return nil
}

// Delete deletes obj, unless a GitOps tool manages it and force is not set
// (a *ManagedError; the tool's next sync would restore it). A DELETE
// request carries no field manager, so Delete first marks obj with the
// writer's platform (audit.PlatformAnnotation) for the audit log, and takes
// the mark back when the deletion fails. Without the right to update obj,
// the deletion is audited with platform api.
func (w *Writer) Delete(ctx context.Context, obj client.Object, force bool) error {
	// The guard judges the latest obj, or obj as given when it cannot be
	// read.
	_ = w.client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if err := w.guard(obj, force); err != nil {
		return err
	}
	markErr := w.mark(ctx, obj, string(w.platform))
	if err := w.client.Delete(ctx, obj); err != nil {
		if markErr == nil {
			// Not deleted: take the mark back, so that it says nothing of
			// a later deletion by someone else.
			_ = w.mark(ctx, obj, "")
		}
		return err
	}
	return nil
}

// mark sets the platform annotation of obj, or removes it when platform is
// empty, by a merge patch: unlike an update, no write of the operator's
// in between (a drained journal, a status) can make it fail on a conflict.
func (w *Writer) mark(ctx context.Context, obj client.Object, platform string) error {
	var value any
	if platform != "" {
		value = platform
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{audit.PlatformAnnotation: value}}})
	if err != nil {
		return err
	}
	return w.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(w.fieldManager))
}

// SetAnnotation is a mutation for Update that sets an annotation, or
// removes it when value is empty.
func SetAnnotation[T client.Object](key, value string) func(T) error {
	return func(obj T) error {
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		if value == "" {
			delete(ann, key)
		} else {
			ann[key] = value
		}
		obj.SetAnnotations(ann)
		return nil
	}
}
