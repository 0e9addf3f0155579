package dataplane

import (
	"cmp"
	"context"
	"net/http"
	"net/netip"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/waygate-dev/waygate/internal/gate"
)

// Where an ext_authz check names the namespace and service of the route:
// the check request's context_extensions, which Envoy sets per route or
// virtual host (ExtAuthzPerRoute.check_settings) and Envoy Gateway per
// SecurityPolicy (extAuth.contextExtensions, v1.7 and later). Never a
// request header: Envoy runs ext_authz before the router adds a route's
// headers, so a header would be whatever the client sent.
const (
	ExtensionNamespace = "namespace"
	ExtensionService   = "service"
)

// ExtAuthz answers Envoy's ext_authz v3 checks with the same decisions as
// forward-auth: a refusal is a DeniedHttpResponse with the reference's
// status, headers and JSON body; an allowed request an OkHttpResponse whose
// response headers (deprecation, rate limits) Envoy adds for the client.
type ExtAuthz struct {
	authv3.UnimplementedAuthorizationServer
	Engine  *gate.Engine
	Metrics *Metrics
}

// NewExtAuthzServer is a gRPC server with ext_authz registered.
func NewExtAuthzServer(e *gate.Engine, m *Metrics) *grpc.Server {
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, &ExtAuthz{Engine: e, Metrics: m})
	return s
}

// Check decides one request.
func (x *ExtAuthz) Check(ctx context.Context, in *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	attrs := in.GetAttributes()
	hr := attrs.GetRequest().GetHttp()
	h := envoyHeader{hr}
	ext := attrs.GetContextExtensions()
	ns, service := ext[ExtensionNamespace], ext[ExtensionService]
	if ns == "" {
		return denied(http.StatusInternalServerError, nil,
			`{"error":{"code":"BAD_REQUEST","message":"the check names no namespace: set the context extensions namespace and service on the route (Envoy: ExtAuthzPerRoute check_settings; Envoy Gateway: extAuth.contextExtensions), see docs/gateways.md"}}`), nil
	}
	peer, _ := netip.ParseAddr(attrs.GetSource().GetAddress().GetSocketAddress().GetAddress())
	path, query, _ := strings.Cut(hr.GetPath(), "?")
	req := gate.Request{
		Namespace: ns, Service: service, Method: hr.GetMethod(),
		Query:     query,
		Overrides: h.overrides(),
		Header:    h,
		Peer:      peer.Unmap(), PeerIsClient: true,
	}
	req.Path, req.Literal, req.Ambiguous = gate.Paths(path)
	d := x.Engine.Decide(ctx, &req)
	var headers []*corev3.HeaderValueOption
	d.Headers(func(k, v string) {
		headers = append(headers, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD})
	})
	var resp *authv3.CheckResponse
	if d.Refused() {
		resp = denied(d.Status(), headers, string(d.Body()))
	} else {
		resp = &authv3.CheckResponse{
			Status:       &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{ResponseHeadersToAdd: headers}},
		}
	}
	x.Metrics.observe(ProtocolExtAuthz, x.Engine.Snapshot(), ns, service, d.Verdict, time.Since(start))
	return resp, nil
}

func denied(status int, headers []*corev3.HeaderValueOption, body string) *authv3.CheckResponse {
	headers = append(headers, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "Content-Type", Value: "application/json"},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD})
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(status)}, Headers: headers, Body: body,
		}},
	}
}

// envoyHeader reads the headers of a check: Envoy sends them lower-cased,
// in a map, or in header_map when it encodes raw headers.
type envoyHeader struct {
	r *authv3.AttributeContext_HttpRequest
}

// overrides are the values of the check's method-override headers, joined
// by commas.
func (e envoyHeader) overrides() string {
	var vs []string
	for k, v := range e.r.GetHeaders() {
		if gate.IsMethodOverride([]byte(k)) {
			vs = append(vs, v)
		}
	}
	for _, hv := range e.r.GetHeaderMap().GetHeaders() {
		if gate.IsMethodOverride([]byte(hv.GetKey())) {
			vs = append(vs, cmp.Or(string(hv.GetRawValue()), hv.GetValue()))
		}
	}
	return strings.Join(vs, ",")
}

func (e envoyHeader) Get(name string) string {
	name = strings.ToLower(name)
	if v, ok := e.r.GetHeaders()[name]; ok {
		return v
	}
	for _, hv := range e.r.GetHeaderMap().GetHeaders() {
		if hv.GetKey() == name {
			if raw := hv.GetRawValue(); raw != nil {
				return string(raw)
			}
			return hv.GetValue()
		}
	}
	return ""
}
