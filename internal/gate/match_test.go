package gate

import "testing"

func TestRouterMatch(t *testing.T) {
	keys := []string{
		"GET:/payments",
		"/payments",
		"GET:/payments/{id}",
		"/payments/export",
		"DELETE:/payments/{id}/items/{item}",
		"/files/{path...}",
		"GET:/files/public/{name}",
		"/",
		"POST:/a/{x}/c",
		"/a/b/{y}",
		"/t:/u",
	}
	var r router[string]
	for _, k := range keys {
		r.add(k, &k, false)
	}
	cases := []struct {
		method, path, want string
	}{
		{"GET", "/payments", "GET:/payments"},
		{"POST", "/payments", "/payments"},
		{"GET", "/payments/", "GET:/payments"},
		{"GET", "/payments/42", "GET:/payments/{id}"},
		{"POST", "/payments/42", ""},
		{"GET", "/payments/export", "/payments/export"}, // a literal path before a template
		{"DELETE", "/payments/42/items/7", "DELETE:/payments/{id}/items/{item}"},
		{"GET", "/payments/42/items/7", ""},
		{"GET", "/files/a/b/c.txt", "/files/{path...}"},
		{"GET", "/files", "/files/{path...}"},
		{"GET", "/files/public/logo.png", "GET:/files/public/{name}"},
		{"PUT", "/files/public/logo.png", "/files/{path...}"}, // backtracks to the catch-all
		{"GET", "/", "/"},
		{"GET", "/unknown", ""},
		// /a/b/c: the literal b beats {x}, though {x} would match with POST.
		{"POST", "/a/b/c", "/a/b/{y}"},
		{"POST", "/a/z/c", "POST:/a/{x}/c"},
		{"BREW", "/payments", "/payments"},
		{"GET", "/t:/u", "/t:/u"}, // a colon in a path names no method
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			got := ""
			if v := r.match(methodOf(tc.method), tc.path); v != nil {
				got = *v
			}
			if got != tc.want {
				t.Errorf("match = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRouterReplacesAKey(t *testing.T) {
	var r router[string]
	a, b := "a", "b"
	r.add("GET:/x", &a, false)
	r.add("GET:/x", &b, false)
	if got := r.match(methodGET, "/x"); got == nil || *got != "b" || r.size != 1 {
		t.Fatalf("got %v, size %d; want b, 1", got, r.size)
	}
}

func TestNormalizePath(t *testing.T) {
	cases := map[string]string{
		"/payments":                "/payments",
		"/payments?limit=10":       "/payments",
		"/payments#top":            "/payments",
		"/%61dmin":                 "/admin",
		"/public/../admin":         "/admin",
		"/public/./x":              "/public/x",
		"//admin//users":           "/admin/users",
		"/payments/":               "/payments/", // the router ignores a trailing slash
		"/payments//":              "/payments",
		"/..":                      "/",
		"":                         "/",
		"payments":                 "/payments",
		"/a%2Fb":                   "/a/b",
		"/a%2fb":                   "/a/b",
		"/a%5Cb":                   "/a/b",
		"/a\\b":                    "/a/b",
		"/bad%zz":                  "/bad%zz",
		"https://example.com/x?y":  "/x",
		"/files/a%20b.txt?dl=true": "/files/a b.txt",
		// Each escape decoded, whatever the others are.
		"/%70ayments/%zz":   "/payments/%zz",
		"/%zz/%70ayments":   "/%zz/payments",
		"/%70ayments%zz/42": "/payments%zz/42",
		"/%7":               "/%7",
		// Segment parameters dropped, as Tomcat and Spring do.
		"/payments;jsessionid=x":       "/payments",
		"/payments;jsessionid=x/42":    "/payments/42",
		"/payments;a=%2F..%2Fadmin/42": "/payments/42",
		"/payments%3Bx/42":             "/payments/42",
		"/;x/payments":                 "/payments",
		"/%2e%2e/admin":                "/admin",
		"/public/%2e%2e/admin":         "/admin",
		"/public/%2E%2E%2Fadmin":       "/admin",
		"/public/..;/admin":            "/admin",
		"/payments/%2e/42":             "/payments/42",
	}
	for in, want := range cases {
		if got := normalizePath(in); got != want {
			t.Errorf("normalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// A gate on a path holds for every spelling of it that an upstream may
// route there: the normalised path with the router's case folding and HEAD.
func TestEverySpellingIsGated(t *testing.T) {
	var sensitive, folded router[string]
	key := "GET:/payments/{id}"
	sensitive.add(key, &key, false)
	folded.add(key, &key, true)
	for _, tc := range []struct {
		method, uri string
		foldedOnly  bool
	}{
		{"GET", "/payments/42", false},
		{"HEAD", "/payments/42", false},
		{"GET", "/%70ayments/42", false},
		{"GET", "/%70ayments/%zz", false},
		{"GET", "/payments;jsessionid=x/42", false},
		{"GET", "//payments//42/", false},
		{"GET", "/x/../payments/42", false},
		{"GET", "/Payments/42", true},
		{"HEAD", "/PAYMENTS/42", true},
		{"GET", "/P%41yments/42", true},
	} {
		p := normalizePath(tc.uri)
		if got := folded.match(methodOf(tc.method), p); got == nil {
			t.Errorf("%s %s (%s) escapes a case-insensitive gate", tc.method, tc.uri, p)
		}
		if got := sensitive.match(methodOf(tc.method), p); (got != nil) == tc.foldedOnly {
			t.Errorf("%s %s (%s): a case-sensitive gate matches = %v", tc.method, tc.uri, p, got != nil)
		}
	}
	// Other methods, and other paths, are not governed.
	for _, tc := range []struct{ method, path string }{{"POST", "/payments/42"}, {"GET", "/payment/42"}, {"GET", "/payments/42/x"}} {
		if folded.match(methodOf(tc.method), tc.path) != nil {
			t.Errorf("%s %s matches %s", tc.method, tc.path, key)
		}
	}
}

func TestLiteralReading(t *testing.T) {
	for in, want := range map[string]string{
		"/payments/42":             "",
		"/payments/42/?x=%2F":      "",
		"/%61dmin/users":           "",
		"/files/a%2Fb":             "/files/a%2Fb",
		"/files/a%5cb":             "/files/a%5cb",
		"/files/a\\b":              "/files/a\\b",
		"/admin/..;/public":        "/admin/..;/public",
		"/admin/%2e%2e/public":     "/admin/../public",
		"/admin/../public":         "/admin/../public",
		"/orders/123%2F%2E%2E/x":   "/orders/123%2F../x",
		"/payments;jsessionid=1/4": "/payments;jsessionid=1/4",
	} {
		if got := literalPath(in, normalizePath(in)); got != want {
			t.Errorf("literalPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// Paths takes the short way only for paths every reading leaves alone.
func TestPaths(t *testing.T) {
	for _, p := range []string{"/payments/42", "/", "/a/b/c/", "/files/a.txt", "/v1.2/x"} {
		if path, literal, ambiguous := Paths(p); path != p || literal != "" || ambiguous {
			t.Errorf("Paths(%q) = %q, %q, %v", p, path, literal, ambiguous)
		}
	}
	for _, p := range []string{"/%61", "/a;b", "/a\\b", "/a#b", "//a", "/./a", "/a/..", "/.well-known", "a", "", "/a/b%2F../c"} {
		path, literal, ambiguous := Paths(p)
		if path != normalizePath(p) || literal != literalPath(p, normalizePath(p)) || ambiguous != isAmbiguous(p) {
			t.Errorf("Paths(%q) = %q, %q, %v: not the long way's", p, path, literal, ambiguous)
		}
	}
}

func TestLowerAllocatesNothingForLowerCase(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = lower("payments") }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
