package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

var env *operatortest.Env

func TestMain(m *testing.M) {
	os.Exit(operatortest.Run(operatortest.RunInput{M: m, Env: &env}))
}

const registry = "registry.example/waygate"

// refs stand for the digests of images just built.
var refs = map[string]string{
	"manager":   "sha256:" + strings.Repeat("1", 64),
	"gate":      "sha256:" + strings.Repeat("2", 64),
	"dashboard": "sha256:" + strings.Repeat("3", 64),
}

// install.yaml holds everything, its images by digest, and the API server
// accepts every object of it; crds.yaml the CRDs alone.
func TestManifests(t *testing.T) {
	out := t.TempDir()
	if err := manifests(env.Root, out, registry, refs); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := controlplane.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	deployments := map[string]string{}
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			deployments[o.GetName()], _ = containers[0].(map[string]any)["image"].(string)
		}
		if err := env.Client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("release"), client.ForceOwnership, client.DryRunAll); err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	for name, component := range map[string]string{"waygate-manager": "manager", "waygate-gate": "gate", "waygate-dashboard": "dashboard"} {
		if want := registry + "/waygate-" + component + "@" + refs[component]; deployments[name] != want {
			t.Errorf("install.yaml: %s runs %q, want %s", name, deployments[name], want)
		}
	}
	raw, err = os.ReadFile(filepath.Join(out, "crds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crds, err := controlplane.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != 5 {
		t.Errorf("crds.yaml has %d objects, want the 5 CRDs", len(crds))
	}
	for _, o := range crds {
		if o.GetKind() != "CustomResourceDefinition" {
			t.Errorf("crds.yaml has a %s", o.GetKind())
		}
	}
}

// The chart package is of the release's version, lints, and names its
// images by digest.
func TestChartPackage(t *testing.T) {
	out := t.TempDir()
	path, err := packageChart(env.Root, t.TempDir(), out, "v1.2.3", registry, refs)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "waygate-1.2.3.tgz" {
		t.Errorf("packaged %s, want waygate-1.2.3.tgz", path)
	}
	lint := action.NewLint()
	lint.Namespace = controlplane.OperatorNamespace
	for _, err := range lint.Run([]string{path}, nil).Errors {
		t.Error(err)
	}
	loaded, err := loader.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	chrt := loaded.(*chartv2.Chart)
	if chrt.Metadata.AppVersion != "v1.2.3" {
		t.Errorf("appVersion %s, want v1.2.3", chrt.Metadata.AppVersion)
	}
	for component, digest := range refs {
		image := chrt.Values[component].(map[string]any)["image"].(map[string]any)
		if image["digest"] != digest || image["repository"] != registry+"/waygate-"+component {
			t.Errorf("the chart's %s image is %v, want %s/waygate-%s@%s", component, image, registry, component, digest)
		}
	}
}

// pinValues refuses a values.yaml it cannot pin, rather than packaging a
// chart with images by tag.
func TestPinValues(t *testing.T) {
	for _, tc := range []struct {
		name, values string
		ok           bool
	}{
		{"pins", "gate:\n  image:\n    repository: ghcr.io/waygate-dev/waygate-gate\n    digest: \"\"\n", true},
		{"no section", "manager:\n  image:\n    repository: ghcr.io/waygate-dev/waygate-manager\n    digest: \"\"\n", false},
		{"no digest", "gate:\n  image:\n    repository: ghcr.io/waygate-dev/waygate-gate\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pinValues([]byte("\n"+tc.values), "gate", registry, refs["gate"])
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
			if tc.ok && !strings.Contains(string(got), "repository: "+registry+"/waygate-gate") || tc.ok && !strings.Contains(string(got), refs["gate"]) {
				t.Errorf("pinned:\n%s", got)
			}
		})
	}
}
