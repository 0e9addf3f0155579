package gate

import (
	"net/url"
	"strings"

	"github.com/waygate-dev/waygate/internal/routes"
)

// method is an HTTP method as an index, so that a route's entries per method
// are an array rather than a map.
type method uint8

// A method's index is its place in routes.Methods, the methods a route key
// may name; methodOther is any other (never named by a key, so only
// method-less keys match it).
const (
	methodOther = method(len(routes.Methods))
	numMethods  = methodOther + 1
)

var methodGET, methodHEAD = methodOf("GET"), methodOf("HEAD")

func methodOf(m string) method {
	for i, name := range routes.Methods {
		if m == name {
			return method(i)
		}
	}
	return methodOther
}

// router finds the value of the route key that matches a request best. Keys
// are "METHOD:/path" or "/path"; a path segment written {name} matches any one
// segment, and a last segment {name...} matches the rest of the path (also
// nothing). The most specific path wins: segment by segment from the left, a
// literal before a literal matched regardless of case before {name} before
// {name...}; within that path a key for the request's method wins over a key
// for every method, and a HEAD request is governed by a GET key (every
// framework answers HEAD with its GET handler).
type router[T any] struct {
	root node[T]
	size int
}

type node[T any] struct {
	literal map[string]*node[T]
	// folded holds the literal segments of keys matched regardless of
	// case, lower-cased.
	folded map[string]*node[T]
	param  *node[T]
	rest   *node[T]
	// byMethod holds the values of "METHOD:/path" keys, any the value of the
	// "/path" key.
	byMethod [numMethods]*T
	any      *T
}

// add sets the value of key, replacing the value of the same key; with
// fold its literal segments match regardless of case (for upstreams that
// route so, such as ASP.NET and IIS).
func (r *router[T]) add(key string, v *T, fold bool) {
	m := methodOther
	name, p := routes.CutMethod(key)
	if name != "" {
		m = methodOf(name)
	}
	n := &r.root
	for p = strings.TrimPrefix(p, "/"); p != ""; {
		var seg string
		seg, p = cutSegment(p)
		switch {
		case seg == "": // "//" has no segment between the slashes
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "...}"):
			n.rest = child(n.rest)
			n = n.rest
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			n.param = child(n.param)
			n = n.param
		case fold:
			n = literalChild(&n.folded, strings.ToLower(seg))
		default:
			n = literalChild(&n.literal, seg)
		}
	}
	slot := &n.any
	if m != methodOther {
		slot = &n.byMethod[m]
	}
	if *slot == nil {
		r.size++
	}
	*slot = v
}

func child[T any](c *node[T]) *node[T] {
	if c == nil {
		return &node[T]{}
	}
	return c
}

func literalChild[T any](m *map[string]*node[T], seg string) *node[T] {
	if *m == nil {
		*m = map[string]*node[T]{}
	}
	c := (*m)[seg]
	if c == nil {
		c = &node[T]{}
		(*m)[seg] = c
	}
	return c
}

// match returns the value of the best key for a request, or nil. reqPath is
// the request's path (a query is ignored), as normalizePath leaves it.
func (r *router[T]) match(m method, reqPath string) *T {
	if r == nil || r.size == 0 {
		return nil
	}
	return r.root.match(m, strings.TrimPrefix(reqPath, "/"))
}

func (n *node[T]) match(m method, p string) *T {
	if p == "" {
		if v := n.value(m); v != nil {
			return v
		}
		if n.rest != nil {
			return n.rest.value(m)
		}
		return nil
	}
	seg, rest := cutSegment(p)
	if c := n.literal[seg]; c != nil {
		if v := c.match(m, rest); v != nil {
			return v
		}
	}
	if n.folded != nil {
		if c := n.folded[lower(seg)]; c != nil {
			if v := c.match(m, rest); v != nil {
				return v
			}
		}
	}
	if n.param != nil {
		if v := n.param.match(m, rest); v != nil {
			return v
		}
	}
	if n.rest != nil {
		return n.rest.value(m)
	}
	return nil
}

func (n *node[T]) value(m method) *T {
	if v := n.byMethod[m]; v != nil {
		return v
	}
	if m == methodHEAD && n.byMethod[methodGET] != nil {
		return n.byMethod[methodGET]
	}
	return n.any
}

// lower is strings.ToLower, without allocating for a segment that has no
// upper-case ASCII letter and nothing beyond ASCII (the usual case).
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// cutSegment splits "a/b/c" into "a" and "b/c". A trailing slash leaves no
// segment behind it: "/payments/" is "/payments".
func cutSegment(p string) (seg, rest string) {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return p, ""
}

// normalizePath is the path of a request URI as upstreams route it, so
// that no spelling of a gated path slips past its gate: without query or
// fragment; each segment percent-decoded on its own (every valid escape is
// decoded, whatever the others are, so /%70ayments/%zz is /payments/%zz),
// without its ;parameters (Tomcat and Spring drop /payments;jsessionid=x
// to /payments); "." and ".." resolved; backslashes taken as slashes (IIS);
// empty segments (repeated and trailing slashes) dropped. An encoded
// slash, dot or semicolon counts as one after decoding (/admin%2Fusers is
// /admin/users). A path that needs none of that is returned as it is,
// without allocating.
func normalizePath(uri string) string {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
		if u, err := url.Parse(uri); err == nil {
			uri = u.EscapedPath()
		}
	}
	if plain(uri) {
		return uri
	}
	segs := make([]string, 0, 8)
	for _, raw := range strings.FieldsFunc(uri, isSlash) {
		// Parameters go first, as Tomcat and Spring drop them before
		// decoding; an encoded semicolon is cut too (stricter, never looser).
		raw, _, _ = strings.Cut(raw, ";")
		for _, seg := range strings.FieldsFunc(unescape(raw, false), isSlash) {
			seg, _, _ = strings.Cut(seg, ";")
			switch seg {
			case "", ".":
			case "..":
				if len(segs) > 0 {
					segs = segs[:len(segs)-1]
				}
			default:
				segs = append(segs, seg)
			}
		}
	}
	return "/" + strings.Join(segs, "/")
}

// literalPath is the other way upstreams read a path normalizePath cleans
// (to normalized):
// segment by segment as sent — each escape decoded but an encoded slash or
// backslash (which stays inside its segment, as Go's ServeMux, Express and
// Rails keep it), ";" kept, "." and ".." kept as segments (routers that do
// not resolve them, such as Express and Rails, route /admin/../x under
// /admin). "" when the path has nothing the two readings differ on. The
// gate judges a request by both readings: it is refused if either is.
func literalPath(uri, normalized string) string {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	if !strings.ContainsAny(uri, "%;\\") && !strings.Contains(uri, "/.") {
		return ""
	}
	segs := make([]string, 0, 8)
	for seg := range strings.SplitSeq(uri, "/") {
		if seg != "" {
			segs = append(segs, unescape(seg, true))
		}
	}
	literal := "/" + strings.Join(segs, "/")
	if literal == normalized {
		return ""
	}
	return literal
}

// Paths reads a request's path (without its query) the ways upstreams
// route it: as normalizePath cleans it, as literalPath reads it ("" when
// the same), and whether it is ambiguous. A plain path — the usual one —
// costs one pass over its bytes and no allocation.
func Paths(p string) (path, literal string, ambiguous bool) {
	if plain(p) {
		return p, "", false
	}
	normalized := normalizePath(p)
	return normalized, literalPath(p, normalized), isAmbiguous(p)
}

// plain tells whether p is a path every reading leaves as it is: from "/",
// without escapes, parameters, backslashes, fragments, queries, repeated
// slashes or segments starting with a dot.
func plain(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 1; i < len(p); i++ {
		switch p[i] {
		case '%', ';', '\\', '#', '?':
			return false
		case '/', '.':
			if p[i-1] == '/' {
				return false
			}
		}
	}
	return true
}

// isAmbiguous tells whether upstreams read the path of uri in ways that
// neither normalizePath nor literalPath gives: an encoded slash or
// backslash together with a dot segment (Kestrel keeps the slash and
// resolves the dots, Werkzeug and uvicorn decode the slash and keep them),
// or a raw "#" (nginx passes it on in the path, Go's server keeps it there).
// The gate refuses such a request rather than guess; no client needs one.
func isAmbiguous(uri string) bool {
	path, _, _ := strings.Cut(uri, "?")
	if strings.IndexByte(path, '#') >= 0 {
		return true
	}
	if !strings.Contains(path, "%") || !strings.ContainsAny(path, "2f2F5c5C") {
		return false
	}
	decoded := unescape(path, false)
	if !strings.ContainsAny(decoded, "/\\") || decoded == unescape(path, true) {
		return false // no encoded slash
	}
	for seg := range strings.FieldsFuncSeq(decoded, isSlash) {
		if seg, _, _ = strings.Cut(seg, ";"); seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func isSlash(r rune) bool { return r == '/' || r == '\\' }

// unescape decodes every valid %XX of s and keeps an invalid one as it is,
// as lenient servers do: one bad escape must not keep the good ones encoded.
// With keepSlashes an encoded slash or backslash stays encoded.
func unescape(s string, keepSlashes bool) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			if c := unhex(s[i+1])<<4 | unhex(s[i+2]); !keepSlashes || c != '/' && c != '\\' {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
