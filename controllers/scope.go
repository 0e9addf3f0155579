package controllers

import (
	"context"
	"hash/fnv"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// The indexes of RouteGates and RateLimitPolicies by the route they claim.
// An index keeps a set of objects per value, twice (in the namespace and
// cluster-wide): at a value per route, the sets would cost the cache more
// than the objects. So scopeIndex holds a bucket of the route key, one of
// scopeBuckets per namespace, and a lookup keeps the bucket's objects that
// claim the route (claims); wideIndex holds the service of the
// service-wide objects (route "*") alone, which every route's reconcile
// looks up.
const (
	scopeIndex   = "scope"
	wideIndex    = "wide"
	scopeBuckets = 32
)

// claimOf is the service and route an object of an indexed kind claims.
func claimOf(o client.Object) (waygatev1.ServiceName, waygatev1.RouteKey) {
	switch o := o.(type) {
	case *waygatev1.RouteGate:
		return o.Spec.Service, o.Spec.Route
	case *waygatev1.RateLimitPolicy:
		return o.Spec.Service, o.Spec.Route
	}
	return "", ""
}

// scopeBucket is the bucket of route (or "*") of service.
func scopeBucket(service waygatev1.ServiceName, route waygatev1.RouteKey) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(string(service) + "|" + string(route)))
	return strconv.Itoa(int(h.Sum32() % scopeBuckets))
}

// indexScopes registers scopeIndex and wideIndex for obj's kind.
func indexScopes(mgr ctrl.Manager, obj client.Object) error {
	ctx, idx := context.Background(), mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, obj, scopeIndex, func(o client.Object) []string {
		return []string{scopeBucket(claimOf(o))}
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, obj, wideIndex, func(o client.Object) []string {
		if service, route := claimOf(o); route == waygatev1.AllRoutes {
			return []string{string(service)}
		}
		return nil
	})
}

// claims lists into list the objects of list's kind in ns that claim
// route of service, as the cache holds them: not copied, for reading
// only.
func claims(ctx context.Context, c client.Reader, list client.ObjectList, ns string, service waygatev1.ServiceName, route waygatev1.RouteKey) error {
	sel := client.MatchingFields{scopeIndex: scopeBucket(service, route)}
	if route == waygatev1.AllRoutes {
		sel = client.MatchingFields{wideIndex: string(service)}
	}
	if err := c.List(ctx, list, client.InNamespace(ns), sel, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	objs, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	return meta.SetList(list, slices.DeleteFunc(objs, func(o runtime.Object) bool {
		s, r := claimOf(o.(client.Object))
		return s != service || r != route
	}))
}
