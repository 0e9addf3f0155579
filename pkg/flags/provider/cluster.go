package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/scheme"
	"github.com/waygate-dev/waygate/internal/watch"
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
	view      *watch.View
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
	if c.view, err = watch.New(c.cfg, cache.Options{
		Scheme:            scheme.Scheme,
		DefaultNamespaces: map[string]cache.Config{c.namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	}); err != nil {
		return nil, err
	}
	// The operator's status writes change no flag.
	if err := c.view.Start(ctx, watch.Kind{Object: &waygatev1.FeatureFlag{}, IgnoreSameGeneration: true}, watch.Kind{Object: &waygatev1.Segment{}, IgnoreSameGeneration: true}); err != nil {
		return nil, err
	}
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.view.Synced(syncCtx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("the FeatureFlags and Segments of %s were not listed within 30s (can the provider's identity list them?)", c.namespace)
		}
		return nil, err
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
		case <-c.view.Changed():
			return c.compile(ctx)
		case <-tick.C:
			if c.view.Stale() >= staleAfter {
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
	if err := c.view.List(ctx, &ffs); err != nil {
		return nil, err
	}
	if err := c.view.List(ctx, &segs); err != nil {
		return nil, err
	}
	return flags.Compile(ffs.Items, segs.Items), nil
}
