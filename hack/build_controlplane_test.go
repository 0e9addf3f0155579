// Package hack holds the tests of the developer scripts in this directory.
package hack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildControlplaneKubectl runs build-controlplane.sh with a fake go,
// which "builds" empty binaries, and a fake kubectl on PATH that reports a
// version: a kubectl within one minor of the control plane is linked, any
// other is built.
func TestBuildControlplaneKubectl(t *testing.T) {
	tests := []struct {
		name    string
		kubectl string // the fake kubectl's script; "" for no kubectl on PATH
		linked  bool
		says    string
	}{
		{"the same version", reports("v1.37.2"), true, "using kubectl v1.37.2 from "},
		{"one minor older, from a vendor", reports("v1.36.4-gke.100"), true, "using kubectl v1.36.4-gke.100 from "},
		{"one minor newer", reports("v1.38.0"), true, "using kubectl v1.38.0 from "},
		{"two minors older", reports("v1.35.9"), false, "is not within one minor of v1.37.2: building kubectl v1.37.2"},
		{"two minors newer", reports("v1.39.1"), false, "is not within one minor of v1.37.2: building kubectl v1.37.2"},
		{"another major", reports("v2.37.0"), false, "is not within one minor of v1.37.2: building kubectl v1.37.2"},
		{"built without a version", reports("v0.0.0-master+$Format:%H$"), false, "is not within one minor of v1.37.2: building kubectl v1.37.2"},
		{"no JSON output", "echo 'error: unknown flag: --output' >&2; exit 1", false, "does not report its version"},
		{"none on PATH", "", false, "no kubectl on PATH: building kubectl v1.37.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScriptRun(t)
			if tt.kubectl != "" {
				s.fake("kubectl", tt.kubectl)
			}
			stderr := s.run()
			if !strings.Contains(stderr, tt.says) {
				t.Errorf("stderr does not say %q:\n%s", tt.says, stderr)
			}
			s.assertKubectl(tt.linked)
		})
	}
}

// TestBuildControlplaneRechecksLinkedKubectl: a linked kubectl that has left
// the version skew since (upgraded on PATH) is replaced by a built one; once
// all binaries are there, a run says nothing.
func TestBuildControlplaneRechecksLinkedKubectl(t *testing.T) {
	s := newScriptRun(t)
	s.fake("kubectl", reports("v1.37.0"))
	s.run()
	s.assertKubectl(true)

	s.fake("kubectl", reports("v1.40.0"))
	if stderr := s.run(); !strings.Contains(stderr, "which is v1.40.0 now, not within one minor of v1.37.2: choosing again") {
		t.Errorf("stderr does not say the linked kubectl is replaced:\n%s", stderr)
	}
	s.assertKubectl(false)

	if stderr := s.run(); stderr != "" {
		t.Errorf("a run with every binary there says:\n%s", stderr)
	}
}

// reports is a fake kubectl that reports version as kubectl does, minor
// with a vendor's "+" included.
func reports(version string) string {
	minor := strings.SplitN(version, ".", 3)[1] + "+"
	return fmt.Sprintf(`[ "$*" = "version --client -o json" ] || exit 2
cat <<'EOF'
{
  "clientVersion": {
    "major": "1",
    "minor": %q,
    "gitVersion": %q,
    "gitTreeState": "clean",
    "platform": "linux/amd64"
  },
  "kustomizeVersion": "v5.7.1"
}
EOF`, minor, version)
}

type scriptRun struct {
	t *testing.T
	// bin is the whole PATH, so that the machine's own kubectl stays out of sight.
	bin, assets  string
	bash, script string
}

func newScriptRun(t *testing.T) *scriptRun {
	dir := t.TempDir()
	s := &scriptRun{t: t, bin: filepath.Join(dir, "bin"), assets: filepath.Join(dir, "k8s")}
	script, err := filepath.Abs("build-controlplane.sh")
	if err != nil {
		t.Fatal(err)
	}
	s.script = script
	if err := os.Mkdir(s.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"bash", "sed", "cat", "chmod", "dirname", "mkdir", "ln", "mv", "rm", "readlink", "sleep"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(s.bin, tool)); err != nil {
			t.Fatal(err)
		}
		if tool == "bash" {
			s.bash = p
		}
	}
	// go build ... -o FILE: writes an empty program to FILE.
	s.fake("go", `while [ $# -gt 0 ]; do [ "$1" = -o ] && { printf '#!/bin/sh\n' >"$2"; chmod +x "$2"; }; shift; done`)
	return s
}

// fake writes an executable shell script name into bin.
func (s *scriptRun) fake(name, body string) {
	p := filepath.Join(s.bin, name)
	_ = os.Remove(p)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		s.t.Fatal(err)
	}
}

// run runs the script and returns what it wrote to stderr; it fails the test
// if the script fails or writes to stdout.
func (s *scriptRun) run() string {
	s.t.Helper()
	cmd := exec.Command(s.bash, s.script)
	cmd.Env = []string{"PATH=" + s.bin, "K8S_VERSION=1.37.2", "KUBEBUILDER_ASSETS=" + s.assets}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("build-controlplane.sh: %v\n%s", err, stderr.String())
	}
	if stdout.Len() > 0 {
		s.t.Errorf("build-controlplane.sh wrote to stdout:\n%s", stdout.String())
	}
	return stderr.String()
}

// assertKubectl checks that the assets hold kube-apiserver and etcd, and a
// kubectl that is a link to the one on PATH or, if not linked, built.
func (s *scriptRun) assertKubectl(linked bool) {
	s.t.Helper()
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if fi, err := os.Lstat(filepath.Join(s.assets, name)); err != nil || !fi.Mode().IsRegular() {
			s.t.Errorf("%s was not built: %v", name, err)
		}
	}
	k := filepath.Join(s.assets, "kubectl")
	target, err := os.Readlink(k)
	switch {
	case linked && target != filepath.Join(s.bin, "kubectl"):
		s.t.Errorf("kubectl is not a link to the one on PATH: %q, %v", target, err)
	case !linked && err == nil:
		s.t.Errorf("kubectl is a link to %s, not built", target)
	case !linked:
		if fi, err := os.Stat(k); err != nil || !fi.Mode().IsRegular() {
			s.t.Errorf("kubectl was not built: %v", err)
		}
	}
}
