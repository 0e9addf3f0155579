package flags

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultKind is the kind of a context that names none.
const DefaultKind = "user"

// Context is what a flag is evaluated for: OpenFeature's evaluation context.
type Context struct {
	// Key identifies the context (OpenFeature targetingKey): individual
	// targets, segments and rollouts use it.
	Key string
	// Kind is the kind of thing Key names; "" is DefaultKind.
	Kind string
	// Attributes are the rest of the context, such as "email", "country" or
	// "app_version": strings, numbers, booleans, times (time.Time, an RFC
	// 3339 string or Unix seconds) and lists of them (for in and not_in).
	Attributes map[string]any
}

// NewContext reads an OpenFeature evaluation context as OFREP and the SDKs
// carry it: "targetingKey" (or "key") and "kind" set Key and Kind, the rest
// are attributes.
func NewContext(values map[string]any) *Context {
	ctx := &Context{Attributes: values}
	for _, name := range []string{"targetingKey", "key"} {
		if k, ok := values[name].(string); ok && k != "" {
			ctx.Key = k
			break
		}
	}
	if k, ok := values["kind"].(string); ok {
		ctx.Kind = k
	}
	return ctx
}

// ParseContext reads an evaluation context written as ATTRIBUTE=VALUE
// pairs, as people type it ("key=alice", "country=US"): "key" names the
// targeting key, every value is a string (operators read numbers, times
// and versions from strings).
func ParseContext(pairs []string) (map[string]any, error) {
	values := map[string]any{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: write ATTRIBUTE=VALUE, such as key=alice or country=US", p)
		}
		if k == "key" {
			k = "targetingKey"
		}
		values[k] = v
	}
	return values, nil
}

// kind is the context's kind, DefaultKind when it names none.
func (c *Context) kind() string {
	if c.Kind == "" {
		return DefaultKind
	}
	return c.Kind
}

// attribute reads a clause's attribute: "key" and "targetingKey" are Key,
// "kind" is the kind, anything else an attribute.
func (c *Context) attribute(name string) (any, bool) {
	switch name {
	case "key", "targetingKey":
		return c.Key, c.Key != ""
	case "kind":
		return c.kind(), true
	}
	v, ok := c.Attributes[name]
	return v, ok && v != nil
}

// stringOf reads an attribute as the strings clause values are: strings as
// they are, booleans and numbers as JSON writes them.
func stringOf(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		return string(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	}
	return "", false
}

// numberOf reads an attribute as a number: any Go number, a json.Number, or
// a string that parses as one.
func numberOf(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int32:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint:
		return float64(v), true
	case uint64:
		return float64(v), true
	case json.Number:
		n, err := v.Float64()
		return n, err == nil
	case string:
		n, err := strconv.ParseFloat(v, 64)
		return n, err == nil
	}
	return 0, false
}

// timeOf reads an attribute as a time: a time.Time, an RFC 3339 string, or
// a number of seconds since the Unix epoch.
func timeOf(v any) (time.Time, bool) {
	switch v := v.(type) {
	case time.Time:
		return v, true
	case string:
		t, err := time.Parse(time.RFC3339, v)
		return t, err == nil
	}
	if n, ok := numberOf(v); ok {
		sec := int64(n)
		return time.Unix(sec, int64((n-float64(sec))*1e9)), true
	}
	return time.Time{}, false
}
