package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/internal/cli"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// One control plane and operator for the package; each test works in its
// own namespace, where alice and bob may edit, carol may only view, and
// dave may do nothing. auditor may view every namespace.
var (
	env        *operatortest.Env
	kubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(operatortest.Run(operatortest.RunInput{M: m, Setup: func(e *operatortest.Env) (func(), error) {
		env = e
		dir, err := os.MkdirTemp("", "waygate-cli")
		if err != nil {
			return nil, err
		}
		cleanup := func() { _ = os.RemoveAll(dir) }
		auditor := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "auditor-waygate-view"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "waygate-view"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "auditor"}},
		}
		if err := env.Client.Create(context.Background(), auditor); err != nil {
			return cleanup, err
		}
		kubeconfig = filepath.Join(dir, "kubeconfig")
		return cleanup, controlplane.WriteKubeconfig(env.Admin, kubeconfig)
	}}))
}

// namespace creates a namespace for one test, with the users' roles.
func namespace(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	ns := env.Namespace(t, "cli")
	var objs []client.Object
	for user, roles := range map[string][]string{"alice": {"waygate-view", "waygate-edit"}, "bob": {"waygate-view", "waygate-edit"}, "carol": {"waygate-view"}} {
		for _, role := range roles {
			objs = append(objs, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-" + role},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
			})
		}
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The authorizer sees new bindings a moment later.
	eventually(t, 10*time.Second, func() error {
		_, err := waygate(t, "bob", ns, "status")
		return err
	})
	return ns
}

// waygate runs the CLI as user in ns, as a user would from a shell, with
// times in UTC, and returns what it printed (standard output, then
// standard error) and its error.
func waygate(t *testing.T, user, ns string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), &out, &errOut, user, ns, args...)
	return out.String() + errOut.String(), err
}

// run runs the CLI until it returns or ctx ends.
func run(ctx context.Context, out, errOut io.Writer, user, ns string, args ...string) error {
	root := cli.NewRootCommand(&cli.Options{IOStreams: genericiooptions.IOStreams{Out: out, ErrOut: errOut}, Version: "test"})
	root.SetArgs(append([]string{"--kubeconfig", kubeconfig, "--as", user, "-n", ns, "--utc"}, args...))
	root.SetOut(out)
	root.SetErr(errOut)
	return root.ExecuteContext(ctx)
}

// lockedBuffer is a buffer one goroutine writes while another reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// must runs the CLI and fails the test when it fails.
func must(t *testing.T, user, ns string, args ...string) string {
	t.Helper()
	out, err := waygate(t, user, ns, args...)
	if err != nil {
		t.Fatalf("waygate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// settledTo runs the CLI as carol until what it prints is want (golden),
// for state that settles over several reconciles (service-wide gates).
func settledTo(t *testing.T, ns, want string, args ...string) {
	t.Helper()
	want = strings.TrimSpace(want)
	eventually(t, 20*time.Second, func() error {
		out, err := waygate(t, "carol", ns, args...)
		if err != nil {
			return err
		}
		if got := masked(out, ns); got != want {
			return fmt.Errorf("output:\n%s\n\nwant:\n%s", got, want)
		}
		return nil
	})
}

// settled runs the CLI as carol until what it prints has nothing the
// operator has yet to report on (Pending), and returns that.
func settled(t *testing.T, ns string, args ...string) string {
	t.Helper()
	var out string
	eventually(t, 20*time.Second, func() error {
		var err error
		out, err = waygate(t, "carol", ns, args...)
		if err == nil && strings.Contains(strings.ToLower(out), "pending") {
			return fmt.Errorf("not reconciled yet:\n%s", out)
		}
		return err
	})
	return out
}

// eventually polls cond until it returns nil or the timeout passes.
var eventually = operatortest.Eventually

var (
	clock  = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC`)
	ages   = regexp.MustCompile(`\b(in )?\d+[smhdy](\d+[smhd])?\b`)
	spaces = regexp.MustCompile(`  +`)
)

// masked replaces what changes from run to run (times, ages, the
// namespace), and the padding between columns, which follows their widths,
// by two spaces.
func masked(s, ns string) string {
	// The namespace first: its generated suffix may read as an age.
	s = strings.ReplaceAll(s, ns, "<ns>")
	s = clock.ReplaceAllString(s, "<time>")
	s = ages.ReplaceAllString(s, "<age>")
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = spaces.ReplaceAllString(strings.TrimRight(l, " "), "  ")
	}
	return strings.Join(lines, "\n")
}

// golden compares got, masked, with want, as a table of lines.
func golden(t *testing.T, ns, got, want string) {
	t.Helper()
	want = strings.TrimSpace(want)
	if g := masked(got, ns); g != want {
		t.Errorf("output:\n%s\n\nwant:\n%s", g, want)
	}
}
