package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/apihealth"
	"github.com/waygate-dev/waygate/internal/scheme"
	"github.com/waygate-dev/waygate/pkg/flags"
)

// NewFromCluster returns a provider that watches the FeatureFlags and
// Segments of namespace through the API server with cfg (in a Pod,
// rest.InClusterConfig with a ServiceAccount that may get, list and watch
// featureflags and segments in the namespace). A change is in effect as
// soon as the watch delivers it.
func NewFromCluster(cfg *rest.Config, namespace string) *Provider {
	return newProvider(&clusterSource{cfg: cfg, namespace: namespace})
}

// staleAfter is how long the API server may fail to answer before the
// provider says its flags are stale.
const staleAfter = time.Second

type clusterSource struct {
	cfg       *rest.Config
	namespace string
	cache     cache.Cache
	health    *apihealth.Health
	changed   chan struct{}
	stale     bool
}

func (c *clusterSource) where() string { return "the API server (namespace " + c.namespace + ")" }

func (c *clusterSource) first(ctx context.Context) (*flags.Snapshot, error) {
	// A list first, so that an identity that may not read the flags hears
	// so now rather than after the watch's retries.
	direct, err := client.New(c.cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		return nil, err
	}
	for _, l := range []client.ObjectList{&waygatev1.FeatureFlagList{}, &waygatev1.SegmentList{}} {
		if err := direct.List(ctx, l, client.InNamespace(c.namespace), client.Limit(1)); err != nil {
			return nil, fmt.Errorf("listing %T in %s (the provider's identity needs get, list and watch of featureflags and segments there): %w", l, c.namespace, err)
		}
	}
	cfg, health := apihealth.Watch(c.cfg)
	ca, err := cache.New(cfg, cache.Options{
		Scheme:            scheme.Scheme,
		DefaultNamespaces: map[string]cache.Config{c.namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, err
	}
	c.cache, c.health, c.changed = ca, health, make(chan struct{}, 1)
	for _, obj := range []client.Object{&waygatev1.FeatureFlag{}, &waygatev1.Segment{}} {
		inf, err := ca.GetInformer(ctx, obj)
		if err != nil {
			return nil, err
		}
		poke := func() {
			select {
			case c.changed <- struct{}{}:
			default:
			}
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { poke() }, UpdateFunc: func(any, any) { poke() }, DeleteFunc: func(any) { poke() },
		}); err != nil {
			return nil, err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- ca.Start(ctx) }()
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !ca.WaitForCacheSync(syncCtx) {
		select {
		case err := <-errc:
			return nil, err
		default:
			return nil, fmt.Errorf("the FeatureFlags and Segments of %s were not listed within 30s (can the provider's identity list them?)", c.namespace)
		}
	}
	// The first events are the objects just listed.
	select {
	case <-c.changed:
	default:
	}
	return c.compile(ctx)
}

func (c *clusterSource) next(ctx context.Context) (*flags.Snapshot, error) {
	tick := time.NewTicker(staleAfter / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.changed:
			return c.compile(ctx)
		case <-tick.C:
			if c.health.Stale() >= staleAfter {
				c.stale = true
				return nil, errors.New("the watch of FeatureFlags and Segments is broken")
			}
			if c.stale {
				// Answering again; the watch resumes and reports changes.
				c.stale = false
				return nil, nil
			}
		}
	}
}

func (c *clusterSource) compile(ctx context.Context) (*flags.Snapshot, error) {
	var ffs waygatev1.FeatureFlagList
	var segs waygatev1.SegmentList
	if err := c.cache.List(ctx, &ffs); err != nil {
		return nil, err
	}
	if err := c.cache.List(ctx, &segs); err != nil {
		return nil, err
	}
	return flags.Compile(ffs.Items, segs.Items), nil
}
