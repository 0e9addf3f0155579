package dataplane

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

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
	rest := ctx.Path()[len(ofrepPrefix):]
	nsb, path, _ := bytes.Cut(rest, []byte("/"))
	ns, tail := string(nsb), "/"+string(path)
	n := o.Flags.namespace(ns)
	label := ns
	if n == empty {
		label = unknownNamespace
	}
	defer func() { o.Metrics.ofrep(label, ctx.Response.StatusCode()) }()
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
		o.bulk(ctx, n.snap)
	case strings.HasPrefix(tail, evaluatePath+"/") && len(tail) > len(evaluatePath)+1:
		o.single(ctx, n.snap, tail[len(evaluatePath)+1:])
	default:
		ofrepError(ctx, http.StatusNotFound, ofrepResult{ErrorDetails: "no such OFREP endpoint: " + tail})
	}
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
// is an empty context.
func evaluationContext(ctx *fasthttp.RequestCtx) (map[string]any, error) {
	var req struct {
		Context map[string]any `json:"context"`
	}
	if body := ctx.PostBody(); len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&req); err != nil {
			return nil, err
		}
	}
	return req.Context, nil
}

func (o *OFREP) single(ctx *fasthttp.RequestCtx, snap *flags.Snapshot, key string) {
	values, err := evaluationContext(ctx)
	if err != nil {
		ofrepError(ctx, http.StatusBadRequest, ofrepResult{Key: key, ErrorCode: errorInvalidContext,
			ErrorDetails: `the request body must be {"context": {...}}: ` + err.Error()})
		return
	}
	r := snap.Evaluate(key, flags.NewContext(values))
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

func (o *OFREP) bulk(ctx *fasthttp.RequestCtx, snap *flags.Snapshot) {
	values, err := evaluationContext(ctx)
	if err != nil {
		ofrepError(ctx, http.StatusBadRequest, ofrepResult{ErrorCode: errorInvalidContext,
			ErrorDetails: `the request body must be {"context": {...}}: ` + err.Error()})
		return
	}
	// The answer depends on the flags and the context: the same context
	// against the same flags is not modified.
	canonical, _ := json.Marshal(values)
	sum := sha256.Sum256(append([]byte(snap.Version()+"\n"), canonical...))
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	ctx.Response.Header.Set("ETag", etag)
	if matchesETag(string(ctx.Request.Header.Peek("If-None-Match")), etag) {
		ctx.SetStatusCode(http.StatusNotModified)
		return
	}
	results := snap.EvaluateAll(flags.NewContext(values))
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
