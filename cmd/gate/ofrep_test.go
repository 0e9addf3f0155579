package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/waygate-dev/waygate/internal/controlplane"
	"github.com/waygate-dev/waygate/internal/realservers"
)

// ofrepCase is one evaluation of testdata/ofrep-cases.json: what the gate
// must answer, over HTTP here and through the Node OFREP provider.
type ofrepCase struct {
	Flag    string         `json:"flag"`
	Type    string         `json:"type"`
	Context map[string]any `json:"context"`
	Value   any            `json:"value"`
	Variant string         `json:"variant"`
	Reason  string         `json:"reason"`
}

func ofrepCases(t *testing.T) []ofrepCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/ofrep-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []ofrepCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

// applyOFREPFlags applies testdata/ofrep-flags.yaml in a new namespace and
// waits until the gate serves its flags.
func applyOFREPFlags(t *testing.T) string {
	t.Helper()
	ns := env.Namespace(t, "gate")
	kubectl(t, "", "apply", "-n", ns, "-f", "testdata/ofrep-flags.yaml")
	eventually(t, 10*time.Second, func() error {
		if a := ofrep(t, ns, "banner", `{"context":{}}`); a.Status != http.StatusOK {
			return fmt.Errorf("banner: %s", a)
		}
		return nil
	})
	return ns
}

// ofrep posts body to the OFREP path after the namespace's base URL on the
// shared gate ("" for the bulk evaluation, else the flag's key).
func ofrep(t *testing.T, ns, key, body string, headers ...string) answer {
	t.Helper()
	return ofrepAt(t, gw.HTTP, ns, key, body, headers...)
}

// ofrepAt is ofrep on the gate serving OFREP at addr.
func ofrepAt(t *testing.T, addr, ns, key, body string, headers ...string) answer {
	t.Helper()
	url := "http://" + addr + "/ns/" + ns + "/ofrep/v1/evaluate/flags"
	if key != "" {
		url += "/" + key
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

type ofrepBody struct {
	Key          string         `json:"key"`
	Value        any            `json:"value"`
	Variant      string         `json:"variant"`
	Reason       string         `json:"reason"`
	ErrorCode    string         `json:"errorCode"`
	ErrorDetails string         `json:"errorDetails"`
	Metadata     map[string]any `json:"metadata"`
}

func decodeOFREP(t *testing.T, a answer, into any) {
	t.Helper()
	if ct := a.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q in %s", ct, a)
	}
	if err := json.Unmarshal([]byte(a.Body), into); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
}

func TestOFREPSingle(t *testing.T) {
	ns := applyOFREPFlags(t)
	for _, tc := range ofrepCases(t) {
		t.Run(fmt.Sprintf("%s %v", tc.Flag, tc.Context), func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"context": tc.Context})
			a := ofrep(t, ns, tc.Flag, string(body))
			if a.Status != http.StatusOK {
				t.Fatalf("%s", a)
			}
			var got ofrepBody
			decodeOFREP(t, a, &got)
			if got.Key != tc.Flag || !reflect.DeepEqual(got.Value, tc.Value) || got.Variant != tc.Variant || got.Reason != tc.Reason {
				t.Errorf("got %+v, want value %v variant %s reason %s", got, tc.Value, tc.Variant, tc.Reason)
			}
		})
	}
	a := ofrep(t, ns, "new-checkout", `{"context":{"targetingKey":"alice"}}`)
	var meta ofrepBody
	decodeOFREP(t, a, &meta)
	if meta.Metadata["maintainer"] != "payments-team" {
		t.Errorf("metadata %v, want the flag's maintainer", meta.Metadata)
	}

	errs := []struct {
		name, key, body string
		status          int
		code, details   string
	}{
		{"an unknown flag", "nope", `{"context":{"targetingKey":"a"}}`, http.StatusNotFound, "FLAG_NOT_FOUND", "no flag"},
		{"a rollout with no targeting key", "new-checkout", `{"context":{"email":"x@example.com"}}`, http.StatusBadRequest, "TARGETING_KEY_MISSING", "targetingKey"},
		{"a body that is not JSON", "theme", `{"context":`, http.StatusBadRequest, "INVALID_CONTEXT", `{"context": {...}}`},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			a := ofrep(t, ns, tc.key, tc.body)
			var got ofrepBody
			decodeOFREP(t, a, &got)
			if a.Status != tc.status || got.Key != tc.key || got.ErrorCode != tc.code || !strings.Contains(got.ErrorDetails, tc.details) {
				t.Errorf("%s, want %d with key %s, errorCode %s and details about %q", a, tc.status, tc.key, tc.code, tc.details)
			}
		})
	}
}

func TestOFREPBulkAndChanges(t *testing.T) {
	ns := applyOFREPFlags(t)
	ctx := `{"context":{"targetingKey":"dave","app_version":"2.1.0"}}`
	a := ofrep(t, ns, "", ctx)
	var bulk struct {
		Flags []ofrepBody `json:"flags"`
	}
	decodeOFREP(t, a, &bulk)
	etag := a.Header.Get("ETag")
	if a.Status != http.StatusOK || etag == "" || len(bulk.Flags) != 5 {
		t.Fatalf("bulk: %s, want 200 with an ETag and the 5 flags", a)
	}
	byKey := map[string]ofrepBody{}
	for _, f := range bulk.Flags {
		byKey[f.Key] = f
	}
	if f := byKey["theme"]; f.Value != "dark" || f.Reason != "TARGETING_MATCH" {
		t.Errorf("theme in bulk: %+v", f)
	}
	if f := byKey["page-size"]; f.Value != 20.0 || f.Reason != "DEFAULT" {
		t.Errorf("page-size in bulk: %+v", f)
	}

	// Nothing changed: 304, for this context only.
	if a := ofrep(t, ns, "", ctx, "If-None-Match", etag); a.Status != http.StatusNotModified || a.Body != "" {
		t.Errorf("the same flags and context with If-None-Match: %s, want 304 and no body", a)
	}
	if a := ofrep(t, ns, "", `{"context":{"targetingKey":"erin"}}`, "If-None-Match", etag); a.Status != http.StatusOK {
		t.Errorf("another context with the first's ETag: %s, want 200", a)
	}

	// A change made with kubectl is served, and the ETag changes.
	changed := time.Now()
	kubectl(t, "", "patch", "featureflag", "theme", "-n", ns, "--type", "merge", "-p", `{"spec":{"fallthrough":{"variation":"dark"}}}`)
	var took time.Duration
	eventually(t, 10*time.Second, func() error {
		var got ofrepBody
		a := ofrep(t, ns, "theme", `{"context":{"targetingKey":"dave","app_version":"1.0.0"}}`)
		decodeOFREP(t, a, &got)
		if got.Value != "dark" {
			return fmt.Errorf("theme after the patch: %s", a)
		}
		took = time.Since(changed)
		return nil
	})
	t.Logf("a kubectl patch was served by OFREP %s after kubectl was started", took.Round(time.Millisecond))
	if a := ofrep(t, ns, "", ctx, "If-None-Match", etag); a.Status != http.StatusOK || a.Header.Get("ETag") == etag {
		t.Errorf("after a change, the old ETag: %s, want 200 and a new ETag", a)
	}
	// A deleted flag is gone.
	kubectl(t, "", "delete", "featureflag", "banner", "-n", ns)
	eventually(t, 10*time.Second, func() error {
		if a := ofrep(t, ns, "banner", `{}`); a.Status != http.StatusNotFound {
			return fmt.Errorf("banner after delete: %s", a)
		}
		return nil
	})
}

func TestOFREPKeys(t *testing.T) {
	ns := applyOFREPFlags(t)
	body := `{"context":{"targetingKey":"erin"}}`
	if a := ofrep(t, ns, "banner", body); a.Status != http.StatusOK {
		t.Fatalf("no key Secret: %s, want 200 without a key", a)
	}
	kubectl(t, "", "create", "secret", "generic", "waygate-ofrep-keys", "-n", ns, "--from-literal=web=s3cret-web", "--from-literal=mobile=s3cret-mobile")
	eventually(t, 10*time.Second, func() error {
		if a := ofrep(t, ns, "banner", body); a.Status != http.StatusUnauthorized {
			return fmt.Errorf("with the key Secret and no key: %s, want 401", a)
		}
		return nil
	})
	a := ofrep(t, ns, "", body, "Authorization", "Bearer wrong")
	var got ofrepBody
	decodeOFREP(t, a, &got)
	if a.Status != http.StatusUnauthorized || !strings.Contains(got.ErrorDetails, "X-API-Key") || a.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("a wrong key: %s, want 401 saying how to send one", a)
	}
	for _, h := range [][]string{{"Authorization", "Bearer s3cret-web"}, {"X-API-Key", "s3cret-mobile"}} {
		if a := ofrep(t, ns, "banner", body, h...); a.Status != http.StatusOK {
			t.Errorf("%s: %s, want 200", h, a)
		}
	}
	// Other namespaces ask for no key.
	other := applyOFREPFlags(t)
	if a := ofrep(t, other, "banner", body); a.Status != http.StatusOK {
		t.Errorf("a namespace without the Secret: %s", a)
	}
	// Deleting the Secret opens the namespace again.
	kubectl(t, "", "delete", "secret", "waygate-ofrep-keys", "-n", ns)
	eventually(t, 10*time.Second, func() error {
		if a := ofrep(t, ns, "banner", body); a.Status != http.StatusOK {
			return fmt.Errorf("after deleting the Secret: %s", a)
		}
		return nil
	})
}

// A change to one namespace's flags recompiles that namespace only, and the
// operator's status writes recompile nothing.
func TestOFREPRecompilesTheChangedNamespaceOnly(t *testing.T) {
	var spaces []string
	for range 3 {
		spaces = append(spaces, applyOFREPFlags(t))
	}
	compiles := func() float64 {
		t.Helper()
		a := get(t, http.MethodGet, "http://"+gw.Metrics+"/metrics")
		m := regexp.MustCompile(`(?m)^waygate_gate_flag_compiles_total (\S+)$`).FindStringSubmatch(a.Body)
		if m == nil {
			t.Fatalf("no waygate_gate_flag_compiles_total in the gate's metrics")
		}
		n, _ := strconv.ParseFloat(m[1], 64)
		return n
	}
	// Settled: the operator has written the flags' status.
	time.Sleep(2 * time.Second)
	before := compiles()
	kubectl(t, "", "patch", "featureflag", "theme", "-n", spaces[1], "--type", "merge", "-p", `{"spec":{"fallthrough":{"variation":"dark"}}}`)
	eventually(t, 10*time.Second, func() error {
		var got ofrepBody
		a := ofrep(t, spaces[1], "theme", `{"context":{"targetingKey":"dave"}}`)
		decodeOFREP(t, a, &got)
		if got.Value != "dark" {
			return fmt.Errorf("theme after the patch: %s", a)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // the operator's status write comes and goes
	if n := compiles() - before; n != 1 {
		t.Errorf("a patch of one flag compiled %v namespaces, want 1", n)
	}
}

// Each namespace's keys open that namespace only; a key stored with a
// trailing newline, as `kubectl create secret --from-file` stores the
// content of a file, is the key without it.
func TestOFREPKeysBelongToTheirNamespace(t *testing.T) {
	shop, blog := applyOFREPFlags(t), applyOFREPFlags(t)
	kubectl(t, "", "create", "secret", "generic", "waygate-ofrep-keys", "-n", shop, "--from-literal=web=shop-key")
	file := filepath.Join(t.TempDir(), "web")
	if err := os.WriteFile(file, []byte("blog-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "", "create", "secret", "generic", "waygate-ofrep-keys", "-n", blog, "--from-file=web="+file)
	body := `{"context":{"targetingKey":"erin"}}`
	for _, ns := range []string{shop, blog} {
		eventually(t, 10*time.Second, func() error {
			if a := ofrep(t, ns, "banner", body); a.Status != http.StatusUnauthorized {
				return fmt.Errorf("%s with its key Secret and no key: %s, want 401", ns, a)
			}
			return nil
		})
	}
	cases := []struct {
		name, ns, key string
		status        int
	}{
		{"shop's key on shop", shop, "shop-key", http.StatusOK},
		{"blog's key, stored with a newline, on blog", blog, "blog-key", http.StatusOK},
		{"shop's key on blog", blog, "shop-key", http.StatusUnauthorized},
		{"blog's key on shop", shop, "blog-key", http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, h := range [][]string{{"X-API-Key", tc.key}, {"Authorization", "Bearer " + tc.key}} {
				if a := ofrep(t, tc.ns, "banner", body, h...); a.Status != tc.status {
					t.Errorf("%s: %s, want %d", h[0], a, tc.status)
				}
			}
		})
	}
}

// contextBody is an OFREP request body of exactly size bytes that the
// default limits accept when it is under the body cap: a targeting key and
// attributes of 4,000 bytes.
func contextBody(size int) string {
	var b strings.Builder
	b.WriteString(`{"context":{"targetingKey":"abuser"`)
	for i := 0; ; i++ {
		head := fmt.Sprintf(`,"p%d":"`, i)
		room := size - b.Len() - len(head) - len(`"}}`)
		if room <= 4000 {
			b.WriteString(head + strings.Repeat("x", room) + `"}}`)
			return b.String()
		}
		b.WriteString(head + strings.Repeat("x", 4000) + `"`)
	}
}

// contextOf is a body whose context is the targeting key and members.
func contextOf(members ...string) string {
	return `{"context":{"targetingKey":"erin"` + strings.Join(append([]string{""}, members...), ",") + `}}`
}

// values is n values in all: the targeting key and n-1 attributes.
func values(n int) string {
	var m []string
	for i := range n - 1 {
		m = append(m, fmt.Sprintf(`"a%d":%d`, i, i))
	}
	return contextOf(m...)
}

// nested is a context nesting objects depth levels deep (the context is
// the first).
func nested(depth int) string {
	return contextOf(`"n":` + strings.Repeat(`{"n":`, depth-1) + "1" + strings.Repeat("}", depth-1))
}

// OFREP refuses, at its documented defaults, what costs the gate more than
// a real client needs; a namespace without flags is answered without its
// body being read.
func TestOFREPLimits(t *testing.T) {
	ns := applyOFREPFlags(t)
	const maxBody = 64 << 10
	// Under the cap and over every other limit: refused where it is read.
	junk := `{"context":` + strings.Repeat("[", 60<<10)
	cases := []struct {
		name, ns, key, body string
		status              int
		code, details       string
	}{
		{"a body at the cap", ns, "banner", contextBody(maxBody), http.StatusOK, "", ""},
		{"a body over the cap", ns, "banner", contextBody(maxBody + 1), http.StatusRequestEntityTooLarge, "", "--ofrep-max-body-bytes"},
		{"a bulk body over the cap", ns, "", contextBody(maxBody + 1), http.StatusRequestEntityTooLarge, "", "--ofrep-max-body-bytes"},
		{"256 values", ns, "banner", values(256), http.StatusOK, "", ""},
		{"257 values", ns, "banner", values(257), http.StatusBadRequest, "INVALID_CONTEXT", "--ofrep-max-context-attributes"},
		{"257 values in a list", ns, "banner", contextOf(`"l":[` + strings.Repeat("0,", 254) + "0]"), http.StatusBadRequest, "INVALID_CONTEXT", "--ofrep-max-context-attributes"},
		{"257 values, bulk", ns, "", values(257), http.StatusBadRequest, "INVALID_CONTEXT", "--ofrep-max-context-attributes"},
		{"4 levels", ns, "banner", nested(4), http.StatusOK, "", ""},
		{"5 levels", ns, "banner", nested(5), http.StatusBadRequest, "INVALID_CONTEXT", "--ofrep-max-context-depth"},
		{"a string of 4096 bytes", ns, "banner", contextOf(`"s":"` + strings.Repeat("x", 4096) + `"`), http.StatusOK, "", ""},
		{"a string of 4097 bytes", ns, "banner", contextOf(`"s":"` + strings.Repeat("x", 4097) + `"`), http.StatusBadRequest, "INVALID_CONTEXT", "--ofrep-max-string-bytes"},
		{"a key of 4097 bytes", ns, "banner", contextOf(`"` + strings.Repeat("k", 4097) + `":1`), http.StatusBadRequest, "INVALID_CONTEXT", "--ofrep-max-string-bytes"},
		{"junk where there are flags", ns, "banner", junk, http.StatusBadRequest, "INVALID_CONTEXT", "--ofrep-max-context-depth"},
		{"junk to a namespace without flags", "no-flags-here", "banner", junk, http.StatusNotFound, "FLAG_NOT_FOUND", ""},
		{"junk to a namespace without flags, bulk", "no-flags-here", "", junk, http.StatusOK, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := ofrep(t, tc.ns, tc.key, tc.body)
			var got struct {
				ofrepBody
				Flags *[]ofrepBody `json:"flags"`
			}
			decodeOFREP(t, a, &got)
			if a.Status != tc.status || got.ErrorCode != tc.code || !strings.Contains(got.ErrorDetails, tc.details) {
				t.Errorf("%d %s, want %d %s with details naming %q", a.Status, cut(a.Body), tc.status, tc.code, tc.details)
			}
			if tc.status == http.StatusOK && tc.key == "" && (got.Flags == nil || len(*got.Flags) != 0) {
				t.Errorf("bulk: %s, want no flags", cut(a.Body))
			}
		})
	}
}

// cut shortens s for a message.
func cut(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// A hostile client firing the largest OFREP requests from many connections
// at once cannot take the gate past the memory limit its manifest sets,
// nor keep forward-auth (same process) from answering.
func TestOFREPAbuse(t *testing.T) {
	limit := manifestMemoryLimit(t)
	ns := applyOFREPFlags(t)
	cases := []struct {
		name    string
		ownPort bool
		args    []string
		want429 bool
	}{
		{"OFREP on the forward-auth port, the default", false, nil, false},
		{"OFREP on its own port, as config/gate serves it", true, nil, false},
		{"one OFREP request in flight", true, []string{"--ofrep-max-in-flight=1"}, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			var ofrepAddr string
			if tc.ownPort {
				ofrepAddr = realservers.FreeAddr(t)
				args = append(args, "--ofrep-bind-address", ofrepAddr)
			}
			g, err := env.StartGate(context.Background(), gateBin, t.TempDir(), fmt.Sprint("abuse-", i), "", args...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(g.Stop)
			if !tc.ownPort {
				ofrepAddr = g.HTTP
			}
			eventually(t, 10*time.Second, func() error {
				if a := ofrepAt(t, ofrepAddr, ns, "banner", `{"context":{}}`); a.Status != http.StatusOK {
					return fmt.Errorf("banner: %s", a)
				}
				return nil
			})
			if tc.ownPort {
				// Each port says where the other protocol is.
				if a := ofrepAt(t, g.HTTP, ns, "banner", `{}`); a.Status != http.StatusNotFound || !strings.Contains(a.Body, "--ofrep-bind-address") {
					t.Errorf("OFREP on the forward-auth port: %s, want 404 naming the OFREP port", a)
				}
				if a := check(t, &controlplane.Gate{HTTP: ofrepAddr}, ns, "api", "GET", "/"); a.Status != http.StatusNotFound || !strings.Contains(a.Body, "--http-bind-address") {
					t.Errorf("forward-auth on the OFREP port: %s, want 404 naming the forward-auth port", a)
				}
			}
			load := abuse(t, g, ofrepAddr, ns)
			peak := peakRSS(t, g.Pid)
			t.Logf("gate peak RSS %d MiB (limit %d MiB); OFREP answers %v; forward-auth %d checks, p50 %s, p99 %s, max %s",
				peak>>20, limit>>20, load.ofrep, len(load.checks), load.percentile(50), load.percentile(99), load.percentile(100))
			if peak >= limit {
				t.Errorf("the gate's peak RSS %d MiB reached the %d MiB its manifest allows", peak>>20, limit>>20)
			}
			if load.ofrep["200 at-cap"] == 0 || load.ofrep["413 over-cap"] == 0 {
				t.Errorf("OFREP answers %v: want bodies at the cap evaluated (200) and bodies over it answered 413", load.ofrep)
			}
			if n := load.ofrep["200 over-cap"]; n > 0 {
				t.Errorf("%d bodies over the cap were evaluated", n)
			}
			if got := load.ofrep["429"] > 0; got != tc.want429 {
				t.Errorf("429 answered: %v, want %v (answers %v)", got, tc.want429, load.ofrep)
			}
			if load.ofrep["429 without Retry-After"] > 0 {
				t.Errorf("%d answers 429 had no Retry-After", load.ofrep["429 without Retry-After"])
			}
			if load.failedChecks > 0 || len(load.checks) < 50 {
				t.Errorf("forward-auth answered %d checks and failed %d (%s), want every check answered", len(load.checks), load.failedChecks, load.firstFailure)
			}
			if p99 := load.percentile(99); p99 > maxCheckP99 {
				t.Errorf("forward-auth p99 %s under OFREP abuse, want at most %s", p99, maxCheckP99)
			}
		})
	}
}

// maxCheckP99 bounds forward-auth's p99 while OFREP is abused: well within
// the timeouts gateways give an auth request (Envoy's ext_authz, the
// tightest, defaults to 200 ms), on a 2-core machine that the gate shares
// with the abusing clients (niced: they stand for other machines), the API
// server and the checker.
const maxCheckP99 = 200 * time.Millisecond

// abuseLoad is what the abuse saw: OFREP answers as ofrep-abuse counts
// them, and the time of each forward-auth check answered.
type abuseLoad struct {
	ofrep        map[string]int
	checks       []time.Duration
	failedChecks int
	firstFailure string
}

func (l *abuseLoad) percentile(p int) time.Duration {
	if len(l.checks) == 0 {
		return 0
	}
	s := slices.Clone(l.checks)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

var (
	abuseBinOnce sync.Once
	abuseBin     string
	abuseBinErr  error
)

// abuse runs testdata/ofrep-abuse for 3 seconds, 64 connections sending
// bulk evaluations in turn with a body at the cap (the most work the gate
// accepts, "at-cap") and a body of almost 4 MiB ("over-cap": the most
// fasthttp reads by default, so the most an unbounded gate took), while
// this process asks forward-auth every 5 ms.
func abuse(t *testing.T, g *controlplane.Gate, ofrepAddr, ns string) *abuseLoad {
	t.Helper()
	abuseBinOnce.Do(func() {
		abuseBin = filepath.Join(dir, "ofrep-abuse")
		if out, err := exec.Command("go", "build", "-o", abuseBin, "./testdata/ofrep-abuse").CombinedOutput(); err != nil {
			abuseBinErr = fmt.Errorf("building testdata/ofrep-abuse: %w\n%s", err, out)
		}
	})
	if abuseBinErr != nil {
		t.Fatal(abuseBinErr)
	}
	bodies := t.TempDir()
	atCap, overCap := filepath.Join(bodies, "at-cap"), filepath.Join(bodies, "over-cap")
	for f, size := range map[string]int{atCap: 64 << 10, overCap: 4<<20 - 4<<10} {
		if err := os.WriteFile(f, []byte(contextBody(size)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	cmd := exec.Command("nice", "-n", "19", abuseBin, "-clients", "64", "-per-client", "400", "-duration", "3s",
		"-url", "http://"+ofrepAddr+"/ns/"+ns+"/ofrep/v1/evaluate/flags", "-body", atCap, "-body", overCap)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	load := &abuseLoad{}
	checker := &http.Client{Timeout: 5 * time.Second}
	for running := true; running; {
		req, _ := http.NewRequest(http.MethodGet, "http://"+g.HTTP+"/v1/check/"+ns+"/api", nil)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", "/")
		start := time.Now()
		resp, err := checker.Do(req)
		took := time.Since(start)
		switch {
		case err != nil:
			load.failedChecks++
			load.firstFailure = cmp.Or(load.firstFailure, err.Error())
		case resp.StatusCode != http.StatusOK:
			load.failedChecks++
			load.firstFailure = cmp.Or(load.firstFailure, resp.Status)
		default:
			load.checks = append(load.checks, took)
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("ofrep-abuse: %v", err)
			}
			running = false
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := json.Unmarshal(out.Bytes(), &load.ofrep); err != nil {
		t.Fatalf("ofrep-abuse printed %q: %v", out.String(), err)
	}
	return load
}

// manifestMemoryLimit is the memory limit config/gate/gate.yaml sets the
// gate's container.
func manifestMemoryLimit(t *testing.T) int64 {
	t.Helper()
	raw, err := env.Render(filepath.Join(env.Root, "config", "gate", "gate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			t.Fatalf("config/gate/gate.yaml sets the container gate no memory limit (%v)", err)
		}
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			c, _ := c.(map[string]any)
			limit, _, _ := unstructured.NestedString(c, "resources", "limits", "memory")
			if c["name"] == "gate" && limit != "" {
				q, err := resource.ParseQuantity(limit)
				if err != nil {
					t.Fatalf("config/gate/gate.yaml: the gate's memory limit %q: %v", limit, err)
				}
				return q.Value()
			}
		}
	}
}

// peakRSS is the most memory process pid has held (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// Forward-auth reads the big cookies gateways pass on (fasthttp's default
// 4 KiB would answer them 431, which nginx turns into a 500) up to
// --http-max-header-bytes, and no body worth speaking of.
func TestForwardAuthRequestLimits(t *testing.T) {
	ns := env.Namespace(t, "gate")
	cases := []struct {
		name       string
		cookie     int // bytes
		body       int
		status     int
		code, says string
	}{
		{"a 20 KiB cookie", 20 << 10, 0, http.StatusOK, "", ""},
		{"a 40 KiB cookie", 40 << 10, 0, http.StatusRequestHeaderFieldsTooLarge, "HEADERS_TOO_LARGE", "--http-max-header-bytes"},
		{"a body of 4 KiB", 0, 4 << 10, http.StatusOK, "", ""},
		{"a body of 8 KiB", 0, 8 << 10, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", "proxy_pass_request_body off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://"+gw.HTTP+"/v1/check/"+ns+"/api", strings.NewReader(strings.Repeat("x", tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Forwarded-Method", "GET")
			req.Header.Set("X-Forwarded-Uri", "/")
			if tc.cookie > 0 {
				req.Header.Set("Cookie", "session="+strings.Repeat("c", tc.cookie))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			a := answer{resp.StatusCode, resp.Header, string(body)}
			if a.Status != tc.status || a.code() != tc.code || !strings.Contains(a.Body, tc.says) {
				t.Errorf("%d %s, want %d %s saying %q", a.Status, a.Body, tc.status, tc.code, tc.says)
			}
		})
	}
}
