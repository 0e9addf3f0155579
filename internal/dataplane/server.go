package dataplane

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/waygate-dev/waygate/internal/gate"
	"github.com/waygate-dev/waygate/internal/gate/counters"
)

// Options configure the gate server.
type Options struct {
	// HTTPAddr serves forward-auth (and OFREP when OFREPAddr is ""),
	// OFREPAddr OFREP on its own server, GRPCAddr ext_authz, ProbeAddr
	// /healthz and /readyz, MetricsAddr /metrics, PprofAddr Go's
	// /debug/pprof/; "0" turns one off.
	HTTPAddr, OFREPAddr, GRPCAddr, ProbeAddr, MetricsAddr, PprofAddr string
	// MaxHeaderBytes bounds a forward-auth request's headers (gateways
	// pass the client's cookies on).
	MaxHeaderBytes int
	// OFREP bounds what OFREP requests may cost.
	OFREP OFREPLimits
	// Environment is where the gate serves, for env_gated routes.
	Environment string
	Proxies     gate.ProxyTrust
	// Networks are the client networks rate limits by ip count as one.
	Networks gate.Networks
	// Identity says which headers carry who the caller is (read only when
	// Identity.Trusted lists them); JWT, when enabled, verifies bearer tokens
	// whose claims say it instead.
	Identity gate.Identity
	JWT      JWTOptions
	// RedisURL shares counters between replicas through Redis; without it
	// they are kept in memory, at most MaxCounters of them.
	RedisURL     string
	RedisTimeout time.Duration
	MaxCounters  int
	// FailClosed refuses requests whose limits cannot be counted.
	FailClosed bool
}

// Run serves until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	o.OFREP, o.MaxHeaderBytes = o.OFREP.orDefaults(), cmp.Or(o.MaxHeaderBytes, DefaultMaxHeaderBytes)
	engine := &gate.Engine{Environment: o.Environment, Proxies: o.Proxies, Networks: o.Networks, Identity: o.Identity, FailClosed: o.FailClosed}
	var tokens *Tokens
	if o.JWT.Enabled() {
		var err error
		if tokens, err = NewTokens(ctx, o.JWT); err != nil {
			return err
		}
		engine.Identity.Tokens = tokens
	}
	m := NewMetrics()
	src, err := NewSource(cfg, engine, m)
	if err != nil {
		return err
	}
	m.ReportStaleness(src.Stale)
	store, closeStore, err := counterStore(&o, m)
	if err != nil {
		return err
	}
	defer closeStore()
	engine.Counters = store

	servers := newServers(&o, engine, src, m)
	// Every listener opens before anything is served, so a port in use
	// fails the start cleanly.
	listeners, err := listen(servers)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return src.Start(ctx) })
	if tokens != nil {
		g.Go(func() error { return tokens.Run(ctx) })
	}
	serve(ctx, g, servers, listeners)
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// counterStore is where rate limits are counted: Redis when o names one,
// else this process's memory.
func counterStore(o *Options, m *Metrics) (store counters.Store, closeStore func(), err error) {
	if o.RedisURL == "" {
		return counters.NewMemory(o.MaxCounters), func() {}, nil
	}
	rc, err := counters.NewRedis(o.RedisURL, o.RedisTimeout, o.FailClosed, m.store)
	if err != nil {
		return nil, nil, err
	}
	return rc, rc.Close, nil
}

// server is one of the gate's servers: where it listens ("" or "0": it is
// off), how it serves a listener and how it stops.
type server struct {
	name, addr string
	serve      func(net.Listener) error
	stop       func()
}

// newServers makes the gate's servers: forward-auth, ext_authz, probes,
// metrics, pprof and OFREP's own.
func newServers(o *Options, engine *gate.Engine, src *Source, m *Metrics) []server {
	probes := http.NewServeMux()
	probes.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	probes.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !src.Ready() {
			http.Error(w, "waiting for the first snapshot (RouteGates and RateLimitPolicies from the API server)", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	metrics := http.NewServeMux()
	metrics.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	profiles := http.NewServeMux()
	profiles.HandleFunc("/debug/pprof/", pprof.Index)
	profiles.HandleFunc("/debug/pprof/profile", pprof.Profile)

	fa, ofrep := &ForwardAuth{Engine: engine, Metrics: m}, &OFREP{Flags: src.Flags, Metrics: m, Limits: o.OFREP}
	fs, ofs := httpServers(fa, ofrep, o)
	gs := NewExtAuthzServer(engine, m)
	servers := []server{
		{name: "forward-auth", addr: o.HTTPAddr, serve: func(l net.Listener) error { return fs.Serve(lingerListener{l}) }, stop: func() { _ = fs.Shutdown() }},
		{name: "ext_authz", addr: o.GRPCAddr, serve: gs.Serve, stop: gs.GracefulStop},
		{name: "ofrep", addr: o.OFREPAddr, serve: func(l net.Listener) error { return ofs.Serve(lingerListener{l}) }, stop: func() { _ = ofs.Shutdown() }},
	}
	for _, h := range []struct {
		name, addr string
		handler    http.Handler
	}{{"probes", o.ProbeAddr, probes}, {"metrics", o.MetricsAddr, metrics}, {"pprof", o.PprofAddr, profiles}} {
		hs := &http.Server{Handler: h.handler, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, server{name: h.name, addr: h.addr, serve: hs.Serve, stop: func() { _ = hs.Close() }})
	}
	return servers
}

// listen opens the listener of every server that is on (nil for those
// off), or none.
func listen(servers []server) ([]net.Listener, error) {
	log := ctrl.Log.WithName("gate")
	listeners := make([]net.Listener, len(servers))
	for i, s := range servers {
		if s.addr == "" || s.addr == "0" {
			continue
		}
		l, err := net.Listen("tcp", s.addr)
		if err != nil {
			for _, l := range listeners[:i] {
				if l != nil {
					_ = l.Close()
				}
			}
			return nil, fmt.Errorf("%s on %s: %w", s.name, s.addr, err)
		}
		listeners[i] = l
		log.Info("listening", "server", s.name, "address", l.Addr().String())
	}
	return listeners, nil
}

// serve runs each server on its listener in g, and stops it when ctx ends.
func serve(ctx context.Context, g *errgroup.Group, servers []server, listeners []net.Listener) {
	for i, s := range servers {
		if listeners[i] == nil {
			continue
		}
		g.Go(func() error {
			if err := s.serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			return nil
		})
		g.Go(func() error { <-ctx.Done(); s.stop(); return nil })
	}
}

// DefaultMaxHeaderBytes fits the big cookies nginx passes on in its auth
// subrequest; fasthttp's 4 KiB would answer them 431, which nginx turns
// into a 500 for the client.
const DefaultMaxHeaderBytes = 32 << 10

// forwardAuthMaxBody is the largest body forward-auth reads: gateways send
// none (nginx with proxy_pass_request_body off), and a body is memory.
const forwardAuthMaxBody = 4 << 10

// ofrepReadBufferSize bounds an OFREP request's headers on OFREP's own
// server: a key and a content type fit many times over.
const ofrepReadBufferSize = 8 << 10

// httpServers makes forward-auth's fasthttp server, which also serves
// OFREP when o.OFREPAddr is "", and OFREP's own (used when it is set).
// Either way an OFREP request reads at most o.OFREP.MaxBodyBytes and a
// forward-auth request forwardAuthMaxBody; OFREP's own server also bounds
// its connections, each of which may hold a body being read, so flag
// traffic cannot take the memory or the connections forward-auth needs.
func httpServers(fa *ForwardAuth, ofrep *OFREP, o *Options) (forwardAuth, ofrepOwn *fasthttp.Server) {
	shared := o.OFREPAddr == ""
	elsewhere := "this gate serves OFREP on its own port (--ofrep-bind-address " + o.OFREPAddr + "): give OFREP providers that port"
	if o.OFREPAddr == "0" {
		elsewhere = "this gate serves no OFREP (--ofrep-bind-address=0)"
	}
	forwardAuth = &fasthttp.Server{
		Handler: httpHandler(fa, ofrep, shared, elsewhere),
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			switch {
			case errors.Is(err, fasthttp.ErrBodyTooLarge) && shared && bytes.HasPrefix(ctx.Request.Header.RequestURI(), ofrepPrefix):
				lingerOnClose(ctx)
				ofrep.BodyTooLarge(ctx)
			case errors.Is(err, fasthttp.ErrBodyTooLarge):
				lingerOnClose(ctx)
				fail(ctx, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", fmt.Sprintf("forward-auth reads no body over %d bytes: "+
					"configure the gateway not to pass the request's body to the gate (nginx: proxy_pass_request_body off)", forwardAuthMaxBody))
			default:
				status, code, msg := unreadRequest(ctx, err, o.MaxHeaderBytes, "--http-max-header-bytes")
				fail(ctx, status, code, msg)
			}
		},
		Name:           "waygate-gate",
		ReadBufferSize: o.MaxHeaderBytes, MaxRequestBodySize: forwardAuthMaxBody,
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  30 * time.Second, IdleTimeout: 2 * time.Minute,
		NoDefaultDate: true, NoDefaultContentType: true,
	}
	if shared {
		// OFREP's body cap, for OFREP's requests only.
		forwardAuth.HeaderReceived = func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if bytes.HasPrefix(h.RequestURI(), ofrepPrefix) {
				return fasthttp.RequestConfig{MaxRequestBodySize: o.OFREP.MaxBodyBytes}
			}
			return fasthttp.RequestConfig{}
		}
	}
	ofrepOwn = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if !bytes.HasPrefix(ctx.Request.Header.RequestURI(), ofrepPrefix) {
				ofrepError(ctx, http.StatusNotFound, ofrepResult{ErrorDetails: "this is the gate's OFREP port: give OFREP providers the base URL <gate>" +
					OFREPPrefix + "<namespace>; gateways ask forward-auth's port (--http-bind-address)"})
				return
			}
			ofrep.Handle(ctx)
		},
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) && bytes.HasPrefix(ctx.Path(), ofrepPrefix) {
				lingerOnClose(ctx)
				ofrep.BodyTooLarge(ctx)
				return
			}
			status, _, msg := unreadRequest(ctx, err, ofrepReadBufferSize, "")
			ofrepError(ctx, status, ofrepResult{ErrorDetails: msg})
		},
		Name:           "waygate-gate",
		ReadBufferSize: ofrepReadBufferSize, MaxRequestBodySize: o.OFREP.MaxBodyBytes,
		DisablePreParseMultipartForm: true,
		Concurrency:                  o.OFREP.MaxConnections,
		// Apps keep connections open between polls: idle ones give their
		// buffers back.
		ReduceMemoryUsage: true,
		ReadTimeout:       10 * time.Second, IdleTimeout: 2 * time.Minute,
		NoDefaultDate: true, NoDefaultContentType: true,
	}
	return forwardAuth, ofrepOwn
}

// unreadRequest is the answer (status, error code, message) to a request
// the server could not read; flag names the limit of its headers.
func unreadRequest(ctx *fasthttp.RequestCtx, err error, maxHeader int, flag string) (status int, code, msg string) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.As(err, &small):
		lingerOnClose(ctx) // the rest of the headers is unread
		msg = fmt.Sprintf("the request's headers are larger than the gate reads (%d bytes)", maxHeader)
		if flag != "" {
			msg += ": raise " + flag + " or send smaller headers"
		}
		return http.StatusRequestHeaderFieldsTooLarge, "HEADERS_TOO_LARGE", msg
	case errors.As(err, &netErr) && netErr.Timeout():
		return http.StatusRequestTimeout, "REQUEST_TIMEOUT", "the request did not arrive in time"
	default:
		return http.StatusBadRequest, "BAD_REQUEST", "the request could not be read: " + err.Error()
	}
}

// lingerListener hands out connections that, once marked by
// lingerOnClose, close as net/http closes after refusing a body: the
// answer is sent, the write side shut, and what the client still sends
// read and dropped for a moment. Closed at once, the connection would be
// reset with the body unread, and most clients would see the reset
// instead of the 413.
type lingerListener struct{ net.Listener }

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c}, nil
}

type lingerConn struct {
	net.Conn
	linger atomic.Bool
}

// What a refused client may still cost the gate: its connection's
// goroutine for half a second, reading at most a MiB.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

func (c *lingerConn) Close() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && c.linger.Load() && cw.CloseWrite() == nil {
		_ = c.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
	}
	return c.Conn.Close()
}

// lingerOnClose marks the request's connection to linger when it closes.
func lingerOnClose(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(*lingerConn); ok {
		c.linger.Store(true)
	}
}

// httpHandler serves forward-auth and, when shared, OFREP on one port,
// telling them apart by the request URI as sent, not as fasthttp cleans it:
// a path Envoy appended to a check must not turn it into an OFREP request.
func httpHandler(fa *ForwardAuth, ofrep *OFREP, shared bool, elsewhere string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		switch {
		case !bytes.HasPrefix(ctx.Request.Header.RequestURI(), ofrepPrefix):
			fa.Handle(ctx)
		case shared:
			ofrep.Handle(ctx)
		default:
			fail(ctx, http.StatusNotFound, "NOT_FOUND", elsewhere)
		}
	}
}
