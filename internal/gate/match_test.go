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
	}
	var r router[string]
	for _, k := range keys {
		r.add(k, &k)
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
	r.add("GET:/x", &a)
	r.add("GET:/x", &b)
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
		"/..":                      "/",
		"":                         "/",
		"payments":                 "/payments",
		"/a%2Fb":                   "/a/b",
		"/bad%zz":                  "/bad%zz",
		"https://example.com/x?y":  "/x",
		"/files/a%20b.txt?dl=true": "/files/a b.txt",
	}
	for in, want := range cases {
		if got := NormalizePath(in); got != want {
			t.Errorf("NormalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}
