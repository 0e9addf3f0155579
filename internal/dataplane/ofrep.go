package dataplane

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/waygate-dev/waygate/pkg/flags"
)

// OFREPPrefix starts the base URL an OpenFeature OFREP provider is given for
// a namespace: <gate>/ns/<namespace>. The provider appends OFREP's fixed
// paths (/ofrep/v1/evaluate/flags[/<key>], /ofrep/v1/configuration).
const OFREPPrefix = "/ns/"

// OFREP serves the OpenFeature Remote Evaluation Protocol: single and bulk
// evaluation of a namespace's flags, with the flag engine, from the flag
// snapshots the source keeps.
type OFREP struct {
	Flags   *FlagSet
	Metrics *Metrics
	// Limits bound what requests may cost; a zero field is no limit (Run
	// gives zero fields their default).
	Limits OFREPLimits

	inFlight atomic.Int64
}

// OFREPLimits bound what OFREP requests may cost the gate, which answers
// forward-auth in the same process: a request's memory is bounded by the
// body cap (a bulk evaluation at the 64 KiB cap allocates about 0.6 MB,
// mostly decoding), and all of them by MaxInFlight of those.
type OFREPLimits struct {
	// MaxBodyBytes is the largest body read (the HTTP server enforces it;
	// larger ones are answered 413).
	MaxBodyBytes int
	// MaxInFlight is how many OFREP requests are answered at once; more
	// are answered 429 with Retry-After.
	MaxInFlight int
	// MaxConnections is how many connections the OFREP server serves at
	// once when it has its own listener (each may hold a body being read);
	// more are refused with 503.
	MaxConnections int
	// MaxAttributes is how many values the context may hold in all
	// (members of its objects and elements of its lists, nested ones
	// included); MaxDepth how deeply its objects and lists nest (a flat
	// context is 1); MaxStringBytes how long one key, string or number may
	// be, as written in the body. Beyond them: 400 INVALID_CONTEXT.
	MaxAttributes, MaxDepth, MaxStringBytes int
}

// DefaultOFREPLimits fit any real evaluation context: OFREP contexts are a
// targeting key and a few flat attributes.
var DefaultOFREPLimits = OFREPLimits{
	MaxBodyBytes:   64 << 10,
	MaxInFlight:    64,
	MaxConnections: 512,
	MaxAttributes:  256,
	MaxDepth:       4,
	MaxStringBytes: 4 << 10,
}

// orDefaults is l with its zero fields set to their default.
func (l OFREPLimits) orDefaults() OFREPLimits {
	d := DefaultOFREPLimits
	return OFREPLimits{
		MaxBodyBytes: cmp.Or(l.MaxBodyBytes, d.MaxBodyBytes), MaxInFlight: cmp.Or(l.MaxInFlight, d.MaxInFlight),
		MaxConnections: cmp.Or(l.MaxConnections, d.MaxConnections), MaxAttributes: cmp.Or(l.MaxAttributes, d.MaxAttributes),
		MaxDepth: cmp.Or(l.MaxDepth, d.MaxDepth), MaxStringBytes: cmp.Or(l.MaxStringBytes, d.MaxStringBytes),
	}
}

// maxContextDepth bounds MaxDepth: the scan keeps the kind of each open
// object or list in the bits of a uint64.
const maxContextDepth = 32

// Validate says which limit is out of range, naming its flag.
func (l OFREPLimits) Validate() error {
	var errs []error
	for _, c := range []struct {
		flag          string
		value, lo, hi int
	}{
		{"--ofrep-max-body-bytes", l.MaxBodyBytes, 1 << 10, 16 << 20},
		{"--ofrep-max-in-flight", l.MaxInFlight, 1, 1 << 16},
		{"--ofrep-max-connections", l.MaxConnections, 1, 1 << 20},
		{"--ofrep-max-context-attributes", l.MaxAttributes, 1, 1 << 20},
		{"--ofrep-max-context-depth", l.MaxDepth, 1, maxContextDepth},
		{"--ofrep-max-string-bytes", l.MaxStringBytes, 16, 16 << 20},
	} {
		if c.value < c.lo || c.value > c.hi {
			errs = append(errs, fmt.Errorf("%s=%d: give a value from %d to %d", c.flag, c.value, c.lo, c.hi))
		}
	}
	return errors.Join(errs...)
}

var ofrepPrefix = []byte(OFREPPrefix)

// The OFREP paths after <prefix><namespace>, and Waygate's own.
const (
	evaluatePath      = "/ofrep/v1/evaluate/flags"
	configurationPath = "/ofrep/v1/configuration"
	// DefinitionsPath serves the namespace's flags and segments
	// (Definitions) to in-process evaluators such as the Go provider, with
	// an ETag. They name the context keys of targets and segments, so it
	// answers only in namespaces that ask for an API key.
	DefinitionsPath = "/waygate/v1/flags"
)

// ofrepResult is an evaluation as OFREP writes it: evaluationSuccess, or
// evaluationFailure / flagNotFound (errorCode set).
type ofrepResult struct {
	Key          string          `json:"key"`
	Value        json.RawMessage `json:"value,omitempty"`
	Reason       flags.Reason    `json:"reason,omitempty"`
	Variant      string          `json:"variant,omitempty"`
	ErrorCode    flags.ErrorCode `json:"errorCode,omitempty"`
	ErrorDetails string          `json:"errorDetails,omitempty"`
	Metadata     map[string]any  `json:"metadata,omitempty"`
}

func toOFREP(r *flags.Result) ofrepResult {
	if r.ErrorCode != "" {
		return ofrepResult{Key: r.Key, ErrorCode: r.ErrorCode, ErrorDetails: r.ErrorMessage}
	}
	return ofrepResult{Key: r.Key, Value: r.Raw, Reason: r.Reason, Variant: r.Variant, Metadata: r.Metadata}
}

// errorInvalidContext is OFREP's code for a request whose context cannot
// be read.
const errorInvalidContext flags.ErrorCode = "INVALID_CONTEXT"

// Handle serves one request under OFREPPrefix.
func (o *OFREP) Handle(ctx *fasthttp.RequestCtx) {
	ns, tail, n, label := o.route(ctx)
	defer func() { o.count(label, ctx.Response.StatusCode()) }()
	if limit := o.Limits.MaxInFlight; limit > 0 {
		if o.inFlight.Add(1) > int64(limit) {
			o.inFlight.Add(-1)
			// OFREP's answer to rate limiting; a second lets the requests in
			// flight (microseconds each) finish.
			ctx.Response.Header.Set("Retry-After", "1")
			ofrepError(ctx, http.StatusTooManyRequests, ofrepResult{ErrorDetails: fmt.Sprintf(
				"the gate is answering %d OFREP requests already (--ofrep-max-in-flight): retry after 1 second", limit)})
			return
		}
		defer o.inFlight.Add(-1)
	}
	if n.keys != nil && !authorized(ctx, n.keys) {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="waygate"`)
		ofrepError(ctx, http.StatusUnauthorized, ofrepResult{ErrorDetails: "namespace " + ns + " asks for an API key (Secret " + OFREPKeysSecret +
			"): send one as Authorization: Bearer <key> or X-API-Key: <key>"})
		return
	}
	switch {
	case ns == "":
		ofrepError(ctx, http.StatusNotFound, ofrepResult{ErrorDetails: "give the OFREP provider the base URL <gate>" + OFREPPrefix + "<namespace>"})
	case tail == configurationPath && ctx.IsGet():
		o.configuration(ctx)
	case tail == DefinitionsPath && ctx.IsGet():
		o.definitions(ctx, n)
	case !strings.HasPrefix(tail, evaluatePath):
		ofrepError(ctx, http.StatusNotFound, ofrepResult{ErrorDetails: "no such OFREP endpoint: " + tail})
	case !ctx.IsPost():
		ctx.Response.Header.Set("Allow", http.MethodPost)
		ofrepError(ctx, http.StatusMethodNotAllowed, ofrepResult{ErrorDetails: "OFREP evaluations are POSTed"})
	case tail == evaluatePath:
		o.bulk(ctx, n)
	case strings.HasPrefix(tail, evaluatePath+"/") && len(tail) > len(evaluatePath)+1:
		o.single(ctx, n, tail[len(evaluatePath)+1:])
	default:
		ofrepError(ctx, http.StatusNotFound, ofrepResult{ErrorDetails: "no such OFREP endpoint: " + tail})
	}
}

// route reads the namespace and the path after it, and the metrics label
// of the namespace.
func (o *OFREP) route(ctx *fasthttp.RequestCtx) (ns, tail string, n *namespaceFlags, label string) {
	// The cleaned path: the raw one that brought the request here may
	// clean to something shorter ("/ns/.."), which names no namespace.
	rest, _ := bytes.CutPrefix(ctx.Path(), ofrepPrefix)
	nsb, path, _ := bytes.Cut(rest, []byte("/"))
	ns, tail = string(nsb), "/"+string(path)
	n, label = o.Flags.namespace(ns), ns
	if n == empty {
		label = unknownNamespace
	}
	return ns, tail, n, label
}

func (o *OFREP) count(label string, status int) {
	if o.Metrics != nil {
		o.Metrics.ofrep(label, status)
	}
}

// BodyTooLarge answers a request whose body is over MaxBodyBytes, which
// the server refused to read.
func (o *OFREP) BodyTooLarge(ctx *fasthttp.RequestCtx) {
	_, _, _, label := o.route(ctx)
	ofrepError(ctx, http.StatusRequestEntityTooLarge, ofrepResult{ErrorDetails: fmt.Sprintf(
		"the request body is larger than %d bytes, the gate's limit for OFREP (--ofrep-max-body-bytes): send a smaller evaluation context", o.Limits.MaxBodyBytes)})
	o.count(label, http.StatusRequestEntityTooLarge)
}

// authorized tells whether the request carries one of keys.
func authorized(ctx *fasthttp.RequestCtx, keys map[[sha256.Size]byte]struct{}) bool {
	h := &ctx.Request.Header
	key := h.Peek("X-API-Key")
	if auth := h.Peek("Authorization"); len(key) == 0 && len(auth) > 7 && strings.EqualFold(string(auth[:7]), "bearer ") {
		key = auth[7:]
	}
	if len(key) == 0 {
		return false
	}
	_, ok := keys[sha256.Sum256(bytes.TrimSpace(key))]
	return ok
}

// evaluationContext reads the request's {"context": {...}}; an empty body
// is an empty context. The body is scanned against the limits before it is
// decoded, so a context over them costs no more than the scan.
func (o *OFREP) evaluationContext(ctx *fasthttp.RequestCtx) (map[string]any, error) {
	var req struct {
		Context map[string]any `json:"context"`
	}
	if body := ctx.PostBody(); len(bytes.TrimSpace(body)) > 0 {
		if err := o.Limits.checkContext(body); err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&req); err != nil {
			return nil, fmt.Errorf(`the request body must be {"context": {...}}: %w`, err)
		}
	}
	return req.Context, nil
}

// contextLimitError is a context over one of the limits.
type contextLimitError struct{ msg string }

func (e *contextLimitError) Error() string { return e.msg }

// jsonDelimiter tells which bytes end a number or literal.
var jsonDelimiter = func() (d [256]bool) {
	for _, c := range []byte(" \t\n\r,:[]{}\"") {
		d[c] = true
	}
	return d
}()

// checkContext scans body, a JSON {"context": {...}}, and tells whether the
// context stays within l, building nothing: depth, values counted and
// token lengths are known byte by byte. A body that is not JSON passes (the
// decoder then says what is wrong with it); as the scan reads any JSON
// value, a value beside the context counts as if it were in it.
func (l *OFREPLimits) checkContext(body []byte) error {
	// The body's own object is level 1 and the context level 2, so the
	// context's depth is the level less one. Bit d of objects tells whether
	// the open value at level d is an object (else a list).
	var (
		level, values int
		objects       uint64
		expectKey     bool
	)
	maxLevel := min(l.MaxDepth, maxContextDepth) + 1
	inContext := func() bool { return level >= 2 }
	isObject := func() bool { return level > 0 && objects&(1<<level) != 0 }
	// counted counts a value that starts here: a member of an object is
	// counted at its key, an element of a list where it starts.
	counted := func(key bool) error {
		if !inContext() || key != isObject() {
			return nil
		}
		if values++; l.MaxAttributes > 0 && values > l.MaxAttributes {
			return &contextLimitError{fmt.Sprintf("the evaluation context holds more than %d values (its attributes, nested ones and list elements; --ofrep-max-context-attributes): send only the attributes your flags use", l.MaxAttributes)}
		}
		return nil
	}
	tooLong := func(n int) error {
		if inContext() && l.MaxStringBytes > 0 && n > l.MaxStringBytes {
			return &contextLimitError{fmt.Sprintf("the evaluation context has a key or value of %d bytes, longer than %d (--ofrep-max-string-bytes): send shorter values", n, l.MaxStringBytes)}
		}
		return nil
	}
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case ' ', '\t', '\n', '\r':
		case ':':
			expectKey = false
		case ',':
			expectKey = isObject()
		case '{', '[':
			if err := counted(false); err != nil {
				return err
			}
			if level++; level > maxLevel {
				return &contextLimitError{fmt.Sprintf("the evaluation context nests objects and lists deeper than %d levels (--ofrep-max-context-depth): send a flatter context", l.MaxDepth)}
			}
			objects &^= 1 << level
			if c == '{' {
				objects |= 1 << level
			}
			expectKey = c == '{'
		case '}', ']':
			if level == 0 {
				return nil // not JSON: the decoder says so
			}
			level--
			expectKey = false
		case '"':
			end := i + 1
			for ; end < len(body) && body[end] != '"'; end++ {
				if body[end] == '\\' {
					end++
				}
			}
			if end >= len(body) {
				return nil // an unterminated string: the decoder says so
			}
			if err := tooLong(end - i - 1); err != nil {
				return err
			}
			if err := counted(expectKey); err != nil {
				return err
			}
			i = end
		default: // a number, true, false or null (or not JSON)
			end := i
			for end < len(body) && !jsonDelimiter[body[end]] {
				end++
			}
			if err := tooLong(end - i); err != nil {
				return err
			}
			if err := counted(false); err != nil {
				return err
			}
			i = end - 1
		}
	}
	return nil
}

func (o *OFREP) single(ctx *fasthttp.RequestCtx, n *namespaceFlags, key string) {
	var values map[string]any
	// A namespace without flags answers FLAG_NOT_FOUND to every context:
	// its body is not read.
	if n != empty {
		var err error
		if values, err = o.evaluationContext(ctx); err != nil {
			ofrepError(ctx, http.StatusBadRequest, ofrepResult{Key: key, ErrorCode: errorInvalidContext, ErrorDetails: err.Error()})
			return
		}
	}
	r := n.snap.Evaluate(key, flags.NewContext(values))
	status := http.StatusOK
	switch r.ErrorCode {
	case "":
	case flags.ErrorFlagNotFound:
		status = http.StatusNotFound
	default:
		status = http.StatusBadRequest
	}
	writeJSON(ctx, status, toOFREP(&r))
}

func (o *OFREP) bulk(ctx *fasthttp.RequestCtx, n *namespaceFlags) {
	// The answer depends on the flags and the context: the same context
	// against the same flags is not modified. A namespace without flags
	// answers none to every context: its body is not read.
	var values map[string]any
	var canonical []byte
	if n != empty {
		var err error
		if values, err = o.evaluationContext(ctx); err != nil {
			ofrepError(ctx, http.StatusBadRequest, ofrepResult{ErrorCode: errorInvalidContext, ErrorDetails: err.Error()})
			return
		}
		canonical, _ = json.Marshal(values)
	}
	sum := sha256.Sum256(append([]byte(n.snap.Version()+"\n"), canonical...))
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	ctx.Response.Header.Set("ETag", etag)
	if matchesETag(string(ctx.Request.Header.Peek("If-None-Match")), etag) {
		ctx.SetStatusCode(http.StatusNotModified)
		return
	}
	results := n.snap.EvaluateAll(flags.NewContext(values))
	out := struct {
		Flags []ofrepResult `json:"flags"`
	}{Flags: make([]ofrepResult, len(results))}
	for i := range results {
		out.Flags[i] = toOFREP(&results[i])
	}
	writeJSON(ctx, http.StatusOK, out)
}

// definitions serves the namespace's flags and segments, 304 while they
// are those the request's If-None-Match names.
func (o *OFREP) definitions(ctx *fasthttp.RequestCtx, n *namespaceFlags) {
	if n.keys == nil {
		ofrepError(ctx, http.StatusForbidden, ofrepResult{ErrorDetails: "flag definitions name the context keys of targets and segments: " +
			"they are served only in namespaces that ask for an API key (create the Secret " + OFREPKeysSecret + ")"})
		return
	}
	etag := `"` + n.snap.Version() + `"`
	ctx.Response.Header.Set("ETag", etag)
	if matchesETag(string(ctx.Request.Header.Peek("If-None-Match")), etag) {
		ctx.SetStatusCode(http.StatusNotModified)
		return
	}
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetBody(n.definitions)
}

// matchesETag tells whether an If-None-Match header names etag.
func matchesETag(header, etag string) bool {
	for c := range strings.SplitSeq(header, ",") {
		c = strings.TrimPrefix(strings.TrimSpace(c), "W/")
		if c == etag || c == "*" {
			return true
		}
	}
	return false
}

// configuration is OFREP's optional provider configuration: the gate
// evaluates every type, and a bulk poll is cheap.
func (o *OFREP) configuration(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, http.StatusOK, map[string]any{
		"name": "waygate",
		"capabilities": map[string]any{
			"cacheInvalidation": map[string]any{"polling": map[string]any{"enabled": true, "minPollingIntervalMs": 1000}},
			"flagEvaluation":    map[string]any{"supportedTypes": []string{"int", "float", "string", "boolean", "object"}},
		},
	})
}

func ofrepError(ctx *fasthttp.RequestCtx, status int, r ofrepResult) {
	if r.Key == "" && r.ErrorCode == "" {
		// generalErrorResponse: errorDetails only.
		writeJSON(ctx, status, map[string]string{"errorDetails": r.ErrorDetails})
		return
	}
	writeJSON(ctx, status, r)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"errorDetails":"encoding the answer failed"}`)
	}
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(body)
}
