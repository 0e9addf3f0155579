package dataplane

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/gate"
)

// BenchmarkForwardAuth is one allowed check as Caddy sends it, through
// the handler (headers read, path cleaned, decided, answered, counted),
// in a namespace of 200 routes: the gate's own cost per request, without
// the network.
func BenchmarkForwardAuth(b *testing.B) {
	var objs gate.Objects
	for i := range 200 {
		objs.Routes = append(objs.Routes, gate.RouteOf(&waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprint("r", i)},
			Spec: waygatev1.RouteGateSpec{Route: waygatev1.RouteKey(fmt.Sprintf("GET:/api/v1/resource%d/{id}", i)), Service: "api", State: waygatev1.RouteActive}}))
	}
	e := &gate.Engine{}
	e.Swap(gate.NewSnapshot(objs))
	fa := &ForwardAuth{Engine: e, Metrics: NewMetrics()}
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 4000}, nil)
	req := []byte("GET " + CheckPrefix + "shop/api HTTP/1.1\r\nHost: gate\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /api/v1/resource150/42?x=1\r\n" +
		"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Host: shop.example\r\nX-Forwarded-Proto: https\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n")
	var rd bytes.Reader
	br := bufio.NewReader(&rd)
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		rd.Reset(req)
		br.Reset(&rd)
		if err := ctx.Request.Read(br); err != nil {
			b.Fatal(err)
		}
		fa.Handle(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
