package flags

// Reason says why an evaluation gave its value, as OpenFeature names it.
type Reason string

// The reasons the engine gives.
const (
	// ReasonStatic: an enabled flag with nothing to evaluate.
	ReasonStatic Reason = "STATIC"
	// ReasonTargetingMatch: an individual target or a rule.
	ReasonTargetingMatch Reason = "TARGETING_MATCH"
	// ReasonSplit: the fallthrough's rollout chose the variation.
	ReasonSplit Reason = "SPLIT"
	// ReasonDisabled: the flag is disabled, or a prerequisite failed; the off
	// variation.
	ReasonDisabled Reason = "DISABLED"
	// ReasonDefault: no target or rule matched; the fallthrough variation.
	ReasonDefault Reason = "DEFAULT"
	// ReasonError: no value; ErrorCode says why.
	ReasonError Reason = "ERROR"
)

// ErrorCode says why an evaluation failed, as OpenFeature names it.
type ErrorCode string

// The error codes the engine gives. TYPE_MISMATCH is for the caller to
// give (the OpenFeature provider does): the engine does not know the type
// asked for.
const (
	ErrorFlagNotFound        ErrorCode = "FLAG_NOT_FOUND"
	ErrorTargetingKeyMissing ErrorCode = "TARGETING_KEY_MISSING"
	ErrorParse               ErrorCode = "PARSE_ERROR"
	ErrorGeneral             ErrorCode = "GENERAL"
)

// Result is one evaluation.
type Result struct {
	Key string
	// Value is the variation's value: bool, string, int64, float64, or
	// what encoding/json decodes for json flags; nil on error. Raw is the
	// same as JSON. Both are shared: do not modify them.
	Value any
	Raw   []byte
	// Variant is the name of the variation served.
	Variant      string
	Reason       Reason
	ErrorCode    ErrorCode
	ErrorMessage string
	// Metadata is the flag's metadata (name, description, maintainer, tags,
	// temporary), shared: do not modify it.
	Metadata map[string]any
}

// notFound is the message of FLAG_NOT_FOUND: one string, so that a miss
// allocates nothing.
const notFound = "no flag has this key in this namespace"

// Evaluate evaluates the flag key for ctx. It takes no lock and, for flags
// whose clauses compare strings, numbers and segments, allocates nothing.
func (s *Snapshot) Evaluate(key string, ctx *Context) Result {
	f, ok := s.flags[key]
	if !ok {
		return Result{Key: key, Reason: ReasonError, ErrorCode: ErrorFlagNotFound, ErrorMessage: notFound}
	}
	return f.evaluate(ctx, 0)
}

// EvaluateAll evaluates every flag of the snapshot for ctx, in key order.
func (s *Snapshot) EvaluateAll(ctx *Context) []Result {
	out := make([]Result, len(s.keys))
	for i, k := range s.keys {
		out[i] = s.flags[k].evaluate(ctx, 0)
	}
	return out
}

// evaluate follows the reference's order: disabled → prerequisites →
// individual targets → the first matching rule → the fallthrough.
func (f *flag) evaluate(ctx *Context, depth int) Result {
	switch {
	case f.parseError != "":
		return f.failure(ErrorParse, f.parseError)
	case depth > maxDepth:
		return f.failure(ErrorGeneral, "prerequisites nest deeper than 10 flags (a cycle?)")
	case !f.enabled:
		return f.result(f.off, ReasonDisabled)
	case f.static:
		return f.result(f.fallback.variation, ReasonStatic)
	}
	for _, p := range f.prereqs {
		if p.flag == nil || !p.flag.enabled {
			return f.result(f.off, ReasonDisabled)
		}
		r := p.flag.evaluate(ctx, depth+1)
		if r.ErrorCode == ErrorGeneral {
			return r
		}
		if r.ErrorCode != "" || r.Variant != p.variation {
			return f.result(f.off, ReasonDisabled)
		}
	}
	if f.targets != nil && ctx.Key != "" {
		if v, ok := f.targets[ctx.kind()][ctx.Key]; ok {
			return f.result(v, ReasonTargetingMatch)
		}
	}
	for _, r := range f.rules {
		if allMatch(r.clauses, ctx, 0) {
			return f.serve(r.serve, ctx, ReasonTargetingMatch)
		}
	}
	reason := ReasonDefault
	if f.fallback.split != nil {
		reason = ReasonSplit
	}
	return f.serve(f.fallback, ctx, reason)
}

// serve gives s's variation, choosing by ctx's bucket for a rollout.
func (f *flag) serve(s serve, ctx *Context, reason Reason) Result {
	if s.split == nil {
		return f.result(s.variation, reason)
	}
	if ctx.Key == "" {
		return f.failure(ErrorTargetingKeyMissing, f.needsKeyError)
	}
	b := Bucket(f.key, ctx.kind(), ctx.Key)
	for _, sl := range s.split {
		if b < sl.upTo {
			return f.result(sl.variation, reason)
		}
	}
	return f.result(s.split[len(s.split)-1].variation, reason)
}

func (f *flag) result(v int, reason Reason) Result {
	va := &f.variations[v]
	return Result{Key: f.key, Value: va.value, Raw: va.raw, Variant: va.name, Reason: reason, Metadata: f.metadata}
}

func (f *flag) failure(code ErrorCode, msg string) Result {
	return Result{Key: f.key, Reason: ReasonError, ErrorCode: code, ErrorMessage: msg, Metadata: f.metadata}
}

// buckets is the number of rollout buckets: weights are in thousandths of a
// percent.
const buckets = 100_000

// Bucket is the rollout bucket, 0 to 99,999, of a context of kind with key
// for flagKey: the 64-bit FNV-1a hash of "flagKey:kind:key", its bits
// mixed by the SplitMix64 finaliser, modulo 100,000. It depends on nothing
// else, so every replica, restart and SDK that computes it agrees. A rollout
// gives each of its variations, in order, the next weight's worth of
// buckets: raising the first variation's weight keeps everyone who had it.
func Bucket(flagKey, kind, key string) uint32 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, s := range [...]string{flagKey, ":", kind, ":", key} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return uint32(h % buckets)
}
