package dataplane

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/waygate-dev/waygate/internal/gate"
)

// The forward-auth endpoints.
const (
	// CheckPrefix is followed by <namespace>/<service> (or only
	// <namespace>, for routes gated for no service): the auth URL a gateway
	// is configured with.
	CheckPrefix = "/v1/check/"
	// RefusalPath renders the refusal an nginx auth_request could not pass
	// on (see RefusalHeader).
	RefusalPath = "/v1/refusal"
	// RefusalHeader carries a whole refusal (status, headers, body) in a
	// header. nginx's auth_request passes only 401 and 403 on, and never a
	// body; so when a request comes the nginx way (X-Original-URI) a refusal
	// is answered 403 with this header, which nginx's error_page location
	// hands back to RefusalPath to answer the client with the real status,
	// headers and body.
	RefusalHeader = "X-Waygate-Refusal"
)

// ForwardAuth answers HTTP forward-auth requests: nginx auth_request and
// ingress-nginx auth-url (X-Original-Method, X-Original-URI), Traefik
// ForwardAuth and Caddy forward_auth (X-Forwarded-Method, X-Forwarded-Uri).
// It runs on fasthttp: a forward-auth request is tiny and the gateway keeps
// connections open, so the per-request cost of net/http (about half the
// requests per second here) would be most of the gate's.
type ForwardAuth struct {
	Engine  *gate.Engine
	Metrics *Metrics
}

var (
	checkPrefix = []byte(CheckPrefix)
	refusalPath = []byte(RefusalPath)
)

// Handle serves one request.
func (f *ForwardAuth) Handle(ctx *fasthttp.RequestCtx) {
	p := ctx.Path()
	switch {
	case bytes.HasPrefix(p, checkPrefix):
		f.check(ctx, p[len(checkPrefix):])
	case bytes.Equal(p, refusalPath):
		renderRefusal(ctx)
	default:
		fail(ctx, http.StatusNotFound, "NOT_FOUND", "no such endpoint: gateways ask "+CheckPrefix+"<namespace>/<service>, OpenFeature OFREP providers "+OFREPPrefix+"<namespace>/ofrep/v1/...")
	}
}

func (f *ForwardAuth) check(ctx *fasthttp.RequestCtx, scope []byte) {
	start := time.Now()
	ns, service, _ := bytes.Cut(scope, []byte("/"))
	h := &ctx.Request.Header
	uri, method := h.Peek("X-Forwarded-Uri"), h.Peek("X-Forwarded-Method")
	nginx := false
	if len(uri) == 0 {
		uri, method = h.Peek("X-Original-URI"), h.Peek("X-Original-Method")
		nginx = len(uri) > 0
	}
	if len(ns) == 0 || len(uri) == 0 {
		fail(ctx, http.StatusBadRequest, "BAD_REQUEST",
			"the gate needs "+CheckPrefix+"<namespace>/<service> and the request's URI in X-Forwarded-Uri or X-Original-URI: configure the gateway as docs/gateways.md shows")
		return
	}
	if len(method) == 0 {
		method = ctx.Method()
	}
	req := gate.Request{
		Namespace: str(ns), Service: str(service), Method: str(method),
		Path:   gate.NormalizePath(str(uri)),
		Header: fastHeader{h},
		Peer:   peerAddr(ctx.RemoteAddr()),
	}
	d := f.Engine.Decide(ctx, &req)
	respond(ctx, &d, nginx)
	f.Metrics.observe(ProtocolForwardAuth, f.Engine.Snapshot(), req.Namespace, d.Verdict, time.Since(start))
}

// respond writes d: 200 with the headers the client should see, or the
// refusal (for nginx, 403 carrying it in RefusalHeader).
func respond(ctx *fasthttp.RequestCtx, d *gate.Decision, nginx bool) {
	rh := &ctx.Response.Header
	d.Headers(rh.Set)
	if !d.Refused() {
		return
	}
	body := d.Body()
	rh.SetContentType("application/json")
	ctx.SetBody(body)
	if !nginx {
		ctx.SetStatusCode(d.Status())
		return
	}
	r := refusal{Status: d.Status(), Headers: map[string]string{}, Body: body}
	d.Headers(func(k, v string) { r.Headers[k] = v })
	token, _ := json.Marshal(r)
	rh.Set(RefusalHeader, base64.RawURLEncoding.EncodeToString(token))
	ctx.SetStatusCode(http.StatusForbidden)
}

// refusal is what RefusalHeader carries.
type refusal struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body"`
}

// refusalHeaders are the headers a rendered refusal may set: whatever else
// a token names is dropped, so RefusalPath cannot be made to answer with
// any header.
var refusalHeaders = map[string]bool{"Retry-After": true, "X-Ratelimit-Limit": true, "X-Ratelimit-Remaining": true, "X-Ratelimit-Reset": true}

// renderRefusal answers with the refusal in the request's RefusalHeader.
func renderRefusal(ctx *fasthttp.RequestCtx) {
	raw, err := base64.RawURLEncoding.DecodeString(string(ctx.Request.Header.Peek(RefusalHeader)))
	var r refusal
	if err == nil {
		err = json.Unmarshal(raw, &r)
	}
	if err != nil || (r.Status != http.StatusServiceUnavailable && r.Status != http.StatusForbidden && r.Status != http.StatusTooManyRequests) ||
		!bytes.HasPrefix(r.Body, []byte("{")) {
		fail(ctx, http.StatusInternalServerError, "NO_REFUSAL",
			"no refusal to render: "+RefusalPath+" answers with the "+RefusalHeader+" header of a refused check (see the nginx configuration in docs/gateways.md)")
		return
	}
	for k, v := range r.Headers {
		if refusalHeaders[http.CanonicalHeaderKey(k)] {
			ctx.Response.Header.Set(k, v)
		}
	}
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(r.Status)
	ctx.SetBody(r.Body)
}

// fail answers a request the gate cannot decide.
func fail(ctx *fasthttp.RequestCtx, status int, code, message string) {
	body, _ := json.Marshal(map[string]map[string]string{"error": {"code": code, "message": message}})
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(body)
}

// fastHeader reads fasthttp's request headers without copying them; the
// strings live as long as the request.
type fastHeader struct{ h *fasthttp.RequestHeader }

func (f fastHeader) Get(name string) string { return str(f.h.Peek(name)) }

// str views b as a string without copying; b must not change while the
// string is used (fasthttp's buffers live until the handler returns).
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func peerAddr(a net.Addr) netip.Addr {
	if tcp, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(tcp.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
