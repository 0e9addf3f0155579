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
	"github.com/waygate-dev/waygate/internal/gate"
	"github.com/waygate-dev/waygate/internal/memlimit"
)

func main() {
	var o dataplane.Options
	var proxies string
	flag.StringVar(&o.HTTPAddr, "http-bind-address", ":8080", "Address forward-auth is served on (GET /v1/check/<namespace>/<service>).")
	flag.StringVar(&o.OFREPAddr, "ofrep-bind-address", "", "Address OFREP is served on, by its own server with its own limits (as config/gate does); empty serves it on --http-bind-address, 0 turns it off.")
	flag.IntVar(&o.MaxHeaderBytes, "http-max-header-bytes", dataplane.DefaultMaxHeaderBytes, "Largest request headers forward-auth reads (gateways pass the client's cookies on); bigger ones are answered 431.")
	flag.IntVar(&o.OFREP.MaxBodyBytes, "ofrep-max-body-bytes", dataplane.DefaultOFREPLimits.MaxBodyBytes, "Largest OFREP request body read; bigger ones are answered 413.")
	flag.IntVar(&o.OFREP.MaxInFlight, "ofrep-max-in-flight", dataplane.DefaultOFREPLimits.MaxInFlight, "OFREP requests answered at once; more are answered 429 with Retry-After.")
	flag.IntVar(&o.OFREP.MaxConnections, "ofrep-max-connections", dataplane.DefaultOFREPLimits.MaxConnections, "Connections OFREP's own server (--ofrep-bind-address) serves at once; more are refused with 503.")
	flag.IntVar(&o.OFREP.MaxAttributes, "ofrep-max-context-attributes", dataplane.DefaultOFREPLimits.MaxAttributes, "Values an OFREP evaluation context may hold in all (attributes, nested ones, list elements); more are answered 400 INVALID_CONTEXT.")
	flag.IntVar(&o.OFREP.MaxDepth, "ofrep-max-context-depth", dataplane.DefaultOFREPLimits.MaxDepth, "How deeply objects and lists may nest in an OFREP evaluation context (a flat one is 1); deeper is answered 400 INVALID_CONTEXT.")
	flag.IntVar(&o.OFREP.MaxStringBytes, "ofrep-max-string-bytes", dataplane.DefaultOFREPLimits.MaxStringBytes, "Longest key, string or number in an OFREP evaluation context, as sent; longer is answered 400 INVALID_CONTEXT.")
	flag.StringVar(&o.GRPCAddr, "grpc-bind-address", ":9191", "Address Envoy ext_authz v3 (gRPC) is served on; 0 turns it off.")
	flag.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address /healthz and /readyz are served on.")
	flag.StringVar(&o.MetricsAddr, "metrics-bind-address", ":9090", "Address Prometheus /metrics is served on; 0 turns it off.")
	flag.StringVar(&o.PprofAddr, "pprof-bind-address", "0", "Address a Go pprof endpoint binds to, for profiling; 0 turns it off.")
	flag.StringVar(&o.Environment, "environment", "production", "The environment this gate serves, for env_gated routes; a namespace's waygate.dev/environment label overrides it.")
	flag.IntVar(&o.Proxies.Hops, "trusted-hops", 0, "Proxies in front of the gateway that append to X-Forwarded-For (e.g. 1 behind a cloud load balancer); the client is the entry before them.")
	flag.StringVar(&proxies, "trusted-proxies", "", "Comma-separated CIDRs of proxies whose X-Forwarded-For entries are trusted wherever they appear.")
	flag.IntVar(&o.Networks.IPv4Bits, "ipv4-prefix-length", gate.DefaultNetworks.IPv4Bits, "Leading bits of an IPv4 client address that rate limits by ip count as one caller (32: each address).")
	flag.IntVar(&o.Networks.IPv6Bits, "ipv6-prefix-length", gate.DefaultNetworks.IPv6Bits, "Leading bits of an IPv6 client address that rate limits by ip count as one caller (64: each /64, what one host usually has).")
	flag.StringVar(&o.JWT.JWKSURL, "jwt-jwks-url", "", "Verify callers' bearer tokens against the JSON Web Key Set at this URL: their claims name the user, roles, API key and tier of rate limits.")
	flag.StringVar(&o.JWT.JWKSFile, "jwt-jwks-file", "", "As --jwt-jwks-url, with the key set in a file (a mounted Secret).")
	flag.DurationVar(&o.JWT.Refresh, "jwt-jwks-refresh", 5*time.Minute, "How often the key set is read again.")
	flag.StringVar(&o.JWT.Issuer, "jwt-issuer", "", "The iss a token must have (required with a key set).")
	flag.StringVar(&o.JWT.Audience, "jwt-audience", "", "An aud a token must have (required with a key set).")
	flag.StringVar(&o.JWT.UserClaim, "jwt-user-claim", "sub", "The claim naming the user (keyStrategy user).")
	flag.StringVar(&o.JWT.RolesClaim, "jwt-roles-claim", "groups", "The claim listing the caller's roles (exemptRoles): a list, or a string of roles separated by commas or spaces.")
	flag.StringVar(&o.JWT.APIKeyClaim, "jwt-api-key-claim", "client_id", "The claim naming the calling client (keyStrategy api_key).")
	flag.Var(headerList{&o.Identity.Trusted}, "trusted-headers", "Comma-separated request headers the gateway (or an authenticating proxy) overwrites on every request, which alone are read of the identity headers below and of policies' tierHeader and keyHeader; a header not listed is the client's choice and is not read.")
	flag.StringVar(&o.Identity.User, "user-header", "X-Forwarded-User", "The header naming the authenticated user (keyStrategy user), read when listed in --trusted-headers.")
	flag.StringVar(&o.Identity.Roles, "roles-header", "X-Forwarded-Groups", "The header with the caller's comma-separated roles (exemptRoles), read when listed in --trusted-headers.")
	flag.StringVar(&o.Identity.APIKey, "api-key-header", "X-API-Key", "The header carrying the caller's API key (keyStrategy api_key), read when listed in --trusted-headers.")
	flag.StringVar(&o.RedisURL, "redis-url", "", "Share rate-limit counters between replicas in Redis (redis://host:6379/0); empty keeps them in memory.")
	flag.DurationVar(&o.RedisTimeout, "redis-timeout", 50*time.Millisecond, "How long a decision waits for Redis before failing open (or closed).")
	flag.BoolVar(&o.FailClosed, "fail-closed", false, "Refuse requests whose rate limits cannot be counted (Redis down) with 503, instead of letting them through.")
	flag.IntVar(&o.MaxCounters, "max-counters", 100_000, "In-memory counters kept at most (callers × limits); a flood of new callers evicts the counters nearest to expiring, keeping those over their limit until they expire.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	memlimit.Set(ctrl.Log)

	if err := parseCIDRs(proxies, &o.Proxies.CIDRs); err != nil {
		fmt.Fprintln(os.Stderr, "gate:", err)
		os.Exit(2)
	}
	for _, validate := range []func() error{o.Networks.Validate, o.JWT.Validate} {
		if err := validate(); err != nil {
			fmt.Fprintln(os.Stderr, "gate:", err)
			os.Exit(2)
		}
	}
	if err := o.OFREP.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "gate:", err)
		os.Exit(2)
	}
	if o.MaxHeaderBytes < 4<<10 {
		fmt.Fprintf(os.Stderr, "gate: --http-max-header-bytes=%d: give at least 4096\n", o.MaxHeaderBytes)
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

// headerList is a comma-separated flag of header names.
type headerList struct{ names *[]string }

func (h headerList) String() string {
	if h.names == nil {
		return ""
	}
	return strings.Join(*h.names, ",")
}

func (h headerList) Set(s string) error {
	for name := range strings.SplitSeq(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			*h.names = append(*h.names, name)
		}
	}
	return nil
}
