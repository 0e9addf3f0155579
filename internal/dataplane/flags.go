package dataplane

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/pkg/flags"
)

// OFREPKeysSecret is the Secret of a namespace that, when it exists, makes
// OFREP ask for an API key: each of its values is one key (name them after
// their clients, to rotate one at a time). Requests must carry one as
// "Authorization: Bearer <key>" or "X-API-Key: <key>".
const OFREPKeysSecret = "waygate-ofrep-keys"

// FlagSet is every namespace's flag snapshot and OFREP keys, replaced whole
// after a change: readers never lock.
type FlagSet struct {
	p atomic.Pointer[map[string]*namespaceFlags]
}

// namespaceFlags is one namespace's flags and, when it has the Secret, the
// SHA-256 sums of its keys (nil: no key needed).
type namespaceFlags struct {
	snap *flags.Snapshot
	keys map[[sha256.Size]byte]struct{}
	// definitions are the flags and segments as DefinitionsPath serves
	// them (JSON), for in-process evaluation.
	definitions []byte
}

// empty serves a namespace with no flags: every key is FLAG_NOT_FOUND.
var empty = &namespaceFlags{snap: flags.Compile(nil, nil), definitions: []byte(`{"flags":[],"segments":[]}`)}

// namespace returns ns's flags (never nil).
func (f *FlagSet) namespace(ns string) *namespaceFlags {
	if m := f.p.Load(); m != nil {
		if n, ok := (*m)[ns]; ok {
			return n
		}
	}
	return empty
}

// Snapshot is ns's flag snapshot.
func (f *FlagSet) Snapshot(ns string) *flags.Snapshot { return f.namespace(ns).snap }

// rebuildFlags compiles every namespace's flags and reads its OFREP keys.
func (s *Source) rebuildFlags(ctx context.Context) error {
	var ffs waygatev1.FeatureFlagList
	var segs waygatev1.SegmentList
	var secrets corev1.SecretList
	for _, l := range []client.ObjectList{&ffs, &segs, &secrets} {
		if err := s.cache.List(ctx, l); err != nil {
			return err
		}
	}
	type objects struct {
		flags []waygatev1.FeatureFlag
		segs  []waygatev1.Segment
	}
	byNS := map[string]*objects{}
	group := func(ns string) *objects {
		if byNS[ns] == nil {
			byNS[ns] = &objects{}
		}
		return byNS[ns]
	}
	for _, f := range ffs.Items {
		g := group(f.Namespace)
		g.flags = append(g.flags, f)
	}
	for _, sg := range segs.Items {
		g := group(sg.Namespace)
		g.segs = append(g.segs, sg)
	}
	out := make(map[string]*namespaceFlags, len(byNS))
	for ns, g := range byNS {
		defs := flags.Definitions{Flags: make([]waygatev1.FeatureFlag, len(g.flags)), Segments: make([]waygatev1.Segment, len(g.segs))}
		for i, f := range g.flags {
			defs.Flags[i] = waygatev1.FeatureFlag{ObjectMeta: definitionMeta(&f.ObjectMeta), Spec: f.Spec}
		}
		for i, sg := range g.segs {
			defs.Segments[i] = waygatev1.Segment{ObjectMeta: definitionMeta(&sg.ObjectMeta), Spec: sg.Spec}
		}
		raw, err := json.Marshal(defs)
		if err != nil {
			return err
		}
		out[ns] = &namespaceFlags{snap: flags.Compile(g.flags, g.segs), definitions: raw}
	}
	for _, sec := range secrets.Items {
		n := out[sec.Namespace]
		if n == nil {
			n = &namespaceFlags{snap: empty.snap, definitions: empty.definitions}
			out[sec.Namespace] = n
		}
		n.keys = map[[sha256.Size]byte]struct{}{}
		for _, v := range sec.Data {
			if len(v) > 0 {
				n.keys[sha256.Sum256(v)] = struct{}{}
			}
		}
	}
	s.Flags.p.Store(&out)
	return nil
}

// definitionMeta is the part of an object's metadata the engine reads
// (the generation, for the snapshot's version).
func definitionMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, UID: m.UID, Generation: m.Generation, CreationTimestamp: m.CreationTimestamp}
}
