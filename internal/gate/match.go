package gate

import (
	"net/url"
	"path"
	"strings"
)

// method is an HTTP method as an index, so that a route's entries per method
// are an array rather than a map.
type method uint8

// The methods a route key may name; methodOther is any other (never named by
// a key, so only method-less keys match it).
const (
	methodGET method = iota
	methodHEAD
	methodPOST
	methodPUT
	methodPATCH
	methodDELETE
	methodOPTIONS
	methodTRACE
	methodCONNECT
	methodOther
	numMethods
)

func methodOf(m string) method {
	switch m {
	case "GET":
		return methodGET
	case "HEAD":
		return methodHEAD
	case "POST":
		return methodPOST
	case "PUT":
		return methodPUT
	case "PATCH":
		return methodPATCH
	case "DELETE":
		return methodDELETE
	case "OPTIONS":
		return methodOPTIONS
	case "TRACE":
		return methodTRACE
	case "CONNECT":
		return methodCONNECT
	}
	return methodOther
}

// router finds the value of the route key that matches a request best. Keys
// are "METHOD:/path" or "/path"; a path segment written {name} matches any one
// segment, and a last segment {name...} matches the rest of the path (also
// nothing). The most specific path wins: segment by segment from the left, a
// literal before {name} before {name...}; within that path a key for the
// request's method wins over a key for every method.
type router[T any] struct {
	root node[T]
	size int
}

type node[T any] struct {
	literal map[string]*node[T]
	param   *node[T]
	rest    *node[T]
	// byMethod holds the values of "METHOD:/path" keys, any the value of the
	// "/path" key.
	byMethod [numMethods]*T
	any      *T
}

// add sets the value of key, replacing the value of the same key.
func (r *router[T]) add(key string, v *T) {
	m, p := methodOther, key
	if i := strings.Index(key, ":/"); i >= 0 {
		m, p = methodOf(key[:i]), key[i+1:]
	}
	n := &r.root
	for p = strings.TrimPrefix(p, "/"); p != ""; {
		var seg string
		seg, p = cutSegment(p)
		switch {
		case seg == "": // "//" has no segment between the slashes
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "...}"):
			if n.rest == nil {
				n.rest = &node[T]{}
			}
			n = n.rest
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			if n.param == nil {
				n.param = &node[T]{}
			}
			n = n.param
		default:
			if n.literal == nil {
				n.literal = map[string]*node[T]{}
			}
			c := n.literal[seg]
			if c == nil {
				c = &node[T]{}
				n.literal[seg] = c
			}
			n = c
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

// match returns the value of the best key for a request, or nil. reqPath is
// the request's path (a query is ignored), as NormalizePath leaves it.
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
	return n.any
}

// cutSegment splits "a/b/c" into "a" and "b/c". A trailing slash leaves no
// segment behind it: "/payments/" is "/payments".
func cutSegment(p string) (seg, rest string) {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return p, ""
}

// NormalizePath is the path of a request URI as the upstream will route it:
// without query or fragment, percent-decoded, with "." and ".." segments
// resolved and repeated slashes collapsed, so that /%61dmin or
// /public/../admin cannot slip past a gate on /admin. A path that needs
// none of that is returned as it is, without allocating.
func NormalizePath(uri string) string {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
		if u, err := url.Parse(uri); err == nil {
			uri = u.EscapedPath()
		}
	}
	if !needsCleaning(uri) {
		return uri
	}
	if strings.IndexByte(uri, '%') >= 0 {
		if d, err := url.PathUnescape(uri); err == nil {
			uri = d
		}
	}
	if uri == "" || uri[0] != '/' {
		uri = "/" + uri
	}
	return path.Clean(uri)
}

func needsCleaning(p string) bool {
	if p == "" || p[0] != '/' || strings.IndexByte(p, '%') >= 0 || strings.Contains(p, "//") {
		return true
	}
	return strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
}
