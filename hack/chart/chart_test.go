package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

var env *operatortest.Env

func TestMain(m *testing.M) {
	os.Exit(operatortest.Run(operatortest.RunInput{M: m, Env: &env}))
}

func chartDir() string { return filepath.Join(env.Root, "charts", "waygate") }

// The chart's generated templates are what config/ makes of them now: a
// change to config/ without make chart fails here.
func TestChartInStepWithConfig(t *testing.T) {
	dir := t.TempDir()
	if err := generate(env.Root, dir); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("generated nothing (%v)", err)
	}
	for _, f := range files {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(chartDir(), "templates", filepath.Base(f)))
		if err != nil || string(got) != string(want) {
			t.Errorf("charts/waygate/templates/%s is not what config/ generates: run make chart and commit the result", filepath.Base(f))
		}
	}
}

func TestChartLints(t *testing.T) {
	lint := action.NewLint()
	lint.Strict = true
	lint.Namespace = controlplane.OperatorNamespace
	res := lint.Run([]string{chartDir()}, nil)
	for _, err := range res.Errors {
		t.Error(err)
	}
	for _, m := range res.Messages {
		t.Log(m)
	}
}

// template renders the chart as helm template would, into the operator's
// namespace, with values.
func template(t *testing.T, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	chrt, err := loader.Load(chartDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := action.NewConfiguration()
	cfg.Releases = storage.Init(driver.NewMemory())
	cfg.KubeClient = &kubefake.PrintingKubeClient{Out: io.Discard}
	cfg.Capabilities = common.DefaultCapabilities
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName, install.Namespace = "waygate", controlplane.OperatorNamespace
	install.Replace, install.IncludeCRDs = true, true
	if install.KubeVersion, err = common.ParseKubeVersion("v" + controlplane.KubernetesVersion); err != nil {
		t.Fatal(err)
	}
	rel, err := install.Run(chrt, values)
	if err != nil {
		t.Fatalf("helm template with %v: %v", values, err)
	}
	objs, err := controlplane.Decode([]byte(rel.(*release.Release).Manifest))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// Every object the chart renders, with its defaults and with every value
// set, is accepted by the API server (server-side dry run).
func TestChartApplies(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"defaults": nil,
		"everything set": {
			"dashboard": map[string]any{"enabled": true},
			"manager": map[string]any{
				"image": map[string]any{"digest": "sha256:" + strings.Repeat("ab", 32)},
				"audit": map[string]any{"export": "otlp", "suppressors": []any{"seeder"}, "otlp": map[string]any{
					"endpoint": "https://otel-collector.observability:4317", "protocol": "grpc",
					"headers": map[string]any{"secretName": "otlp-auth"}, "tls": map[string]any{"secretName": "otlp-tls", "clientCertificate": true},
				}},
				"extraArgs":    []any{"--concurrency=8"},
				"nodeSelector": map[string]any{"kubernetes.io/os": "linux"},
			},
			"gate": map[string]any{
				"redis":       map[string]any{"existingSecret": "waygate-redis"},
				"trustedHops": 1,
				"jwt":         map[string]any{"jwksURL": "https://issuer.example/jwks", "issuer": "https://issuer.example", "audience": "shop"},
				"tolerations": []any{map[string]any{"key": "dedicated", "operator": "Exists"}},
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			objs := template(t, values)
			for _, u := range objs {
				if err := env.Client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("helm"), client.ForceOwnership, client.DryRunAll); err != nil {
					t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
				}
			}
		})
	}
}

// The chart's values reach the Deployments.
func TestChartValues(t *testing.T) {
	objs := template(t, map[string]any{
		"manager": map[string]any{"replicas": 3, "image": map[string]any{"digest": "sha256:" + strings.Repeat("ab", 32)}},
		"gate":    map[string]any{"redis": map[string]any{"existingSecret": "waygate-redis"}, "environment": "staging"},
	})
	manager, gate := find(objs, "Deployment", "waygate-manager"), find(objs, "Deployment", "waygate-gate")
	if manager == nil || gate == nil {
		t.Fatalf("no Deployments waygate-manager and waygate-gate among %d objects", len(objs))
	}
	if n, _, _ := unstructured.NestedFieldNoCopy(manager.Object, "spec", "replicas"); fmt.Sprint(n) != "3" {
		t.Errorf("manager replicas %v, want 3", n)
	}
	if img := container(manager)["image"]; img != "ghcr.io/waygate-dev/waygate-manager@sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("manager image %v, want it by digest", img)
	}
	args := fmt.Sprint(container(gate)["args"])
	for _, want := range []string{"--environment=staging", "--redis-url=$(WAYGATE_REDIS_URL)"} {
		if !strings.Contains(args, want) {
			t.Errorf("gate args %s lack %s", args, want)
		}
	}
	if strings.Contains(args, "--environment=production") {
		t.Errorf("gate args %s keep config's environment too", args)
	}
	if env := fmt.Sprint(container(gate)["env"]); !strings.Contains(env, "waygate-redis") {
		t.Errorf("gate env %s does not take the Redis URL from the Secret", env)
	}
	if find(template(t, nil), "Deployment", "waygate-dashboard") != nil {
		t.Error("the dashboard is installed by default")
	}
}

// The audit export's values become the OpenTelemetry exporter's variables,
// the headers from a Secret and the TLS files from a mounted one; stdout
// needs none of them.
func TestChartAuditExport(t *testing.T) {
	manager := find(template(t, map[string]any{"manager": map[string]any{"audit": map[string]any{"export": "otlp", "otlp": map[string]any{
		"endpoint": "https://otel-collector.observability:4318",
		"headers":  map[string]any{"secretName": "otlp-auth", "key": "token"}, "tls": map[string]any{"secretName": "otlp-tls", "clientCertificate": true},
	}}}}), "Deployment", "waygate-manager")
	c := container(manager)
	if args := fmt.Sprint(c["args"]); !strings.Contains(args, "--audit-export=otlp") {
		t.Errorf("manager args %s lack --audit-export=otlp", args)
	}
	vars := map[string]string{}
	for _, e := range asList(c["env"]) {
		e := e.(map[string]any)
		vars[e["name"].(string)] = fmt.Sprint(e["value"])
		if ref, ok, _ := unstructured.NestedMap(e, "valueFrom", "secretKeyRef"); ok {
			vars[e["name"].(string)] = fmt.Sprintf("secret %v/%v", ref["name"], ref["key"])
		}
	}
	for name, want := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel-collector.observability:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_HEADERS": "secret otlp-auth/token", "OTEL_EXPORTER_OTLP_CERTIFICATE": "/etc/waygate/otlp/ca.crt",
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/etc/waygate/otlp/tls.crt", "OTEL_EXPORTER_OTLP_CLIENT_KEY": "/etc/waygate/otlp/tls.key",
	} {
		if vars[name] != want {
			t.Errorf("manager env %s = %q, want %q", name, vars[name], want)
		}
	}
	mounted := false
	for _, m := range asList(c["volumeMounts"]) {
		mounted = mounted || m.(map[string]any)["mountPath"] == "/etc/waygate/otlp"
	}
	volume := false
	vols, _, _ := unstructured.NestedSlice(manager.Object, "spec", "template", "spec", "volumes")
	for _, v := range vols {
		secret, _, _ := unstructured.NestedString(v.(map[string]any), "secret", "secretName")
		volume = volume || secret == "otlp-tls"
	}
	if !mounted || !volume {
		t.Errorf("the TLS Secret otlp-tls is not mounted at /etc/waygate/otlp (mount %v, volume %v)", mounted, volume)
	}

	stdout := container(find(template(t, map[string]any{"manager": map[string]any{"audit": map[string]any{"export": "stdout",
		"otlp": map[string]any{"endpoint": "http://ignored:4318"}}}}), "Deployment", "waygate-manager"))
	if env := fmt.Sprint(stdout["env"]); strings.Contains(env, "OTEL_") {
		t.Errorf("export stdout sets %s", env)
	}
}

// The chart and kustomize (config/default) install the same CRDs, RBAC,
// webhooks, admission policies, NetworkPolicies and PodDisruptionBudgets.
func TestChartInstallsWhatKustomizeDoes(t *testing.T) {
	raw, err := env.Render(filepath.Join(env.Root, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := controlplane.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	got := template(t, nil)
	kinds := []string{"CustomResourceDefinition", "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
		"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
		"NetworkPolicy", "PodDisruptionBudget", "Service"}
	compared := 0
	for _, w := range want {
		if !slices.Contains(kinds, w.GetKind()) {
			continue
		}
		g := find(got, w.GetKind(), w.GetName())
		if g == nil {
			t.Errorf("the chart installs no %s %s", w.GetKind(), w.GetName())
			continue
		}
		if ann := g.GetAnnotations(); ann["helm.sh/resource-policy"] == "keep" {
			delete(ann, "helm.sh/resource-policy")
			g.SetAnnotations(ann)
			if len(ann) == 0 {
				unstructured.RemoveNestedField(g.Object, "metadata", "annotations")
			}
		}
		if !equality.Semantic.DeepEqual(g.Object, w.Object) {
			t.Errorf("%s %s differs between the chart and kustomize:\nchart:     %v\nkustomize: %v", w.GetKind(), w.GetName(), g.Object, w.Object)
		}
		compared++
	}
	if compared < 20 {
		t.Errorf("compared %d objects; config/default has more of those kinds", compared)
	}
}

// With its default values (and the dashboard on), the chart runs the
// Deployments kustomize does: the same pods (arguments in any order,
// images aside), so that hack/shipped, which runs kustomize's, covers the
// chart's too.
func TestChartDeploymentsAreKustomizes(t *testing.T) {
	var want []*unstructured.Unstructured
	for _, dir := range []string{"default", "dashboard"} {
		objs, err := env.RenderObjects(filepath.Join(env.Root, "config", dir))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, objs...)
	}
	compareDeployments(t, template(t, map[string]any{"dashboard": map[string]any{"enabled": true}}), want, 3)
}

// compareDeployments checks that the chart's Deployments (got) are want's.
func compareDeployments(t *testing.T, got, want []*unstructured.Unstructured, n int) {
	t.Helper()
	compared := 0
	for _, w := range want {
		if w.GetKind() != "Deployment" {
			continue
		}
		g := find(got, "Deployment", w.GetName())
		if g == nil {
			t.Errorf("the chart installs no Deployment %s", w.GetName())
			continue
		}
		if gp, wp := pod(g), pod(w); !equality.Semantic.DeepEqual(gp, wp) {
			t.Errorf("Deployment %s: the chart's pod differs from kustomize's:\nchart:     %v\nkustomize: %v", w.GetName(), gp, wp)
		}
		compared++
	}
	if compared != n {
		t.Errorf("compared %d Deployments, want %d", compared, n)
	}
}

// pod is a Deployment's pod template without what differs by design: the
// images (a tag or a digest, a pull policy) and the order of the arguments.
func pod(d *unstructured.Unstructured) map[string]any {
	tmpl := d.DeepCopy().Object["spec"].(map[string]any)["template"].(map[string]any)
	for _, c := range tmpl["spec"].(map[string]any)["containers"].([]any) {
		c := c.(map[string]any)
		delete(c, "image")
		delete(c, "imagePullPolicy")
		args, _ := c["args"].([]any)
		slices.SortFunc(args, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
	}
	return tmpl
}

// With certManager.enabled the chart installs what config/default-certmanager
// (config/default with the config/certmanager component) does: the Issuer
// and Certificate, the CA injection into the webhook configurations, and
// the operator without its rotation; with an issuerRef, that issuer signs
// and the chart creates none.
func TestChartCertManager(t *testing.T) {
	want, err := env.RenderObjects(filepath.Join(env.Root, "config", "default-certmanager"))
	if err != nil {
		t.Fatal(err)
	}
	got := template(t, map[string]any{"certManager": map[string]any{"enabled": true}})
	for _, kind := range []string{"Issuer", "Certificate", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		found := false
		for _, w := range want {
			if w.GetKind() != kind {
				continue
			}
			found = true
			if g := find(got, kind, w.GetName()); g == nil || !equality.Semantic.DeepEqual(g.Object, w.Object) {
				t.Errorf("%s %s: the chart renders %v, kustomize %v", kind, w.GetName(), g, w.Object)
			}
		}
		if !found {
			t.Errorf("config/default-certmanager has no %s", kind)
		}
	}
	compareDeployments(t, got, want, 2)
	if args := fmt.Sprint(container(find(got, "Deployment", "waygate-manager"))["args"]); !strings.Contains(args, "--cert-rotation=false") {
		t.Errorf("manager args %s still rotate the certificate", args)
	}
	for _, o := range template(t, nil) {
		if o.GetKind() == "Certificate" || o.GetKind() == "Issuer" || o.GetAnnotations()["cert-manager.io/inject-ca-from"] != "" {
			t.Errorf("%s %s is installed without certManager.enabled", o.GetKind(), o.GetName())
		}
	}

	own := map[string]any{"kind": "ClusterIssuer", "name": "corp-ca"}
	got = template(t, map[string]any{"certManager": map[string]any{"enabled": true, "issuerRef": own}})
	if find(got, "Issuer", "waygate-selfsigned") != nil {
		t.Error("the self-signed Issuer is installed though issuerRef names another")
	}
	cert := find(got, "Certificate", "waygate-webhook-cert")
	if ref, _, _ := unstructured.NestedMap(cert.Object, "spec", "issuerRef"); !equality.Semantic.DeepEqual(ref, own) {
		t.Errorf("the Certificate's issuerRef is %v, want %v", ref, own)
	}
}

// With the values that turn them on, the chart installs config/prometheus's
// ServiceMonitors and alerts as they are (the alerts' Prometheus templates
// included); by default, none.
func TestChartMonitoring(t *testing.T) {
	want, err := env.RenderObjects(filepath.Join(env.Root, "config", "prometheus"))
	if err != nil {
		t.Fatal(err)
	}
	on := template(t, map[string]any{"metrics": map[string]any{
		"serviceMonitor": map[string]any{"enabled": true}, "prometheusRule": map[string]any{"enabled": true},
		"labels": map[string]any{"release": "kube-prometheus-stack"},
	}})
	off := template(t, nil)
	for _, w := range want {
		if find(off, w.GetKind(), w.GetName()) != nil {
			t.Errorf("%s %s is installed by default", w.GetKind(), w.GetName())
		}
		g := find(on, w.GetKind(), w.GetName())
		if g == nil {
			t.Errorf("the chart installs no %s %s", w.GetKind(), w.GetName())
			continue
		}
		labels := g.GetLabels()
		if labels["release"] != "kube-prometheus-stack" {
			t.Errorf("%s %s has labels %v, want the release label of the values", w.GetKind(), w.GetName(), labels)
		}
		delete(labels, "release")
		g.SetLabels(labels)
		if !equality.Semantic.DeepEqual(g.Object, w.Object) {
			t.Errorf("%s %s: the chart renders %v, kustomize %v", w.GetKind(), w.GetName(), g, w.Object)
		}
	}
	if len(want) < 3 {
		t.Errorf("config/prometheus has %d objects, want the two ServiceMonitors and the rules", len(want))
	}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func container(d *unstructured.Unstructured) map[string]any {
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	return cs[0].(map[string]any)
}
