package dataplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

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

// markFlags asks for the flags of namespaces to be compiled at the next
// rebuild.
func (s *Source) markFlags(namespaces ...string) { s.flagsDirty.mark(namespaces...) }

// rebuildFlags compiles the flags and reads the OFREP keys of the
// namespaces where something changed (of every namespace at the start),
// and keeps the others' as they are. A namespace that fails keeps its last
// snapshot and stays dirty for the next pass; the others are put in effect.
func (s *Source) rebuildFlags(ctx context.Context) error {
	dirty := s.flagsDirty.take()
	if len(dirty) == 0 {
		return nil
	}
	var old map[string]*namespaceFlags
	if p := s.Flags.p.Load(); p != nil {
		old = *p
	}
	out := map[string]*namespaceFlags{}
	if !dirty[""] {
		maps.Copy(out, old)
	}
	if dirty[""] {
		// Every namespace that has one of the three kinds.
		dirty = map[string]bool{}
		var ffs waygatev1.FeatureFlagList
		var segs waygatev1.SegmentList
		var secrets corev1.SecretList
		for _, l := range []client.ObjectList{&ffs, &segs, &secrets} {
			if err := s.view.List(ctx, l); err != nil {
				s.markFlags("")
				s.view.Poke()
				return err
			}
		}
		for _, f := range ffs.Items {
			dirty[f.Namespace] = true
		}
		for _, sg := range segs.Items {
			dirty[sg.Namespace] = true
		}
		for _, sec := range secrets.Items {
			dirty[sec.Namespace] = true
		}
	}
	failed, err := compileDirty(dirty, old, out, func(ns string) (*namespaceFlags, error) {
		s.metrics.FlagsCompiled()
		return s.compileNamespace(ctx, ns)
	})
	s.Flags.p.Store(&out)
	if len(failed) > 0 {
		// Tried again after a pause, not at once: a failure that lasts
		// must not keep the source compiling in a loop.
		s.markFlags(failed...)
		time.AfterFunc(retryFlagsAfter, s.view.Poke)
	}
	return err
}

// retryFlagsAfter is how long namespaces whose flags failed to compile wait
// to be tried again.
const retryFlagsAfter = time.Second

// compileDirty compiles every namespace of dirty into out (deleting those
// with nothing left); one that fails keeps its snapshot of old, and is
// returned with the others that failed.
func compileDirty(dirty map[string]bool, old, out map[string]*namespaceFlags, compile func(ns string) (*namespaceFlags, error)) (failed []string, err error) {
	var errs []error
	for ns := range dirty {
		n, err := compile(ns)
		switch {
		case err != nil:
			failed, errs = append(failed, ns), append(errs, fmt.Errorf("compiling the flags of namespace %s (retried at the next pass): %w", ns, err))
			if n, ok := old[ns]; ok {
				out[ns] = n
			}
		case n == nil:
			delete(out, ns)
		default:
			out[ns] = n
		}
	}
	return failed, errors.Join(errs...)
}

// compileNamespace compiles ns's flags and reads its OFREP keys; nil when
// it has no flag, segment or key Secret.
func (s *Source) compileNamespace(ctx context.Context, ns string) (*namespaceFlags, error) {
	var ffs waygatev1.FeatureFlagList
	var segs waygatev1.SegmentList
	var secrets corev1.SecretList
	for _, l := range []client.ObjectList{&ffs, &segs, &secrets} {
		if err := s.view.List(ctx, l, client.InNamespace(ns)); err != nil {
			return nil, err
		}
	}
	if len(ffs.Items)+len(segs.Items)+len(secrets.Items) == 0 {
		return nil, nil
	}
	defs := flags.Definitions{Flags: make([]waygatev1.FeatureFlag, len(ffs.Items)), Segments: make([]waygatev1.Segment, len(segs.Items))}
	for i, f := range ffs.Items {
		defs.Flags[i] = waygatev1.FeatureFlag{ObjectMeta: definitionMeta(&f.ObjectMeta), Spec: f.Spec}
	}
	for i, sg := range segs.Items {
		defs.Segments[i] = waygatev1.Segment{ObjectMeta: definitionMeta(&sg.ObjectMeta), Spec: sg.Spec}
	}
	raw, err := json.Marshal(defs)
	if err != nil {
		return nil, err
	}
	n := &namespaceFlags{snap: flags.Compile(ffs.Items, segs.Items), definitions: raw}
	for _, sec := range secrets.Items {
		n.keys = map[[sha256.Size]byte]struct{}{}
		for _, v := range sec.Data {
			// As requests' keys are: a value written from a file
			// (kubectl create secret --from-file) ends in a newline.
			if v = bytes.TrimSpace(v); len(v) > 0 {
				n.keys[sha256.Sum256(v)] = struct{}{}
			}
		}
	}
	return n, nil
}

// definitionMeta is the part of an object's metadata the engine reads
// (the generation, for the snapshot's version).
func definitionMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, UID: m.UID, Generation: m.Generation, CreationTimestamp: m.CreationTimestamp}
}
