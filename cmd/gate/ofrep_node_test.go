package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// nodeClient installs testdata/ofrep-node (the OpenFeature OFREP provider
// and server SDK, at the versions its lockfile pins) once per lockfile,
// under bin/node/, and returns the directory to run check.mjs in.
func nodeClient(t *testing.T) string {
	t.Helper()
	src := filepath.Join("testdata", "ofrep-node")
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	dst := filepath.Join(env.Root, "bin", "node", "ofrep-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"package.json", "package-lock.json", "check.mjs"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "node_modules", "@openfeature", "ofrep-provider")); err == nil {
		return dst
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dst
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing the Node OFREP client (npm ci in %s; hack/test-deps.sh installs Node): %v\n%s", dst, err, out)
	}
	return dst
}

// The official Node OFREP provider, through the OpenFeature server SDK,
// gets from the gate the values, variants and reasons the Go test expects
// of every case, sending its API key as a header.
func TestOFREPNodeProvider(t *testing.T) {
	dir := nodeClient(t)
	ns := applyOFREPFlags(t)
	kubectl(t, "", "create", "secret", "generic", "waygate-ofrep-keys", "-n", ns, "--from-literal=node=node-key")
	cases, err := filepath.Abs(filepath.Join("testdata", "ofrep-cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(key string) ([]byte, error) {
		cmd := exec.Command("node", "check.mjs", "http://"+gw.HTTP+"/ns/"+ns, cases, key)
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	// The Secret is in effect once a wrong key is refused.
	eventually(t, 10*time.Second, func() error {
		if a := ofrep(t, ns, "banner", `{}`); a.Status != http.StatusUnauthorized {
			return fmt.Errorf("the key Secret is not in effect yet: %s", a)
		}
		return nil
	})
	out, err := run("node-key")
	if err != nil {
		t.Fatalf("node check.mjs: %v\n%s", err, out)
	}
	var got []nodeResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line := sc.Bytes(); bytes.HasPrefix(line, []byte("{")) {
			var r nodeResult
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			got = append(got, r)
		}
	}
	want := ofrepCases(t)
	if len(got) != len(want) {
		t.Fatalf("the Node client printed %d results for %d cases:\n%s", len(got), len(want), out)
	}
	for i, w := range want {
		g := got[i]
		if g.ErrorCode != nil || !reflect.DeepEqual(g.Value, w.Value) || g.Variant != w.Variant || g.Reason != w.Reason {
			t.Errorf("%s %v through the Node OFREP provider: value %v variant %q reason %q error %v; want %v %q %q",
				w.Flag, w.Context, g.Value, g.Variant, g.Reason, g.ErrorCode, w.Value, w.Variant, w.Reason)
		}
	}
	if got[0].Metadata["maintainer"] != "payments-team" {
		t.Errorf("flag metadata through the Node SDK: %v", got[0].Metadata)
	}
	// Without its key the SDK gets the caller's default and an error.
	out, err = run("")
	if err != nil {
		t.Fatalf("node check.mjs without a key: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(`"reason":"ERROR"`)) {
		t.Errorf("without the key the Node client resolved:\n%s", out)
	}
}

// nodeResult is what check.mjs prints of one case.
type nodeResult struct {
	Flag      string         `json:"flag"`
	Value     any            `json:"value"`
	Variant   string         `json:"variant"`
	Reason    string         `json:"reason"`
	ErrorCode *string        `json:"errorCode"`
	Metadata  map[string]any `json:"metadata"`
}
