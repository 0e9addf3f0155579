// Package watch keeps a view of Kubernetes objects in step with the API
// server and says when it changed, for readers that rebuild a snapshot
// from the objects after each burst of changes: the gate's source and the
// Go flag provider's cluster source. One informer cache serves the view;
// changes that arrive while a snapshot is being built coalesce into one
// signal for the next build; and the view knows how long it may have been
// behind the API server (apihealth).
package watch

import (
	"context"
	"maps"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8swatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/waygate-dev/waygate/internal/apihealth"
)

// Kind is a kind of object the view watches.
type Kind struct {
	Object client.Object
	// Changed, when set, is told of each change's object before the change
	// is signalled (a deleted object may come as its last known state,
	// toolscache.DeletedFinalStateUnknown).
	Changed func(obj any)
	// IgnoreSameGeneration skips updates that leave the generation and the
	// annotations (as the cache keeps them) of an object that counts
	// generations alone (the operator's status writes): nothing a snapshot
	// reads changed.
	IgnoreSameGeneration bool
	// Table, when set, keeps the kind out of the cache: its objects go to
	// the table, which keeps its rows of them, and Changed is told of the
	// changes the table sees (IgnoreSameGeneration is the rows' Same).
	Table table
}

// View is an informer cache of some kinds; its Reader reads from it.
type View struct {
	client.Reader
	cache cache.Cache
	// client lists and watches the kinds kept in tables.
	client  client.WithWatch
	scheme  *runtime.Scheme
	tables  []table
	health  *apihealth.Health
	changed chan struct{}
	done    chan error
}

// New prepares a view through cfg (which it wraps to see whether the API
// server answers), with the cache's options (scheme, namespaces,
// selectors, transforms).
func New(cfg *rest.Config, opts cache.Options) (*View, error) {
	cfg, health := apihealth.Watch(cfg)
	c, err := cache.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	cl, err := client.NewWithWatch(cfg, client.Options{Scheme: opts.Scheme})
	if err != nil {
		return nil, err
	}
	return &View{Reader: c, cache: c, client: cl, scheme: opts.Scheme, health: health, changed: make(chan struct{}, 1), done: make(chan error, 1)}, nil
}

// Start watches kinds until ctx ends, in the background; Synced says when
// the first lists are in.
func (v *View) Start(ctx context.Context, kinds ...Kind) error {
	for _, k := range kinds {
		changed := func(obj any) {
			if k.Changed != nil {
				k.Changed(obj)
			}
			v.Poke()
		}
		if k.Table != nil {
			lw, err := v.listWatch(k.Object)
			if err != nil {
				return err
			}
			k.Table.notify(changed)
			v.tables = append(v.tables, k.Table)
			r := toolscache.NewReflectorWithOptions(lw, k.Object, k.Table, toolscache.ReflectorOptions{})
			go r.RunWithContext(ctx)
			continue
		}
		inf, err := v.cache.GetInformer(ctx, k.Object)
		if err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: changed,
			UpdateFunc: func(old, obj any) {
				if k.IgnoreSameGeneration && sameGeneration(old, obj) {
					return
				}
				changed(obj)
			},
			DeleteFunc: changed,
		}); err != nil {
			return err
		}
	}
	go func() { v.done <- v.cache.Start(ctx) }()
	return nil
}

// Synced waits until every watch has listed its objects, or the view
// stopped (its error), or ctx ended. The changes the first lists made are
// not signalled: a snapshot built after Synced sees them.
func (v *View) Synced(ctx context.Context) error {
	if !v.cache.WaitForCacheSync(ctx) {
		select {
		case err := <-v.done:
			return err
		default:
			return ctx.Err()
		}
	}
	for _, t := range v.tables {
		select {
		case <-t.synced():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-v.changed:
	default:
	}
	return nil
}

// Changed is signalled after changes; those that arrive before a reader
// takes the signal share it.
func (v *View) Changed() <-chan struct{} { return v.changed }

// Poke signals a change, so that the reader builds again (after a
// failure, say).
func (v *View) Poke() {
	select {
	case v.changed <- struct{}{}:
	default:
	}
}

// Done gives the view's end: nil once the context of Start ended, else
// why the cache stopped.
func (v *View) Done() <-chan error { return v.done }

// Stale is how long the view may have been behind the API server: zero
// while it answers, else the time since it first failed to.
func (v *View) Stale() time.Duration { return v.health.Stale() }

// listWatch lists and watches the kind of obj, for a table's reflector.
func (v *View) listWatch(obj client.Object) (toolscache.ListerWatcher, error) {
	gvk, err := apiutil.GVKForObject(obj, v.scheme)
	if err != nil {
		return nil, err
	}
	newList := func() (client.ObjectList, error) {
		l, err := v.scheme.New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err != nil {
			return nil, err
		}
		return l.(client.ObjectList), nil
	}
	// The reflector's options as they are: its pages, versions, bookmarks.
	opts := func(o *metav1.ListOptions) *client.ListOptions {
		return &client.ListOptions{Raw: o, Limit: o.Limit, Continue: o.Continue}
	}
	return &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			l, err := newList()
			if err != nil {
				return nil, err
			}
			return l, v.client.List(ctx, l, opts(&o))
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (k8swatch.Interface, error) {
			l, err := newList()
			if err != nil {
				return nil, err
			}
			return v.client.Watch(ctx, l, opts(&o))
		},
	}, nil
}

// sameGeneration tells whether old and obj are the same generation of an
// object that counts them (the Waygate kinds, not Secrets), with the same
// annotations.
func sameGeneration(old, obj any) bool {
	o, ok1 := old.(client.Object)
	n, ok2 := obj.(client.Object)
	return ok1 && ok2 && n.GetGeneration() != 0 && o.GetGeneration() == n.GetGeneration() &&
		maps.Equal(o.GetAnnotations(), n.GetAnnotations())
}
