// Command gate runs waygate-gate, the data plane: it answers gateways'
// forward-auth requests (nginx, Caddy, Traefik) and Envoy's ext_authz checks
// with what the RouteGates and RateLimitPolicies in effect say, from memory.
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/waygate-dev/waygate/internal/dataplane"
)

func main() {
	var o dataplane.Options
	var proxies string
	flag.StringVar(&o.HTTPAddr, "http-bind-address", ":8080", "Address forward-auth is served on (GET /v1/check/<namespace>/<service>).")
	flag.StringVar(&o.GRPCAddr, "grpc-bind-address", ":9191", "Address Envoy ext_authz v3 (gRPC) is served on; 0 turns it off.")
	flag.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address /healthz and /readyz are served on.")
	flag.StringVar(&o.MetricsAddr, "metrics-bind-address", ":9090", "Address Prometheus /metrics is served on; 0 turns it off.")
	flag.StringVar(&o.PprofAddr, "pprof-bind-address", "0", "Address a Go pprof endpoint binds to, for profiling; 0 turns it off.")
	flag.StringVar(&o.Environment, "environment", "production", "The environment this gate serves, for env_gated routes; a namespace's waygate.dev/environment label overrides it.")
	flag.IntVar(&o.Proxies.Hops, "trusted-hops", 0, "Proxies in front of the gateway that append to X-Forwarded-For (e.g. 1 behind a cloud load balancer); the client is the entry before them.")
	flag.StringVar(&proxies, "trusted-proxies", "", "Comma-separated CIDRs of proxies whose X-Forwarded-For entries are trusted wherever they appear.")
	flag.StringVar(&o.Identity.User, "user-header", "X-Forwarded-User", "Request header naming the authenticated user (keyStrategy user); your authenticating proxy must set it.")
	flag.StringVar(&o.Identity.Roles, "roles-header", "X-Forwarded-Groups", "Request header with the caller's comma-separated roles (exemptRoles).")
	flag.StringVar(&o.Identity.APIKey, "api-key-header", "X-API-Key", "Request header carrying the caller's API key (keyStrategy api_key).")
	flag.StringVar(&o.RedisURL, "redis-url", "", "Share rate-limit counters between replicas in Redis (redis://host:6379/0); empty keeps them in memory.")
	flag.DurationVar(&o.RedisTimeout, "redis-timeout", 50*time.Millisecond, "How long a decision waits for Redis before failing open (or closed).")
	flag.BoolVar(&o.FailClosed, "fail-closed", false, "Refuse requests whose rate limits cannot be counted (Redis down) with 503, instead of letting them through.")
	flag.IntVar(&o.MaxCounters, "max-counters", 100_000, "In-memory counters kept at most (callers × limits); a flood of new callers evicts the counters nearest to expiring.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := parseCIDRs(proxies, &o.Proxies.CIDRs); err != nil {
		fmt.Fprintln(os.Stderr, "gate:", err)
		os.Exit(2)
	}
	if err := dataplane.Run(ctrl.SetupSignalHandler(), ctrl.GetConfigOrDie(), o); err != nil {
		ctrl.Log.Error(err, "gate stopped")
		os.Exit(1)
	}
}

func parseCIDRs(s string, out *[]netip.Prefix) error {
	for _, c := range strings.Split(s, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("--trusted-proxies: %q is not a CIDR (write e.g. 10.0.0.0/8)", c)
		}
		*out = append(*out, p.Masked())
	}
	return nil
}
