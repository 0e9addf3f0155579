// Command local runs Waygate on this machine with no cluster: it starts an
// embedded control plane (etcd and kube-apiserver), installs CRDs, webhooks,
// RBAC and policies, runs the operator as its own service account, applies
// config/samples and writes an admin kubeconfig. `make run` starts it; Ctrl-C
// or SIGTERM stops everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"

	"github.com/waygate-dev/waygate/internal/controlplane"
)

func main() {
	manager := flag.String("manager", "bin/manager", "Path of the operator binary.")
	gateBin := flag.String("gate", "bin/gate", "Path of the gate binary.")
	gateAddr := flag.String("gate-address", "127.0.0.1:8180", "Address the gate serves forward-auth on.")
	samples := flag.Bool("samples", true, "Apply config/samples once the operator is ready.")
	flag.Parse()
	if err := run(*manager, *gateBin, *gateAddr, *samples); err != nil {
		fmt.Fprintln(os.Stderr, "waygate:", err)
		os.Exit(1)
	}
}

func run(manager, gateBin, gateAddr string, samples bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Println("waygate: starting the local control plane (etcd, kube-apiserver)")
	cp, err := controlplane.Start()
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("waygate: stopping the control plane")
		_ = cp.Stop()
	}()

	dir := filepath.Join(cp.Root, "bin", "local")
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := controlplane.WriteKubeconfig(cp.Admin, kubeconfig); err != nil {
		return err
	}
	fmt.Printf("waygate: starting the operator as %s (log: %s)\n", controlplane.OperatorUser, filepath.Join(dir, "manager.log"))
	op, err := cp.StartOperator(ctx, manager, dir)
	if err != nil {
		return err
	}
	defer func() {
		op.Stop()
		fmt.Println("waygate: operator stopped")
	}()
	if err := cp.Apply(ctx, filepath.Join(cp.Root, "hack", "local", "users.yaml")); err != nil {
		return err
	}
	if samples {
		if err := cp.Apply(ctx, filepath.Join(cp.Root, "config", "samples")); err != nil {
			return err
		}
		if err := waitSamplesReady(ctx, cp.Client); err != nil {
			return err
		}
	}

	fmt.Printf("waygate: starting the gate as %s (log: %s)\n", controlplane.GateUser, filepath.Join(dir, "gate.log"))
	gate, err := cp.StartGate(ctx, gateBin, dir, "gate", gateAddr, "--environment", "production")
	if err != nil {
		return err
	}
	defer func() {
		gate.Stop()
		fmt.Println("waygate: gate stopped")
	}()

	rel, _ := filepath.Rel(cp.Root, kubeconfig)
	fmt.Printf(`waygate: ready
  gate: forward-auth http://%[2]s/v1/check/<namespace>/<service>, ext_authz %[3]s, metrics http://%[4]s/metrics
  export KUBECONFIG=$PWD/%[1]s
%[5]s  kubectl get waygate                        # every Waygate resource
  kubectl get routegates -o wide             # routes and the state in effect
  kubectl get auditentries                   # who changed what, newest first
  kubectl explain routegate.spec             # field documentation
  kubectl --as=bob get routegates            # act as another user: bob may read,
  bin/waygate --as alice disable GET:/reports -r "Re-index"   # alice may change
  bin/waygate status                         # the CLI: routes, then
  bin/waygate disable POST:/refunds -r "Ledger move" && bin/waygate audit
  bin/waygate dashboard                      # the dashboard in your browser; its Audit tab is the audit log
  curl -i -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Uri: /payments' \
    http://%[2]s/v1/check/default/payments   # 503 MAINTENANCE_MODE: the gate enforces
Ctrl-C stops the gate, the operator and the control plane.
`, rel, gate.HTTP, gate.GRPC, gate.Metrics, kubectlHint(cp.Root))

	select {
	case <-ctx.Done():
		return nil
	case <-op.Exited():
		return fmt.Errorf("the operator exited: %w (see %s)", op.Err(), op.Log)
	case <-gate.Exited():
		return fmt.Errorf("the gate exited: %w (see %s)", gate.Err(), gate.Log)
	}
}

// kubectlHint is a line of the hints that puts the control plane's kubectl
// first on PATH, or "" when the kubectl on PATH is that one already
// (hack/build-controlplane.sh links one within one minor instead of building).
func kubectlHint(root string) string {
	dir := controlplane.AssetsDir(root)
	if onPath, err := exec.LookPath("kubectl"); err == nil && sameFile(onPath, filepath.Join(dir, "kubectl")) {
		return ""
	}
	if rel, err := filepath.Rel(root, dir); err == nil && filepath.IsLocal(rel) {
		dir = "$PWD/" + rel
	}
	return fmt.Sprintf("  %-42s # the kubectl for v%s\n", "export PATH="+dir+":$PATH", controlplane.KubernetesVersion)
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// waitSamplesReady waits until the operator has reported on every sample, so
// that the first `kubectl get waygate` shows their state.
func waitSamplesReady(ctx context.Context, c client.Client) error {
	lists := []client.ObjectList{&waygatev1.RouteGateList{}, &waygatev1.FeatureFlagList{}, &waygatev1.SegmentList{}, &waygatev1.RateLimitPolicyList{}}
	deadline := time.Now().Add(time.Minute)
	for {
		pending := 0
		for _, l := range lists {
			if err := c.List(ctx, l, client.InNamespace(metav1.NamespaceDefault)); err != nil {
				return err
			}
			objs, err := meta.ExtractList(l)
			if err != nil {
				return err
			}
			for _, o := range objs {
				if meta.FindStatusCondition(o.(audit.Object).Common().Conditions, waygatev1.ConditionReady) == nil {
					pending++
				}
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d samples have no Ready condition after a minute: see bin/local/manager.log", pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
