package cli

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waygate-dev/waygate/internal/scheme"
)

// create creates obj as the CLI and says so: "<what>: <describe()> (created
// ...)", describing obj as the API server stored it (with its defaults).
func (o *Options) create(ctx context.Context, what string, obj client.Object, describe func() string) error {
	if err := o.writer.Create(ctx, obj); err != nil {
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
// set, and says so: "<what>: <was>, deleted (...)". The audit log records
// the deletion with platform cli (edit.Writer.Delete).
func (o *Options) delete(ctx context.Context, what, was string, obj client.Object, force bool) error {
	if err := o.writer.Delete(ctx, obj, force); err != nil {
		return err
	}
	return o.report(obj, "%s: %s, deleted (%s %s/%s)", what, was, kindOf(obj), obj.GetNamespace(), obj.GetName())
}

// kindOf is the lower-case kind of obj: routegate, featureflag, ...
func kindOf(obj client.Object) string {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return "object"
	}
	return strings.ToLower(gvks[0].Kind)
}
