// Package dataplane is the gate's server: it keeps the decision engine's
// snapshot in step with the API server through informers, and answers
// gateways over HTTP forward-auth (nginx, Caddy, Traefik) and Envoy's
// ext_authz, with rate-limit counters in memory or in Redis.
package dataplane

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
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
	"github.com/waygate-dev/waygate/internal/apihealth"
	"github.com/waygate-dev/waygate/internal/gate"
	"github.com/waygate-dev/waygate/internal/scheme"
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
	cache   cache.Cache
	changed chan struct{}
	// dirtyGates asks for the engine's snapshot to be rebuilt, flagsDirty
	// for the flag snapshots of the namespaces it names.
	dirtyGates atomic.Bool
	flagsMu    sync.Mutex
	flagsDirty map[string]bool
	ready      atomic.Bool
	health     *apihealth.Health
	// OnSnapshot is told of every snapshot put in effect.
	OnSnapshot func(s *gate.Snapshot, objects int)
	// FlagCompiles counts namespaces whose flags were compiled; NewMetrics
	// sets it, before Start.
	FlagCompiles prometheus.Counter
}

// NewSource prepares a source for engine over cfg (which it wraps to see
// whether the API server answers).
func NewSource(cfg *rest.Config, engine *gate.Engine) (*Source, error) {
	cfg, health := apihealth.Watch(cfg)
	envLabel, err := labels.NewRequirement(gate.EnvironmentLabel, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	c, err := cache.New(cfg, cache.Options{
		Scheme:           scheme.Scheme,
		DefaultTransform: cache.TransformStripManagedFields(),
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
	s := &Source{engine: engine, Flags: &FlagSet{}, cache: c, changed: make(chan struct{}, 1), health: health}
	s.dirtyGates.Store(true)
	s.flagsDirty = map[string]bool{"": true}
	return s, nil
}

// watched are the kinds snapshots are built from: those of the engine, and
// (flags) those of the flag snapshots.
func watched() []struct {
	obj   client.Object
	flags bool
} {
	return []struct {
		obj   client.Object
		flags bool
	}{
		{&waygatev1.RouteGate{}, false}, {&waygatev1.RateLimitPolicy{}, false}, {namespaceMeta(), false},
		{&waygatev1.FeatureFlag{}, true}, {&waygatev1.Segment{}, true}, {&corev1.Secret{}, true},
	}
}

// namespaceMeta stands for namespaces' metadata (labels), all the gate
// reads of them.
func namespaceMeta() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}}
}

// Start watches until ctx ends. The first snapshot is in effect, and Ready
// true, once every watch has synced.
func (s *Source) Start(ctx context.Context) error {
	for _, w := range watched() {
		inf, err := s.cache.GetInformer(ctx, w.obj)
		if err != nil {
			return err
		}
		poke := func(obj any) {
			if !w.flags {
				s.dirtyGates.Store(true)
				s.poke()
				return
			}
			// A deleted object may come as its last known state.
			key, _ := toolscache.DeletionHandlingMetaNamespaceKeyFunc(obj)
			ns, _, _ := strings.Cut(key, "/")
			s.changedFlags(ns)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: poke,
			UpdateFunc: func(old, obj any) {
				// The operator's status writes leave a flag's or segment's
				// generation alone: nothing to recompile.
				if w.flags && sameGeneration(old, obj) {
					return
				}
				poke(obj)
			},
			DeleteFunc: poke,
		}); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.cache.Start(ctx) }()
	if !s.cache.WaitForCacheSync(ctx) {
		select {
		case err := <-errc:
			return err
		default:
			return ctx.Err()
		}
	}
	if err := s.rebuild(ctx); err != nil {
		return err
	}
	s.ready.Store(true)
	ctrl.Log.WithName("source").Info("watching the API server; first snapshot in effect")
	for {
		select {
		case <-ctx.Done():
			return <-errc
		case err := <-errc:
			return err
		case <-s.changed:
			if err := s.rebuild(ctx); err != nil {
				ctrl.Log.WithName("source").Error(err, "building a snapshot")
			}
		}
	}
}

// poke asks for a rebuild; changes that arrive during one coalesce into the
// next.
func (s *Source) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// rebuild brings the flag snapshots and the engine's snapshot up to date;
// a failure in one does not hold the other back.
func (s *Source) rebuild(ctx context.Context) error {
	flagsErr := s.rebuildFlags(ctx)
	if !s.dirtyGates.Swap(false) {
		return flagsErr
	}
	if err := s.rebuildGates(ctx); err != nil {
		s.dirtyGates.Store(true)
		return errors.Join(flagsErr, err)
	}
	return flagsErr
}

func (s *Source) rebuildGates(ctx context.Context) error {
	var gates waygatev1.RouteGateList
	var policies waygatev1.RateLimitPolicyList
	var namespaces metav1.PartialObjectMetadataList
	namespaces.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	for _, l := range []client.ObjectList{&gates, &policies, &namespaces} {
		if err := s.cache.List(ctx, l); err != nil {
			return err
		}
	}
	envs := make(map[string]string, len(namespaces.Items))
	for _, ns := range namespaces.Items {
		envs[ns.Name] = ns.Labels[gate.EnvironmentLabel]
	}
	snap := gate.NewSnapshot(gate.Objects{RouteGates: gates.Items, Policies: policies.Items, Environments: envs})
	s.engine.Swap(snap)
	if s.OnSnapshot != nil {
		s.OnSnapshot(snap, len(gates.Items)+len(policies.Items))
	}
	return nil
}

// Ready reports whether the first snapshot is in effect.
func (s *Source) Ready() bool { return s.ready.Load() }

// Stale is how long the gate's view may have been behind the API server:
// zero while it answers, else the time since it first failed to.
func (s *Source) Stale() time.Duration { return s.health.Stale() }

// sameGeneration tells whether old and obj are the same generation of an
// object that counts them (FeatureFlags and Segments, not Secrets).
func sameGeneration(old, obj any) bool {
	o, ok1 := old.(client.Object)
	n, ok2 := obj.(client.Object)
	return ok1 && ok2 && n.GetGeneration() != 0 && o.GetGeneration() == n.GetGeneration()
}
