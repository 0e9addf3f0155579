package dataplane

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/waygate-dev/waygate/pkg/flags"
)

// The scan refuses contexts over a limit, and only those, before anything
// is decoded.
func TestCheckContext(t *testing.T) {
	small := OFREPLimits{MaxAttributes: 3, MaxDepth: 2, MaxStringBytes: 5}
	cases := []struct {
		name string
		body string
		want string // the flag the error names; "" for none
	}{
		{"flat, at the limits", `{"context":{"a":1,"bb":"12345","c":true}}`, ""},
		{"one attribute too many", `{"context":{"a":1,"b":2,"c":3,"d":4}}`, "--ofrep-max-context-attributes"},
		{"list elements count", `{"context":{"a":[1,2,3]}}`, "--ofrep-max-context-attributes"},
		{"nested members count", `{"context":{"a":{"b":1,"c":2,"d":3}}}`, "--ofrep-max-context-attributes"},
		{"an empty list counts once", `{"context":{"a":[],"b":{}}}`, ""},
		{"the wrapper's members do not count", `{"x":1,"y":2,"z":3,"w":4,"context":{"a":1}}`, ""},
		{"two levels", `{"context":{"a":{"b":1}}}`, ""},
		{"three levels", `{"context":{"a":{"b":{"c":1}}}}`, "--ofrep-max-context-depth"},
		{"lists nest too", `{"context":{"a":[[1]]}}`, "--ofrep-max-context-depth"},
		{"depth beside the context", `{"context":{},"x":[[[[]]]]}`, "--ofrep-max-context-depth"},
		{"a long string", `{"context":{"a":"123456"}}`, "--ofrep-max-string-bytes"},
		{"a long key", `{"context":{"abcdef":1}}`, "--ofrep-max-string-bytes"},
		{"a long number", `{"context":{"a":123456}}`, "--ofrep-max-string-bytes"},
		{"brackets in a string are text", `{"context":{"a":"[[{{"}}`, ""},
		{"an escaped quote does not end a string", `{"context":{"a":"\"[[[["}}`, "--ofrep-max-string-bytes"},
		{"an escaped backslash ends before the quote", `{"context":{"a":"\\","b":[[1]]}}`, "--ofrep-max-context-depth"},
		{"whitespace", "{ \"context\" :\n { \"a\" : [ 1 , 2 ] } }", ""},
		{"not JSON: the decoder says so", `]]]]`, ""},
		{"unterminated: the decoder says so", `{"context":{"a":"xx`, ""},
		{"empty", ``, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := small.checkContext([]byte(tc.body))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
	// A context a real SDK sends is far within the defaults.
	typical := `{"context":{"targetingKey":"user-123","kind":"user","email":"a@example.com","country":"US","plan":"pro","app_version":"2.1.0","tags":["beta","staff"],"device":{"os":"ios","version":17}}}`
	if err := DefaultOFREPLimits.checkContext([]byte(typical)); err != nil {
		t.Errorf("a real context refused by the defaults: %v", err)
	}
}

// A namespace without flags is answered without reading the body; one with
// flags reads it, within the limits; requests over the in-flight limit are
// answered 429.
func TestOFREPHandle(t *testing.T) {
	set := &FlagSet{}
	set.p.Store(&map[string]*namespaceFlags{"shop": {snap: flags.Compile(nil, nil)}})
	junk := `{"context":{"a":[[[[[[[[1]]]]]]]]}}` // too deep, and unused where no flag is
	cases := []struct {
		name, path, body string
		inFlight         int64
		status           int
		errorCode        string
		details          string
	}{
		{"unknown namespace, one flag", "/ns/nowhere/ofrep/v1/evaluate/flags/x", junk, 0, http.StatusNotFound, "FLAG_NOT_FOUND", ""},
		{"unknown namespace, every flag", "/ns/nowhere/ofrep/v1/evaluate/flags", junk, 0, http.StatusOK, "", ""},
		{"a namespace with flags reads the body", "/ns/shop/ofrep/v1/evaluate/flags/x", junk, 0, http.StatusBadRequest, "INVALID_CONTEXT", "--ofrep-max-context-depth"},
		{"bulk too", "/ns/shop/ofrep/v1/evaluate/flags", junk, 0, http.StatusBadRequest, "INVALID_CONTEXT", "--ofrep-max-context-depth"},
		{"not JSON", "/ns/shop/ofrep/v1/evaluate/flags", `{"context":`, 0, http.StatusBadRequest, "INVALID_CONTEXT", `{"context": {...}}`},
		{"one below the in-flight limit", "/ns/shop/ofrep/v1/evaluate/flags/x", `{}`, 1, http.StatusNotFound, "FLAG_NOT_FOUND", ""},
		{"at the in-flight limit", "/ns/shop/ofrep/v1/evaluate/flags/x", `{}`, 2, http.StatusTooManyRequests, "", "--ofrep-max-in-flight"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &OFREP{Flags: set, Limits: DefaultOFREPLimits}
			o.Limits.MaxInFlight = 2
			o.inFlight.Store(tc.inFlight)
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(http.MethodPost)
			ctx.Request.SetRequestURI(tc.path)
			ctx.Request.SetBodyString(tc.body)
			o.Handle(&ctx)
			var got struct {
				ErrorCode    string `json:"errorCode"`
				ErrorDetails string `json:"errorDetails"`
				Flags        []any  `json:"flags"`
			}
			if err := json.Unmarshal(ctx.Response.Body(), &got); err != nil {
				t.Fatalf("%s: %v", ctx.Response.Body(), err)
			}
			if ctx.Response.StatusCode() != tc.status || got.ErrorCode != tc.errorCode || !strings.Contains(got.ErrorDetails, tc.details) {
				t.Errorf("%d %s, want %d %s with details naming %q", ctx.Response.StatusCode(), ctx.Response.Body(), tc.status, tc.errorCode, tc.details)
			}
			if tc.status == http.StatusTooManyRequests && string(ctx.Response.Header.Peek("Retry-After")) != "1" {
				t.Errorf("429 without Retry-After: 1")
			}
			if n := o.inFlight.Load(); n != tc.inFlight {
				t.Errorf("%d in flight after the request, want %d as before it", n, tc.inFlight)
			}
		})
	}
}
