package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/waygate-dev/waygate/internal/gate"
)

// Options configure the gate server.
type Options struct {
	// HTTPAddr serves forward-auth and OFREP, GRPCAddr ext_authz, ProbeAddr /healthz
	// and /readyz, MetricsAddr /metrics, PprofAddr Go's /debug/pprof/; "" or
	// "0" turns one off.
	HTTPAddr, GRPCAddr, ProbeAddr, MetricsAddr, PprofAddr string
	// Environment is where the gate serves, for env_gated routes.
	Environment string
	Proxies     gate.ProxyTrust
	Identity    gate.Identity
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
	log := ctrl.Log.WithName("gate")
	engine := &gate.Engine{Environment: o.Environment, Proxies: o.Proxies, Identity: o.Identity, FailClosed: o.FailClosed}
	src, err := NewSource(cfg, engine)
	if err != nil {
		return err
	}
	m := NewMetrics(src)
	src.OnSnapshot = func(s *gate.Snapshot, objects int) {
		m.snapshotBuilt(s, objects)
		for _, p := range s.Problems {
			log.Info("left out of the snapshot", "problem", p)
		}
	}
	if o.RedisURL != "" {
		rc, err := NewRedisCounters(o.RedisURL, o.RedisTimeout, o.FailClosed, m)
		if err != nil {
			return err
		}
		defer rc.Close()
		engine.Counters = rc
	} else {
		engine.Counters = gate.NewMemoryCounters(o.MaxCounters)
	}

	// Every listener opens before anything is served, so a port in use
	// fails the start cleanly.
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
	servers := []struct {
		name, addr string
		serve      func(net.Listener) error
		stop       func()
	}{
		{name: "forward-auth", addr: o.HTTPAddr},
		{name: "ext_authz", addr: o.GRPCAddr},
		{name: "probes", addr: o.ProbeAddr},
		{name: "metrics", addr: o.MetricsAddr},
		{name: "pprof", addr: o.PprofAddr},
	}
	fa, ofrep := &ForwardAuth{Engine: engine, Metrics: m}, &OFREP{Flags: src.Flags, Metrics: m}
	fs := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if bytes.HasPrefix(ctx.Path(), ofrepPrefix) {
				ofrep.Handle(ctx)
				return
			}
			fa.Handle(ctx)
		},
		Name:        "waygate-gate",
		ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		NoDefaultDate: true, NoDefaultContentType: true,
	}
	servers[0].serve, servers[0].stop = fs.Serve, func() { _ = fs.Shutdown() }
	gs := NewExtAuthzServer(engine, m)
	servers[1].serve, servers[1].stop = gs.Serve, gs.GracefulStop
	profiles := http.NewServeMux()
	profiles.HandleFunc("/debug/pprof/", pprof.Index)
	profiles.HandleFunc("/debug/pprof/profile", pprof.Profile)
	for i, h := range []http.Handler{probes, metrics, profiles} {
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers[2+i].serve, servers[2+i].stop = hs.Serve, func() { _ = hs.Close() }
	}
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
			return fmt.Errorf("%s on %s: %w", s.name, s.addr, err)
		}
		listeners[i] = l
		log.Info("listening", "server", s.name, "address", l.Addr().String())
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return src.Start(ctx) })
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
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
