// Package dataplane is the gate's server: it keeps the decision engine's
// snapshot in step with the API server through informers, and answers
// gateways over HTTP forward-auth (nginx, Caddy, Traefik) and Envoy's
// ext_authz, with rate-limit counters in memory or in Redis.
package dataplane

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/gate"
	"github.com/waygate-dev/waygate/internal/scheme"
	"github.com/waygate-dev/waygate/internal/watch"
)

// Source keeps an engine's snapshot in step with the API server: it watches
// RouteGates, RateLimitPolicies and the environment label of namespaces, and
// builds a new snapshot after each change; and FeatureFlags, Segments and
// the OFREP key Secrets, for the flag snapshots of each namespace. Its RBAC
// (config/gate) is read-only. When the API server cannot be reached the last
// snapshots stay in effect, and Stale says for how long.
type Source struct {
	engine *gate.Engine
	// Flags are the namespaces' flag snapshots and OFREP keys.
	Flags   *FlagSet
	view    *watch.View
	metrics SourceMetrics
	// routes and policies keep what the engine reads of RouteGates and
	// RateLimitPolicies, in place of the objects (of which a snapshot
	// needs a fraction, and a cluster may hold tens of thousands).
	routes   *watch.Table[*waygatev1.RouteGate, *gate.Route]
	policies *watch.Table[*waygatev1.RateLimitPolicy, *gate.Policy]
	// gatesDirty and flagsDirty name the namespaces whose part of the
	// engine's snapshot, and whose flag snapshots, are to be built again.
	gatesDirty dirty
	flagsDirty dirty
	ready      atomic.Bool
}

// dirty is a set of namespaces whose snapshots are to be built again at
// the next rebuild; "" stands for every namespace.
type dirty struct {
	mu  sync.Mutex
	set map[string]bool
}

// mark adds namespaces.
func (d *dirty) mark(namespaces ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.set == nil {
		d.set = map[string]bool{}
	}
	for _, ns := range namespaces {
		d.set[ns] = true
	}
}

// take empties the set and returns what it held.
func (d *dirty) take() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	set := d.set
	d.set = nil
	return set
}

// SourceMetrics are told what a Source builds.
type SourceMetrics interface {
	// SnapshotBuilt is told of each snapshot put in effect, and how many
	// namespaces it compiled (the first: every namespace, counted as one).
	SnapshotBuilt(s *gate.Snapshot, namespaces int)
	// FlagsCompiled is told of each namespace whose flags were compiled.
	FlagsCompiled()
}

// NewSource prepares a source for engine over cfg, telling metrics what it
// builds.
func NewSource(cfg *rest.Config, engine *gate.Engine, metrics SourceMetrics) (*Source, error) {
	envLabel, err := labels.NewRequirement(gate.EnvironmentLabel, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	view, err := watch.New(cfg, cache.Options{
		Scheme:           scheme.Scheme,
		DefaultTransform: lean,
		// The gate only reads; copies of thousands of objects per
		// rebuild would be waste.
		DefaultUnsafeDisableDeepCopy: new(true),
		ByObject: map[client.Object]cache.ByObject{
			// Of namespaces, only the labelled ones' metadata.
			namespaceMeta(): {Label: labels.NewSelector().Add(*envLabel)},
			// Of Secrets, only those holding OFREP keys (RBAC allows no
			// other name).
			&corev1.Secret{}: {Field: fields.OneTermEqualSelector("metadata.name", OFREPKeysSecret)},
		},
	})
	if err != nil {
		return nil, err
	}
	s := &Source{engine: engine, Flags: &FlagSet{}, view: view, metrics: metrics,
		routes: watch.NewTable(gate.RouteOf), policies: watch.NewTable(gate.PolicyOf)}
	s.gatesDirty.mark("")
	s.flagsDirty.mark("")
	return s, nil
}

// kinds are what snapshots are built from: the engine's and the flag
// snapshots'. A change builds its namespace's part again (a Namespace's, its
// own); the operator's status writes build nothing.
func (s *Source) kinds() []watch.Kind {
	in := func(d *dirty) func(obj any) {
		return func(obj any) {
			// A deleted object may come as its last known state; a
			// Namespace's key is its name.
			key, _ := toolscache.DeletionHandlingMetaNamespaceKeyFunc(obj)
			ns, _, _ := strings.Cut(key, "/")
			d.mark(ns)
		}
	}
	gates, flags := in(&s.gatesDirty), in(&s.flagsDirty)
	return []watch.Kind{
		{Object: &waygatev1.RouteGate{}, Changed: gates, Table: s.routes},
		{Object: &waygatev1.RateLimitPolicy{}, Changed: gates, Table: s.policies},
		{Object: namespaceMeta(), Changed: gates},
		{Object: &waygatev1.FeatureFlag{}, Changed: flags, IgnoreSameGeneration: true},
		{Object: &waygatev1.Segment{}, Changed: flags, IgnoreSameGeneration: true},
		{Object: &corev1.Secret{}, Changed: flags},
	}
}

// lean keeps of each object the cache holds what the gate reads, so that
// its cache holds no more: never managed fields; of the flag kinds,
// neither status (the operator's) nor annotations (the audit journal and
// kubectl's last applied configuration make most of an object), nor
// finalizers and owners. (RouteGates and RateLimitPolicies are kept in
// tables, not in the cache.)
func lean(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil // a deletion's last known state
	}
	o.SetManagedFields(nil)
	switch k := o.(type) {
	case *waygatev1.FeatureFlag:
		k.Status = waygatev1.FeatureFlagStatus{}
	case *waygatev1.Segment:
		k.Status = waygatev1.SegmentStatus{}
	default:
		return obj, nil
	}
	o.SetAnnotations(nil)
	o.SetFinalizers(nil)
	o.SetOwnerReferences(nil)
	return obj, nil
}

// namespaceMeta stands for namespaces' metadata (labels), all the gate
// reads of them.
func namespaceMeta() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}}
}

// Start watches until ctx ends. The first snapshot is in effect, and Ready
// true, once every watch has synced.
func (s *Source) Start(ctx context.Context) error {
	if err := s.view.Start(ctx, s.kinds()...); err != nil {
		return err
	}
	if err := s.view.Synced(ctx); err != nil {
		return err
	}
	if err := s.rebuild(ctx); err != nil {
		return err
	}
	s.ready.Store(true)
	ctrl.Log.WithName("source").Info("watching the API server; first snapshot in effect")
	for {
		select {
		case err := <-s.view.Done():
			return err
		case <-s.view.Changed():
			if err := s.rebuild(ctx); err != nil {
				ctrl.Log.WithName("source").Error(err, "building a snapshot")
			}
		}
	}
}

// rebuild brings the flag snapshots and the engine's snapshot up to date;
// a failure in one does not hold the other back.
func (s *Source) rebuild(ctx context.Context) error {
	flagsErr := s.rebuildFlags(ctx)
	dirty := s.gatesDirty.take()
	if len(dirty) == 0 {
		return flagsErr
	}
	if err := s.rebuildGates(ctx, dirty); err != nil {
		s.gatesDirty.mark(slices.Collect(maps.Keys(dirty))...)
		return errors.Join(flagsErr, err)
	}
	return flagsErr
}

// rebuildGates builds the engine's snapshot again for the namespaces of
// dirty (every namespace for ""), and keeps the other namespaces' part.
func (s *Source) rebuildGates(ctx context.Context, dirty map[string]bool) error {
	old := s.engine.Snapshot()
	if dirty[""] || old == nil {
		old, dirty = &gate.Snapshot{}, map[string]bool{"": true}
	}
	objs := gate.Objects{Environments: map[string]string{}}
	var namespaces []string
	for ns := range dirty {
		// The whole cluster for "", or one namespace.
		objs.Routes = append(objs.Routes, s.routes.In(ns)...)
		objs.Policies = append(objs.Policies, s.policies.In(ns)...)
		if err := s.environments(ctx, ns, objs.Environments); err != nil {
			return err
		}
		namespaces = append(namespaces, ns)
	}
	snap := old.With(namespaces, objs)
	s.engine.Swap(snap)
	s.metrics.SnapshotBuilt(snap, len(namespaces))
	for _, ns := range namespaces {
		for _, p := range snap.ProblemsIn(ns) {
			ctrl.Log.WithName("source").Info("left out of the snapshot", "problem", p)
		}
	}
	return nil
}

// environments puts into envs the environment the label of namespace ns
// (of every namespace for "") names.
func (s *Source) environments(ctx context.Context, ns string, envs map[string]string) error {
	if ns != "" {
		m := namespaceMeta()
		err := s.view.Get(ctx, client.ObjectKey{Name: ns}, m)
		if apierrors.IsNotFound(err) {
			return nil // unlabelled, or gone
		}
		envs[ns] = m.Labels[gate.EnvironmentLabel]
		return err
	}
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := s.view.List(ctx, &list); err != nil {
		return err
	}
	for _, n := range list.Items {
		envs[n.Name] = n.Labels[gate.EnvironmentLabel]
	}
	return nil
}

// Ready reports whether the first snapshot is in effect.
func (s *Source) Ready() bool { return s.ready.Load() }

// Stale is how long the gate's view may have been behind the API server:
// zero while it answers, else the time since it first failed to.
func (s *Source) Stale() time.Duration { return s.view.Stale() }
