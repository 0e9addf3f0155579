package flags

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/kube"
)

// Definitions are a namespace's flags and segments as the gate serves them
// to in-process evaluators: their specs, and the metadata the engine reads
// (name, UID, generation, creation time).
type Definitions struct {
	Flags    []waygatev1.FeatureFlag `json:"flags"`
	Segments []waygatev1.Segment     `json:"segments"`
}

// maxDepth bounds prerequisite chains and segments within segments. The
// operator rejects cycles; this keeps evaluation finite whatever is stored.
const maxDepth = 10

// Snapshot is the flags and segments of one namespace, compiled: regular
// expressions, numbers, times and versions parsed, targets and long value
// lists in maps, prerequisites and segments linked. It never changes once
// built, so any number of goroutines evaluate it without locks; a newer
// snapshot replaces it whole.
type Snapshot struct {
	flags   map[string]*flag
	keys    []string
	version string
}

type flag struct {
	key        string
	variations []variation
	enabled    bool
	// static: enabled with nothing to evaluate (no prerequisite, target or
	// rule, and one variation for everyone).
	static        bool
	off           int
	prereqs       []prereq
	targets       map[string]map[string]int // kind → key → variation
	rules         []rule
	fallback      serve
	metadata      map[string]any
	parseError    string
	needsKeyError string
}

type variation struct {
	name  string
	value any
	raw   []byte
}

type prereq struct {
	flag      *flag // nil when no flag has the key
	variation string
}

type rule struct {
	clauses []*clause
	serve   serve
}

// serve is one variation, or a rollout when split is set.
type serve struct {
	variation int
	split     []slice
}

// slice is one variation's share of a rollout: the buckets below upTo not
// taken by an earlier slice.
type slice struct {
	upTo      uint32
	variation int
}

type segment struct {
	included, excluded map[string]struct{}
	rules              [][]*clause
}

// Compile builds the snapshot of one namespace's flags and segments. Where
// several objects claim a key, the oldest holds it (as the operator reports).
// A flag that does not compile evaluates to an error saying why (PARSE_ERROR);
// the others are unaffected.
func Compile(featureFlags []waygatev1.FeatureFlag, segments []waygatev1.Segment) *Snapshot {
	segs := map[string]*segment{}
	var segClauses []*clause
	for key, s := range holders(segments) {
		seg := &segment{included: setOf(s.Spec.Included), excluded: setOf(s.Spec.Excluded)}
		for i, r := range s.Spec.Rules {
			cls, _ := compileClauses(r.Clauses, field.NewPath("spec", "rules").Index(i).Child("clauses"))
			seg.rules = append(seg.rules, cls)
			segClauses = append(segClauses, cls...)
		}
		segs[key] = seg
	}
	snap := &Snapshot{flags: map[string]*flag{}}
	held := holders(featureFlags)
	var flagClauses []*clause
	for key, ff := range held {
		f := compileFlag(key, ff)
		for _, r := range f.rules {
			flagClauses = append(flagClauses, r.clauses...)
		}
		snap.flags[key] = f
	}
	for _, c := range append(segClauses, flagClauses...) {
		if c.op != waygatev1.OperatorInSegment && c.op != waygatev1.OperatorNotInSegment {
			continue
		}
		c.segs = make([]*segment, len(c.strs))
		for i, k := range c.strs {
			c.segs[i] = segs[k]
		}
	}
	for key, f := range snap.flags {
		for i, p := range held[key].Spec.Prerequisites {
			f.prereqs[i].flag = snap.flags[string(p.Flag)]
		}
	}
	snap.keys = slices.Sorted(maps.Keys(snap.flags))
	snap.version = version(featureFlags, segments)
	return snap
}

// holders maps each key to the object that holds it.
func holders[T any, P interface {
	*T
	keyed
}](items []T) map[string]P {
	byKey := map[string][]T{}
	for _, it := range items {
		k := P(&it).Key()
		byKey[k] = append(byKey[k], it)
	}
	out := make(map[string]P, len(byKey))
	for k, claims := range byKey {
		out[k] = kube.Holder[T, P](claims)
	}
	return out
}

type keyed interface {
	client.Object
	Key() string
}

func compileFlag(key string, ff *waygatev1.FeatureFlag) *flag {
	spec := &ff.Spec
	f := &flag{key: key, enabled: spec.Enabled, metadata: metadata(ff)}
	var problems []string
	byName := map[string]int{}
	for _, v := range spec.Variations {
		value, err := decodeValue(spec.Type, v.Value.Raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("variation %q: %v", v.Name, err))
		}
		byName[v.Name] = len(f.variations)
		f.variations = append(f.variations, variation{name: v.Name, value: value, raw: v.Value.Raw})
	}
	lookup := func(where, name string) int {
		i, ok := byName[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s names variation %q, which the flag does not have", where, name))
		}
		return i
	}
	serveOf := func(where string, variationName string, rollout waygatev1.Rollout) serve {
		if len(rollout) == 0 {
			return serve{variation: lookup(where, variationName)}
		}
		var s serve
		var upTo uint32
		for _, w := range rollout {
			upTo += uint32(max(w.Weight, 0))
			s.split = append(s.split, slice{upTo: upTo, variation: lookup(where+" rollout", w.Variation)})
		}
		if upTo != buckets {
			problems = append(problems, fmt.Sprintf("%s rollout weights add up to %d, not %d", where, upTo, buckets))
		}
		return s
	}
	f.off = lookup("offVariation", spec.OffVariation)
	f.fallback = serveOf("fallthrough", spec.Fallthrough.Variation, spec.Fallthrough.Rollout)
	for _, p := range spec.Prerequisites {
		f.prereqs = append(f.prereqs, prereq{variation: p.Variation})
	}
	for i, t := range spec.Targets {
		v := lookup(fmt.Sprintf("targets[%d]", i), t.Variation)
		if f.targets == nil {
			f.targets = map[string]map[string]int{}
		}
		kind := t.ContextKind
		if kind == "" {
			kind = DefaultKind
		}
		if f.targets[kind] == nil {
			f.targets[kind] = map[string]int{}
		}
		for _, k := range t.Keys {
			if _, taken := f.targets[kind][k]; !taken {
				f.targets[kind][k] = v
			}
		}
	}
	for i, r := range spec.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		cls, errs := compileClauses(r.Clauses, field.NewPath("spec", "rules").Index(i).Child("clauses"))
		for _, e := range errs {
			problems = append(problems, e.Error())
		}
		f.rules = append(f.rules, rule{clauses: cls, serve: serveOf(where, r.Variation, r.Rollout)})
	}
	f.static = f.enabled && len(f.prereqs) == 0 && len(f.targets) == 0 && len(f.rules) == 0 && f.fallback.split == nil
	if len(problems) > 0 {
		f.parseError = fmt.Sprintf("flag %q cannot be evaluated: %s", key, strings.Join(problems, "; "))
	}
	f.needsKeyError = fmt.Sprintf("flag %q splits contexts by their targeting key: give the context a targetingKey", key)
	return f
}

func compileClauses(clauses []waygatev1.Clause, path *field.Path) ([]*clause, field.ErrorList) {
	var out []*clause
	var errs field.ErrorList
	for i, c := range clauses {
		cl, e := compileClause(c, path.Index(i))
		out = append(out, cl)
		errs = append(errs, e...)
	}
	return out, errs
}

// metadata is the flag metadata OpenFeature returns with each evaluation.
func metadata(ff *waygatev1.FeatureFlag) map[string]any {
	m := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("name", ff.Spec.Name)
	set("description", ff.Spec.Description)
	set("maintainer", ff.Spec.Maintainer)
	set("tags", strings.Join(ff.Spec.Tags, ","))
	if ff.Spec.Temporary {
		m["temporary"] = true
	}
	return m
}

func setOf(keys []string) map[string]struct{} {
	m := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		m[k] = struct{}{}
	}
	return m
}

// version identifies the flags and segments the snapshot was built from:
// their UIDs and generations, so that a status written by the operator
// (which leaves the spec and the generation alone) is no change.
func version(featureFlags []waygatev1.FeatureFlag, segments []waygatev1.Segment) string {
	var ids []string
	for _, f := range featureFlags {
		ids = append(ids, fmt.Sprintf("f/%s/%d", f.UID, f.Generation))
	}
	for _, s := range segments {
		ids = append(ids, fmt.Sprintf("s/%s/%d", s.UID, s.Generation))
	}
	slices.Sort(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(sum[:8])
}

// Version identifies the flags and segments the snapshot holds: snapshots
// of the same objects have the same version.
func (s *Snapshot) Version() string { return s.version }

// Keys are the keys of the snapshot's flags, sorted.
func (s *Snapshot) Keys() []string { return s.keys }

// contains tells whether ctx is a member of the segment: not if its key is
// excluded, if it is included, else if any rule matches.
func (s *segment) contains(ctx *Context, depth int) bool {
	if depth > maxDepth {
		return false
	}
	if _, out := s.excluded[ctx.Key]; out && ctx.Key != "" {
		return false
	}
	if _, in := s.included[ctx.Key]; in && ctx.Key != "" {
		return true
	}
	for _, r := range s.rules {
		if allMatch(r, ctx, depth) {
			return true
		}
	}
	return false
}

func allMatch(clauses []*clause, ctx *Context, depth int) bool {
	for _, c := range clauses {
		if !c.matches(ctx, depth) {
			return false
		}
	}
	return true
}
