package controllers

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/graph"
	"github.com/waygate-dev/waygate/internal/kube"
)

const (
	// keyIndex indexes FeatureFlags and Segments by the key in effect.
	keyIndex = "key"
	// segmentRefIndex indexes FeatureFlags and Segments by the segment keys
	// their clauses name.
	segmentRefIndex = "segmentRefs"
	// prerequisiteIndex indexes FeatureFlags by their prerequisite flag keys.
	prerequisiteIndex = "prerequisites"
)

// holderByKey lists the objects of list's kind with key in ns and returns the
// one that holds it, or nil when there is none.
func holderByKey[T any, P interface {
	*T
	client.Object
}](ctx context.Context, c client.Reader, list client.ObjectList, items *[]T, ns, key string) (P, error) {
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingFields{keyIndex: key}); err != nil {
		return nil, err
	}
	return kube.Holder[T, P](*items), nil
}

func flagByKey(ctx context.Context, c client.Reader, ns, key string) (*waygatev1.FeatureFlag, error) {
	var list waygatev1.FeatureFlagList
	return holderByKey[waygatev1.FeatureFlag](ctx, c, &list, &list.Items, ns, key)
}

func segmentByKey(ctx context.Context, c client.Reader, ns, key string) (*waygatev1.Segment, error) {
	var list waygatev1.SegmentList
	return holderByKey[waygatev1.Segment](ctx, c, &list, &list.Items, ns, key)
}

// missingSegment returns a message naming the first of keys that no Segment
// in ns holds, or "" when all exist.
func missingSegment(ctx context.Context, c client.Reader, ns string, keys []string) (string, error) {
	for _, k := range keys {
		seg, err := segmentByKey(ctx, c, ns, k)
		if err != nil {
			return "", err
		}
		if seg == nil {
			return fmt.Sprintf("segment %q (named in spec.rules) does not exist in namespace %s; create it or change the clause", k, ns), nil
		}
	}
	return "", nil
}

// segmentRefs returns the segment keys that the in_segment and
// not_in_segment clauses of rules name, in order and without repeats.
func segmentRefs(rules [][]waygatev1.Clause) []string {
	var keys []string
	seen := map[string]bool{}
	for _, clauses := range rules {
		for _, c := range clauses {
			if c.Operator != waygatev1.OperatorInSegment && c.Operator != waygatev1.OperatorNotInSegment {
				continue
			}
			for _, v := range c.Values {
				if !seen[v] {
					seen[v] = true
					keys = append(keys, v)
				}
			}
		}
	}
	return keys
}

// requestsFor lists the objects of list's kind that opts select, as reconcile
// requests.
func requestsFor(ctx context.Context, c client.Reader, list client.ObjectList, opts ...client.ListOption) []reconcile.Request {
	return requests(ctx, list, c.List(ctx, list, opts...))
}

// requests are the objects of list, listed with err, as reconcile
// requests.
func requests(ctx context.Context, list client.ObjectList, err error) []reconcile.Request {
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing dependent objects")
		return nil
	}
	objs, err := meta.ExtractList(list)
	if err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(objs))
	for _, o := range objs {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o.(client.Object))})
	}
	return reqs
}

// indexed selects the objects in ns whose index field has value.
func indexed(ns, field, value string) []client.ListOption {
	return []client.ListOption{client.InNamespace(ns), client.MatchingFields{field: value}}
}

// findCycle follows refs from self (whose key is key) through the objects
// that hold each key, and returns the first cycle back to key, or nil.
func findCycle[T any](self *T, key string, lookup func(string) (*T, error), refs func(*T) []string) ([]string, error) {
	var lookupErr error
	cycle := graph.CycleFrom(key, func(k string) []string {
		o := self
		if k != key {
			var err error
			if o, err = lookup(k); err != nil {
				lookupErr = err
			}
			if o == nil {
				return nil
			}
		}
		return refs(o)
	})
	return cycle, lookupErr
}

// arrow renders a reference chain: a → b → a.
func arrow(keys []string) string { return strings.Join(keys, " → ") }
