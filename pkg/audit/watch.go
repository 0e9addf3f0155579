package audit

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// ErrExpired is returned by Watch when the resource version it was to
// watch from is older than the API server keeps (a few minutes of changes):
// read a Page again and watch from its ResourceVersion.
var ErrExpired = errors.New("the audit log's resource version is too old to watch from")

// Watch calls fn with each entry q selects (its Namespace, Path, Actor,
// Action and Since; not Limit or Continue) written after resourceVersion
// (a Page's), in the order they are written, until ctx ends (it then
// returns nil) or fn returns an error (which it returns). When the API
// server ends a watch it watches again from the last version seen;
// bookmarks keep that version current through quiet hours. resourceVersion
// "" watches from now.
func (q Query) Watch(ctx context.Context, c client.WithWatch, resourceVersion string, fn func(*waygatev1.AuditEntry) error) error {
	if resourceVersion == "" {
		var list waygatev1.AuditEntryList
		if err := c.List(ctx, &list, client.InNamespace(q.Namespace), client.Limit(1)); err != nil {
			return err
		}
		resourceVersion = list.ResourceVersion
	}
	entries := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
		opts.AllowWatchBookmarks = true
		listOpts := []client.ListOption{client.InNamespace(q.Namespace), &client.ListOptions{Raw: &opts}}
		if f := q.Fields(); len(f) > 0 {
			listOpts = append(listOpts, f)
		}
		return c.Watch(ctx, &waygatev1.AuditEntryList{}, listOpts...)
	}}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, resourceVersion, entries)
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("watching the audit log stopped")
			}
			if err := q.deliver(ev.Object, ev.Type, fn); err != nil {
				return err
			}
		}
	}
}

// deliver hands an added entry q keeps to fn, and turns an error event into
// an error.
func (q Query) deliver(obj runtime.Object, typ watch.EventType, fn func(*waygatev1.AuditEntry) error) error {
	switch obj := obj.(type) {
	case *waygatev1.AuditEntry:
		if typ == watch.Added && q.Keeps(obj) {
			return fn(obj)
		}
	case *metav1.Status:
		if obj.Code == http.StatusGone {
			return fmt.Errorf("%w: %s", ErrExpired, obj.Message)
		}
		return fmt.Errorf("watching the audit log: %s", obj.Message)
	}
	return nil
}
