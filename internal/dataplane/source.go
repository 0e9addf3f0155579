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
	// dirtyGates asks for the engine's snapshot to be rebuilt, flagsDirty
	// for the flag snapshots of the namespaces it names.
	dirtyGates atomic.Bool
	flagsMu    sync.Mutex
	flagsDirty map[string]bool
	ready      atomic.Bool
}

// SourceMetrics are told what a Source builds.
type SourceMetrics interface {
	// SnapshotBuilt is told of each snapshot put in effect, built of
	// objects RouteGates and RateLimitPolicies.
	SnapshotBuilt(s *gate.Snapshot, objects int)
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
	s := &Source{engine: engine, Flags: &FlagSet{}, view: view, metrics: metrics}
	s.dirtyGates.Store(true)
	s.flagsDirty = map[string]bool{"": true}
	return s, nil
}

// kinds are what snapshots are built from: the engine's (a change rebuilds
// its snapshot) and the flag snapshots' (a change recompiles the flags of
// its namespace; the operator's status writes recompile nothing).
func (s *Source) kinds() []watch.Kind {
	gates := func(any) { s.dirtyGates.Store(true) }
	flags := func(obj any) {
		// A deleted object may come as its last known state.
		key, _ := toolscache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		ns, _, _ := strings.Cut(key, "/")
		s.markFlags(ns)
	}
	return []watch.Kind{
		{Object: &waygatev1.RouteGate{}, Changed: gates},
		{Object: &waygatev1.RateLimitPolicy{}, Changed: gates},
		{Object: namespaceMeta(), Changed: gates},
		{Object: &waygatev1.FeatureFlag{}, Changed: flags, IgnoreSameGeneration: true},
		{Object: &waygatev1.Segment{}, Changed: flags, IgnoreSameGeneration: true},
		{Object: &corev1.Secret{}, Changed: flags},
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
		if err := s.view.List(ctx, l); err != nil {
			return err
		}
	}
	envs := make(map[string]string, len(namespaces.Items))
	for _, ns := range namespaces.Items {
		envs[ns.Name] = ns.Labels[gate.EnvironmentLabel]
	}
	snap := gate.NewSnapshot(gate.Objects{RouteGates: gates.Items, Policies: policies.Items, Environments: envs})
	s.engine.Swap(snap)
	s.metrics.SnapshotBuilt(snap, len(gates.Items)+len(policies.Items))
	for _, p := range snap.Problems {
		ctrl.Log.WithName("source").Info("left out of the snapshot", "problem", p)
	}
	return nil
}

// Ready reports whether the first snapshot is in effect.
func (s *Source) Ready() bool { return s.ready.Load() }

// Stale is how long the gate's view may have been behind the API server:
// zero while it answers, else the time since it first failed to.
func (s *Source) Stale() time.Duration { return s.view.Stale() }
