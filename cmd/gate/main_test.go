package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// One control plane, operator and gate binary for the package; the gate
// shared by most tests serves the environment "production". Each test works
// in its own namespace (env.Namespace).
var (
	env        *operatortest.Env
	k8s        client.Client
	gateBin    string
	dir        string
	gw         *controlplane.Gate
	kubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(operatortest.Run(operatortest.RunInput{M: m, Setup: setup, OnFailure: func() {
		if log, err := os.ReadFile(gw.Log); err == nil {
			fmt.Fprintf(os.Stderr, "--- the shared gate's log:\n%s", log)
		}
	}}))
}

// setup builds the gate binary that ships from this package, and starts the
// shared gate.
func setup(e *operatortest.Env) (func(), error) {
	env, k8s = e, e.Client
	var err error
	if dir, err = os.MkdirTemp("", "waygate-gate"); err != nil {
		return nil, err
	}
	removeDir := func() { _ = os.RemoveAll(dir) }
	gateBin = filepath.Join(dir, "gate")
	if out, err := exec.Command("go", "build", "-o", gateBin, ".").CombinedOutput(); err != nil {
		return removeDir, fmt.Errorf("building the gate: %w\n%s", err, out)
	}
	kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := controlplane.WriteKubeconfig(env.Admin, kubeconfig); err != nil {
		return removeDir, err
	}
	if gw, err = env.StartGate(context.Background(), gateBin, dir, "gate", ""); err != nil {
		return removeDir, err
	}
	return func() { gw.Stop(); removeDir() }, nil
}

// kubectl runs kubectl as the admin, with stdin.
func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := runKubectl(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runKubectl(stdin string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(controlplane.AssetsDir(env.Root), "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

var eventually = operatortest.Eventually

// answer is a response as a client (or gateway) sees it.
type answer struct {
	Status int
	Header http.Header
	Body   string
}

// code is the body's error.code.
func (a answer) code() string {
	var b struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(a.Body), &b)
	return b.Error.Code
}

func (a answer) String() string {
	return fmt.Sprintf("%d %v %s", a.Status, a.Header, a.Body)
}

// get sends method url with headers (pairs).
func get(t *testing.T, method, url string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(body)}
}

// check asks gate g about method uri in ns/service, as Traefik or Caddy
// would.
func check(t *testing.T, g *controlplane.Gate, ns, service, method, uri string, headers ...string) answer {
	t.Helper()
	return get(t, http.MethodGet, "http://"+g.HTTP+"/v1/check/"+ns+"/"+service,
		append([]string{"X-Forwarded-Method", method, "X-Forwarded-Uri", uri}, headers...)...)
}

// waitFor polls ask until its answer has status and error code.
func waitFor(t *testing.T, status int, code string, ask func() answer) answer {
	t.Helper()
	var got answer
	eventually(t, 10*time.Second, func() error {
		got = ask()
		if got.Status != status || got.code() != code {
			return fmt.Errorf("got %s, want %d %s", got, status, code)
		}
		return nil
	})
	return got
}
