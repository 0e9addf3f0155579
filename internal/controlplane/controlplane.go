// Package controlplane starts an embedded Kubernetes control plane (etcd and
// kube-apiserver, as envtest runs them) with Waygate's CRDs, webhook
// configurations, RBAC and policies installed. The envtest suites and
// `make run` both use it, so tests run against what users run.
package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/waygate-dev/waygate/internal/scheme"
)

// KubernetesVersion is the version of the control-plane binaries
// (hack/build-controlplane.sh builds them into bin/k8s/<version>).
const KubernetesVersion = "1.37.2"

// The operator's identity: the service account it runs as in a real cluster.
const (
	OperatorNamespace      = "waygate-system"
	OperatorServiceAccount = "waygate-manager"
)

// GateServiceAccount is the data plane's identity, bound to the read-only
// RBAC of config/gate.
const GateServiceAccount = "waygate-gate"

// OperatorUser and GateUser are the usernames the API server sees for the
// operator and the gate.
var (
	OperatorUser = serviceAccountUser(OperatorServiceAccount)
	GateUser     = serviceAccountUser(GateServiceAccount)
)

func serviceAccountUser(name string) string {
	return "system:serviceaccount:" + OperatorNamespace + ":" + name
}

// Scheme is the scheme of every Waygate program, for the clients of tests
// and tools.
var Scheme = scheme.Scheme

// ControlPlane is a running embedded control plane.
type ControlPlane struct {
	// Root is the repository root (config/ and bin/ are read from there).
	Root string
	// Admin is a cluster-admin (system:masters) connection.
	Admin *rest.Config
	// Client is a client on Admin.
	Client client.Client
	// Operator is a connection as the operator's service account, bound to the
	// RBAC in config/rbac, so missing permissions show up as they would in a
	// cluster.
	Operator *rest.Config
	// Gate is a connection as the gate's service account, bound to the RBAC
	// in config/gate.
	Gate *rest.Config
	// Webhook is where the API server calls the admission webhooks: the
	// operator must serve them on Webhook.LocalServingHost and
	// LocalServingPort with the certificate in LocalServingCertDir.
	Webhook *envtest.WebhookInstallOptions

	env *envtest.Environment
	// apiServer is kube-apiserver as StartAPIServer restarted it, with the
	// command line and environment it runs with.
	apiServer                   *exec.Cmd
	apiServerArgv, apiServerEnv []string
}

// Start starts etcd and kube-apiserver, installs CRDs and webhook
// configurations, then the operator's service account, RBAC and the admission
// policies.
func Start() (*ControlPlane, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	webhooks, err := webhookConfigurations(root)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: AssetsDir(root),
		WebhookInstallOptions: webhooks,
	}
	admin, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane from %s (run `make envtest-assets` to build it): %w", env.BinaryAssetsDirectory, err)
	}
	cp := &ControlPlane{Root: root, Admin: admin, Webhook: &env.WebhookInstallOptions, env: env}
	if err := cp.install(); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) install() error {
	cp.Admin.QPS = -1 // tests and tools: no client-side throttling
	c, err := client.New(cp.Admin, client.Options{Scheme: Scheme})
	if err != nil {
		return err
	}
	cp.Client = c
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: OperatorNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, path := range []string{"rbac", "policy", filepath.Join("gate", "rbac.yaml")} {
		if err := cp.Apply(ctx, filepath.Join(cp.Root, "config", path)); err != nil {
			return err
		}
	}
	for _, sa := range []struct {
		user string
		cfg  **rest.Config
	}{{OperatorUser, &cp.Operator}, {GateUser, &cp.Gate}} {
		u, err := cp.env.AddUser(envtest.User{
			Name:   sa.user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + OperatorNamespace, "system:authenticated"},
		}, nil)
		if err != nil {
			return fmt.Errorf("adding the user %s: %w", sa.user, err)
		}
		*sa.cfg = u.Config()
		(*sa.cfg).QPS = -1 // tests and tools: no client-side throttling
	}
	return nil
}

// Stop stops the control plane and removes its data.
func (cp *ControlPlane) Stop() error {
	if cp.apiServer != nil {
		_ = cp.apiServer.Process.Signal(syscall.SIGTERM)
		_ = cp.apiServer.Wait()
	}
	return cp.env.Stop()
}

// As returns a client that impersonates user in groups, to test what that
// user may do.
func (cp *ControlPlane) As(user string, groups ...string) (client.Client, error) {
	cfg := rest.CopyConfig(cp.Admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append([]string{"system:authenticated"}, groups...)}
	return client.New(cfg, client.Options{Scheme: Scheme})
}

// Apply creates or updates the objects of a kustomization directory (or a
// YAML file) by server-side apply, as `kubectl apply --server-side -k` would;
// opts can add client.DryRunAll.
func (cp *ControlPlane) Apply(ctx context.Context, path string, opts ...client.ApplyOption) error {
	objs, err := cp.RenderObjects(path)
	if err != nil {
		return err
	}
	for _, u := range objs {
		if namespaced, err := cp.Client.IsObjectNamespaced(u); err == nil && namespaced && u.GetNamespace() == "" {
			u.SetNamespace(metav1.NamespaceDefault)
		}
		opts := append([]client.ApplyOption{client.FieldOwner("waygate-local"), client.ForceOwnership}, opts...)
		if err := cp.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), opts...); err != nil {
			return fmt.Errorf("applying %s %s from %s: %w", u.GetKind(), u.GetName(), path, err)
		}
	}
	return nil
}

// Decode reads the objects of a YAML (or JSON) stream, skipping empty
// documents.
func Decode(docs []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(docs), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// webhookConfigurations are the webhook configurations of config/webhook as
// kustomize builds them (with their patches), for envtest to install
// pointing at the local webhook server.
func webhookConfigurations(root string) (envtest.WebhookInstallOptions, error) {
	var opts envtest.WebhookInstallOptions
	docs, err := Render(root, filepath.Join(root, "config", "webhook"))
	if err != nil {
		return opts, err
	}
	objs, err := Decode(docs)
	if err != nil {
		return opts, err
	}
	for _, u := range objs {
		var into any
		switch u.GetKind() {
		case "MutatingWebhookConfiguration":
			m := &admissionregistrationv1.MutatingWebhookConfiguration{}
			opts.MutatingWebhooks, into = append(opts.MutatingWebhooks, m), m
		case "ValidatingWebhookConfiguration":
			v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			opts.ValidatingWebhooks, into = append(opts.ValidatingWebhooks, v), v
		default:
			continue
		}
		// Named apart from a real install's, which tests dry-run against
		// this control plane.
		u.SetName("local-" + u.GetName())
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// Render reads a YAML file, or builds a kustomization directory, as Apply
// does.
func (cp *ControlPlane) Render(path string) ([]byte, error) { return Render(cp.Root, path) }

// RenderObjects are the objects Render reads or builds.
func (cp *ControlPlane) RenderObjects(path string) ([]*unstructured.Unstructured, error) {
	return RenderObjects(cp.Root, path)
}

// RenderObjects are the objects Render reads or builds under root.
func RenderObjects(root, path string) ([]*unstructured.Unstructured, error) {
	docs, err := Render(root, path)
	if err != nil {
		return nil, err
	}
	objs, err := Decode(docs)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return objs, nil
}

// Render reads a YAML file, or builds a kustomization directory (with the
// kubectl of the control-plane binaries under root).
func Render(root, path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return os.ReadFile(path)
	}
	out, err := exec.Command(filepath.Join(AssetsDir(root), "kubectl"), "kustomize", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("kubectl kustomize %s: %s", path, ee.Stderr)
		}
		return nil, fmt.Errorf("kubectl kustomize %s: %w", path, err)
	}
	return out, nil
}

// WriteKubeconfig writes a kubeconfig for cfg to path.
func WriteKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["waygate-local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["waygate-local"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["waygate-local"] = &clientcmdapi.Context{Cluster: "waygate-local", AuthInfo: "waygate-local", Namespace: "default"}
	kc.CurrentContext = "waygate-local"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*kc, path)
}

// AssetsDir is where the control-plane binaries are: $KUBEBUILDER_ASSETS, or
// bin/k8s/<version> under root.
func AssetsDir(root string) string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return filepath.Join(root, "bin", "k8s", KubernetesVersion)
}

// RepoRoot finds the repository root: the nearest directory above the
// working directory that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from inside the waygate repository")
		}
		dir = parent
	}
}
