// Package shipped runs the operator, the gate and the dashboard as the
// install manifests (config/default and config/dashboard, which
// install.yaml and the chart are made of) deploy them: their arguments,
// environment, ports, probes, volumes and service accounts, through a
// kubelet stand-in, against a control plane the manifests were applied to.
// A typo in a manifest that the API server accepts fails here.
package shipped

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

var (
	env *operatortest.Env
	// installed are the objects of the install manifests, as applied.
	installed []*unstructured.Unstructured
	// bins are the binaries of the images, by the container they run in.
	bins = map[string]string{}
)

func TestMain(m *testing.M) {
	os.Exit(operatortest.Run(operatortest.RunInput{M: m, Env: &env, Setup: setup}))
}

// setup installs Waygate from its manifests in place of the harness's
// operator, and builds the binaries of the images.
func setup(e *operatortest.Env) (func(), error) {
	// The manifests' operator takes over: it must win the leader election
	// and own the webhook configurations' certificates.
	e.StopOperator()
	dir, err := os.MkdirTemp("", "waygate-shipped")
	if err != nil {
		return nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	for _, c := range []string{"manager", "gate", "dashboard"} {
		bins[c] = filepath.Join(dir, c)
		cmd := exec.Command("go", "build", "-o", bins[c], "./cmd/"+c)
		cmd.Dir = e.Root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as the images build them
		if out, err := cmd.CombinedOutput(); err != nil {
			return cleanup, fmt.Errorf("go build ./cmd/%s: %w\n%s", c, err, out)
		}
	}
	ctx := context.Background()
	// The envtest webhook configurations call a URL; the manifests' call the
	// operator's Service. Applied over each other they would name both.
	for _, wh := range []client.Object{
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "waygate-validating-webhook-configuration"}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "waygate-mutating-webhook-configuration"}},
	} {
		if err := e.Client.Delete(ctx, wh); client.IgnoreNotFound(err) != nil {
			return cleanup, err
		}
	}
	for _, path := range []string{"default", "dashboard"} {
		objs, err := e.RenderObjects(filepath.Join(e.Root, "config", path))
		if err != nil {
			return cleanup, err
		}
		for _, o := range objs {
			if err := e.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("kubectl"), client.ForceOwnership); err != nil {
				return cleanup, fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
			}
		}
		installed = append(installed, objs...)
	}
	// kube-controller-manager publishes the cluster's CA in every namespace;
	// the control plane runs none.
	ca := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: controlplane.OperatorNamespace},
		Data:       map[string]string{"ca.crt": string(e.Admin.CAData)},
	}
	if err := e.Client.Create(ctx, ca); err != nil {
		return cleanup, err
	}
	return cleanup, nil
}
