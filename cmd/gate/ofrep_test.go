package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
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
	ns := namespace(t)
	kubectl(t, "", "apply", "-n", ns, "-f", "testdata/ofrep-flags.yaml")
	eventually(t, 10*time.Second, func() error {
		if a := ofrep(t, ns, "banner", `{"context":{}}`); a.Status != http.StatusOK {
			return fmt.Errorf("banner: %s", a)
		}
		return nil
	})
	return ns
}

// ofrep posts body to the OFREP path after the namespace's base URL
// ("" for the bulk evaluation, else the flag's key).
func ofrep(t *testing.T, ns, key, body string, headers ...string) answer {
	t.Helper()
	url := "http://" + gw.HTTP + "/ns/" + ns + "/ofrep/v1/evaluate/flags"
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
