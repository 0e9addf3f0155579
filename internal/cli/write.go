package cli

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
)

// update applies mutate to the latest version of obj and writes it as the
// CLI, unless GitOps manages obj and force is not set, or mutate changes
// nothing. It returns obj as it was before.
func update[T client.Object](ctx context.Context, o *Options, obj T, force bool, mutate func(T) error) (before T, err error) {
	if err := checkGitOps(obj, force); err != nil {
		return before, err
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := o.client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		before = obj.DeepCopyObject().(T)
		if err := mutate(obj); err != nil {
			return err
		}
		if equality.Semantic.DeepEqual(before, obj) {
			return nil
		}
		return o.client.Update(ctx, obj, client.FieldOwner(FieldManager))
	})
	return before, err
}

// create creates obj as the CLI and says so: "<what>: <describe()> (created
// ...)", describing obj as the API server stored it (with its defaults).
func (o *Options) create(ctx context.Context, what string, obj client.Object, describe func() string) error {
	if err := o.client.Create(ctx, obj, client.FieldOwner(FieldManager)); err != nil {
		return err
	}
	return o.report(obj, "%s: %s (created %s %s/%s)", what, describe(), kindOf(obj), obj.GetNamespace(), obj.GetName())
}

// changed says what a change did to obj, given obj as it was before:
// "<what>: <was> → <now> (...)", or that it was already so.
func (o *Options) changed(what, was, now string, before, obj client.Object) error {
	if equality.Semantic.DeepEqual(before, obj) {
		return o.report(obj, "%s: %s, unchanged (%s %s/%s)", what, now, kindOf(obj), obj.GetNamespace(), obj.GetName())
	}
	return o.report(obj, "%s: %s → %s (%s %s/%s)", what, was, now, kindOf(obj), obj.GetNamespace(), obj.GetName())
}

// report says what a write did: the line, or with -o json|yaml the object
// as the API server returned it.
func (o *Options) report(obj client.Object, format string, a ...any) error {
	if ok, err := o.structured(obj); ok {
		return err
	}
	o.printf(format+"\n", a...)
	return nil
}

// delete deletes obj as the CLI, unless GitOps manages it and force is not
// set, and says so: "<what>: <was>, deleted (...)". A DELETE request
// carries no field manager, so it first marks obj as deleted from the CLI
// (audit.PlatformAnnotation) for the audit log; without the right to
// update obj, the deletion is audited with platform api.
func (o *Options) delete(ctx context.Context, what, was string, obj client.Object, force bool) error {
	if err := checkGitOps(obj, force); err != nil {
		return err
	}
	_, markErr := update(ctx, o, obj, true, setAnnotation[client.Object](audit.PlatformAnnotation, string(waygatev1.PlatformCLI)))
	if err := o.client.Delete(ctx, obj); err != nil {
		if markErr == nil {
			// Not deleted: take the mark back, so that it says nothing of
			// a later deletion by someone else.
			_, _ = update(ctx, o, obj, true, setAnnotation[client.Object](audit.PlatformAnnotation, ""))
		}
		return err
	}
	return o.report(obj, "%s: %s, deleted (%s %s/%s)", what, was, kindOf(obj), obj.GetNamespace(), obj.GetName())
}

// setAnnotation is a change that sets an annotation, or removes it when
// value is empty.
func setAnnotation[T client.Object](key, value string) func(T) error {
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
