package routes

import "testing"

func TestRouteKey(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "GET:/payments", want: "GET:/payments"},
		{in: "get:/payments", want: "GET:/payments"},
		{in: "/payments", want: "/payments"},
		{in: "payments", want: "/payments"},
		{in: "*", want: "*"},
		{in: "/items/{id}", want: "/items/{id}"},
		{in: "FETCH:/x", err: `"FETCH:/x" is not a route key: FETCH is not an HTTP method; write METHOD:/path (e.g. GET:/payments) or /path for every method`},
		{in: "GET:/a b", err: `"GET:/a b" is not a route key: a path has no spaces, query or fragment; write METHOD:/path (e.g. GET:/payments)`},
		{in: "/a?b=1", err: `"/a?b=1" is not a route key: a path has no spaces, query or fragment; write METHOD:/path (e.g. GET:/payments)`},
	} {
		got, err := ParseRouteKey(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseRouteKey(%q): %v, want error %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRouteKey(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestGateName(t *testing.T) {
	for _, tc := range []struct{ service, key, want string }{
		{"", "GET:/payments", "get-payments"},
		{"payments", "GET:/payments/{id}", "get-payments-id"},
		{"", "/v1/orders", "v1-orders"},
		{"", "GET:/", "get-root"},
		{"", "/", "root"},
		{"", "*", "all-routes"},
		{"orders", "*", "orders-all-routes"},
		{"", "GET:/a/very/long/path/that/goes/on/and/on/beyond/any/reasonable/length", "get-a-very-long-path-that-goes-on-and-on-beyond-any"},
	} {
		if got := ObjectName(tc.service, tc.key); got != tc.want {
			t.Errorf("ObjectName(%q, %q) = %q, want %q", tc.service, tc.key, got, tc.want)
		}
	}
	if a, b := UniqueName("x", "s", "GET:/x"), UniqueName("x", "t", "GET:/x"); a == b || len(a) != len("x-")+6 {
		t.Errorf("UniqueName: %q and %q", a, b)
	}
}
