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

// The forward-auth endpoints. Each reads the request it judges from its
// own headers, the ones its gateways overwrite on every auth request, and
// from no other: a header the client could set must never be what the gate
// judges.
const (
	// CheckPrefix is followed by <namespace>/<service> (or only
	// <namespace>, for routes gated for no service): the auth URL of
	// Traefik's ForwardAuth and Caddy's forward_auth, which set
	// X-Forwarded-Method and X-Forwarded-Uri themselves.
	CheckPrefix = "/v1/check/"
	// NginxPrefix is followed by <namespace>/<service>, as CheckPrefix: the
	// auth URL of nginx's auth_request (as docs/gateways.md configures it)
	// and of ingress-nginx's auth-url annotation, which set
	// X-Original-Method and X-Original-URL ($scheme://$http_host$request_uri)
	// themselves but pass the client's other headers on.
	NginxPrefix = "/v1/nginx/"
	// EnvoyPrefix is followed by <namespace>/<service> (service "_" for
	// routes gated for no service) and then the request's own path: the
	// path_prefix of Envoy's HTTP ext_authz service (Istio's
	// envoyExtAuthzHttp pathPrefix, Envoy Gateway's extAuth.http.path),
	// to which Envoy appends the request's path and whose request carries
	// the request's method. Everything it judges is in the request line.
	EnvoyPrefix = "/v1/envoy/"
	// NoService stands for "no service" in an EnvoyPrefix path.
	NoService = "_"
	// RefusalPath renders the refusal an nginx auth_request could not pass
	// on (see RefusalHeader).
	RefusalPath = "/v1/refusal"
	// RefusalHeader carries a whole refusal (status, headers, body) in a
	// header. nginx's auth_request passes only 401 and 403 on, and never a
	// body; so NginxPrefix answers a refusal 403 with this header, which
	// nginx's error_page location hands back to RefusalPath to answer the
	// client with the real status, headers and body.
	RefusalHeader = "X-Waygate-Refusal"
)

// ForwardAuth answers HTTP forward-auth requests: Traefik ForwardAuth and
// Caddy forward_auth under CheckPrefix, nginx auth_request and
// ingress-nginx auth-url under NginxPrefix.
// It runs on fasthttp: a forward-auth request is tiny and the gateway keeps
// connections open, so the per-request cost of net/http (about half the
// requests per second here) would be most of the gate's.
type ForwardAuth struct {
	Engine  *gate.Engine
	Metrics *Metrics
}

// contract is the headers one endpoint reads the request from.
type contract struct {
	prefix []byte
	// method and uri name the headers; the uri is a URL (scheme://host/path)
	// for nginx, a request URI (/path?query) for the others.
	method, uri string
	url         bool
	// nginx answers refusals the auth_request way (403 and RefusalHeader).
	nginx bool
	// help says how to configure the gateway, for a request without them.
	help string
}

var (
	forwarded = contract{prefix: []byte(CheckPrefix), method: "X-Forwarded-Method", uri: "X-Forwarded-Uri",
		help: "Traefik and Caddy send them; for nginx and ingress-nginx use " + NginxPrefix + " instead (docs/gateways.md)"}
	original = contract{prefix: []byte(NginxPrefix), method: "X-Original-Method", uri: "X-Original-URL", url: true, nginx: true,
		help: "set them as docs/gateways.md shows: proxy_set_header X-Original-URL $scheme://$http_host$request_uri; proxy_set_header X-Original-Method $request_method"}
	envoyPrefix = []byte(EnvoyPrefix)
	refusalPath = []byte(RefusalPath)
)

// Handle serves one request. Endpoints are told apart by the request URI
// as sent, not as fasthttp cleans it: Envoy appends the client's path, and
// a "/.." in it must not move the request to another endpoint's contract.
func (f *ForwardAuth) Handle(ctx *fasthttp.RequestCtx) {
	raw := ctx.Request.Header.RequestURI()
	p, _, _ := bytes.Cut(raw, []byte("?"))
	switch {
	case bytes.HasPrefix(p, forwarded.prefix):
		f.check(ctx, &forwarded, p[len(forwarded.prefix):])
	case bytes.HasPrefix(p, original.prefix):
		f.check(ctx, &original, p[len(original.prefix):])
	case bytes.HasPrefix(raw, envoyPrefix):
		f.envoy(ctx, raw[len(envoyPrefix):])
	case bytes.Equal(p, refusalPath):
		renderRefusal(ctx)
	default:
		fail(ctx, http.StatusNotFound, "NOT_FOUND", "no such endpoint: gateways ask "+CheckPrefix+"<namespace>/<service> (Traefik, Caddy), "+
			NginxPrefix+"<namespace>/<service> (nginx, ingress-nginx) or "+EnvoyPrefix+"<namespace>/<service> (Envoy's HTTP ext_authz path prefix), "+
			"OpenFeature OFREP providers "+OFREPPrefix+"<namespace>/ofrep/v1/...")
	}
}

func (f *ForwardAuth) check(ctx *fasthttp.RequestCtx, c *contract, scope []byte) {
	start := time.Now()
	ns, service, _ := bytes.Cut(scope, []byte("/"))
	h := &ctx.Request.Header
	uri, method := h.Peek(c.uri), h.Peek(c.method)
	if c.url {
		uri = pathOfURL(uri)
	}
	if len(ns) == 0 || len(uri) == 0 || len(method) == 0 {
		fail(ctx, http.StatusBadRequest, "BAD_REQUEST", "the gate needs "+string(c.prefix)+"<namespace>/<service> and the request's method and URI in "+
			c.method+" and "+c.uri+": "+c.help)
		return
	}
	f.decide(ctx, start, ns, service, method, uri, c.nginx)
}

// envoy serves EnvoyPrefix: the namespace, the service and the request's
// path and query from the request line, its method from the request's.
func (f *ForwardAuth) envoy(ctx *fasthttp.RequestCtx, scope []byte) {
	start := time.Now()
	ns, scope, _ := bytes.Cut(scope, []byte("/"))
	service, uri := scope, []byte("/")
	if i := bytes.IndexByte(scope, '/'); i >= 0 {
		service, uri = scope[:i], scope[i:]
	}
	if len(ns) == 0 || len(service) == 0 {
		fail(ctx, http.StatusBadRequest, "BAD_REQUEST", "the gate needs "+EnvoyPrefix+"<namespace>/<service> as the path prefix of the ext_authz HTTP service "+
			"(service "+NoService+" for routes gated for no service), followed by the request's path: see docs/gateways.md")
		return
	}
	if string(service) == NoService {
		service = nil
	}
	f.decide(ctx, start, ns, service, ctx.Method(), uri, false)
}

// decide answers the forward-auth request for method uri (a request URI)
// of service in ns.
func (f *ForwardAuth) decide(ctx *fasthttp.RequestCtx, start time.Time, ns, service, method, uri []byte, nginx bool) {
	path, query, _ := bytes.Cut(uri, []byte("?"))
	req := gate.Request{
		Namespace: str(ns), Service: str(service), Method: str(method), Query: str(query),
		Overrides: overrides(&ctx.Request.Header),
		Header:    fastHeader{&ctx.Request.Header},
		Peer:      peerAddr(ctx.RemoteAddr()),
	}
	req.Path, req.Literal, req.Ambiguous = gate.Paths(str(path))
	d := f.Engine.Decide(ctx, &req)
	respond(ctx, &d, nginx)
	f.Metrics.observe(ProtocolForwardAuth, f.Engine.Snapshot(), req.Namespace, req.Service, d.Verdict, time.Since(start))
}

// pathOfURL is the request URI of an nginx $scheme://$http_host$request_uri:
// what follows the host, which cannot hold a slash (nginx refuses such a
// Host with 400) but may hold "?" or "#", so a URL parser would take a path
// the client chose for the query. Nil when u is no such URL.
func pathOfURL(u []byte) []byte {
	_, rest, ok := bytes.Cut(u, []byte("://"))
	if !ok {
		return nil
	}
	if i := bytes.IndexByte(rest, '/'); i >= 0 {
		return rest[i:]
	}
	return nil
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
	if err != nil || (r.Status != http.StatusServiceUnavailable && r.Status != http.StatusForbidden && r.Status != http.StatusTooManyRequests && r.Status != http.StatusBadRequest) ||
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

// overrides are the values of the request's method-override headers,
// joined by commas, found in one pass over its headers.
func overrides(h *fasthttp.RequestHeader) string {
	var out string
	for k, v := range h.All() {
		switch {
		case !gate.IsMethodOverride(k):
		case out == "":
			out = str(v)
		default:
			out += "," + string(v)
		}
	}
	return out
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
