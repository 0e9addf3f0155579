// Command release writes what a Waygate release publishes (make release
// VERSION=vX.Y.Z) into dist/: the images (an OCI layout), install.yaml
// (everything, images by digest), crds.yaml, the Helm chart package (its
// images by digest), the CLI for linux and darwin on amd64 and arm64 with
// their checksums, and the krew manifest of the kubectl plugin.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"helm.sh/helm/v4/pkg/action"
	"sigs.k8s.io/yaml"

	"github.com/waygate-dev/waygate/hack/internal/images"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

func main() {
	out := flag.String("out", "dist", "Where to write the release.")
	version := flag.String("version", "", "The release, vX.Y.Z.")
	registry := flag.String("registry", "ghcr.io/waygate-dev", "Where the images are pushed (make push REGISTRY=...): install.yaml and the chart name them there.")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *out, *version, *registry); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

var semver = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)

func run(ctx context.Context, out, version, registry string) error {
	if !semver.MatchString(version) {
		return fmt.Errorf("VERSION %q: write v<major>.<minor>.<patch>, e.g. make release VERSION=v0.1.0", version)
	}
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	src, err := images.GitSource(root, version)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "waygate-release")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}

	refs := map[string]string{}
	for _, c := range images.Components {
		idx, err := images.Build(ctx, src, c, images.Platforms, filepath.Join(work, "images"))
		if err != nil {
			return err
		}
		if err := images.Write(filepath.Join(out, "images"), c, version, idx); err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return err
		}
		refs[c.Name] = d.String()
		fmt.Printf("image %s/waygate-%s@%s\n", registry, c.Name, d)
	}
	if err := manifests(root, out, registry, refs); err != nil {
		return err
	}
	chart, err := packageChart(root, work, out, version, registry, refs)
	if err != nil {
		return err
	}
	fmt.Println("chart", chart)
	archives, err := cli(ctx, src, work, out)
	if err != nil {
		return err
	}
	return krew(out, version, archives)
}

// manifests writes install.yaml (config/default and the dashboard, images
// by digest) and crds.yaml.
func manifests(root, out, registry string, refs map[string]string) error {
	var install, crds []byte
	for _, dir := range []string{"default", "dashboard"} {
		objs, err := controlplane.RenderObjects(root, filepath.Join(root, "config", dir))
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.GetKind() == "Deployment" {
				if err := pinImages(o.Object, registry, refs); err != nil {
					return fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
				}
			}
			doc, err := yaml.Marshal(o.Object)
			if err != nil {
				return err
			}
			install = append(append(install, "---\n"...), doc...)
			if o.GetKind() == "CustomResourceDefinition" {
				crds = append(append(crds, "---\n"...), doc...)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(out, "install.yaml"), install, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "crds.yaml"), crds, 0o644)
}

// pinImages names each waygate image of a Deployment by its digest in
// registry.
func pinImages(deployment map[string]any, registry string, refs map[string]string) error {
	spec, _ := deployment["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	containers, _ := pod["containers"].([]any)
	for _, c := range containers {
		c := c.(map[string]any)
		image, _ := c["image"].(string)
		repo, _, _ := strings.Cut(image, ":")
		component, ok := strings.CutPrefix(filepath.Base(repo), "waygate-")
		if !ok || refs[component] == "" {
			return fmt.Errorf("image %q is none of Waygate's", image)
		}
		c["image"] = registry + "/waygate-" + component + "@" + refs[component]
	}
	return nil
}

// packageChart packages charts/waygate as version, its images by digest
// in registry.
func packageChart(root, work, out, version, registry string, refs map[string]string) (string, error) {
	dir := filepath.Join(work, "chart", "waygate")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root, "charts", "waygate"))); err != nil {
		return "", err
	}
	valuesFile := filepath.Join(dir, "values.yaml")
	values, err := os.ReadFile(valuesFile)
	if err != nil {
		return "", err
	}
	for _, c := range images.Components {
		if values, err = pinValues(values, c.Name, registry, refs[c.Name]); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(valuesFile, values, 0o644); err != nil {
		return "", err
	}
	p := action.NewPackage()
	p.Version, p.AppVersion, p.Destination = strings.TrimPrefix(version, "v"), version, out
	return p.Run(dir, nil)
}

// pinValues sets the image repository and digest of component in the
// chart's values.yaml, keeping its comments.
func pinValues(values []byte, component, registry, digest string) ([]byte, error) {
	start := bytes.Index(values, []byte("\n"+component+":\n"))
	if start < 0 {
		return nil, fmt.Errorf("values.yaml has no section %q", component)
	}
	section := values[start:]
	for old, repl := range map[string]string{
		"repository: ghcr.io/waygate-dev/waygate-" + component: "repository: " + registry + "/waygate-" + component,
		`digest: ""`: `digest: "` + digest + `"`,
	} {
		i := bytes.Index(section, []byte(old))
		if i < 0 {
			return nil, fmt.Errorf("values.yaml: no %q in section %q", old, component)
		}
		section = slices.Concat(section[:i], []byte(repl), section[i+len(old):])
	}
	return slices.Concat(values[:start], section), nil
}

// cliPlatforms are those the CLI is released for.
var cliPlatforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}, {OS: "darwin", Architecture: "amd64"}, {OS: "darwin", Architecture: "arm64"}}

// cli builds the CLI for cliPlatforms into archives in out, and writes
// their checksums; it returns the archives' names and sums by platform.
func cli(ctx context.Context, src images.Source, work, out string) (map[string][2]string, error) {
	waygate := images.Component{Name: "waygate", Package: "./cmd/waygate"}
	archives := map[string][2]string{}
	var sums strings.Builder
	for _, p := range cliPlatforms {
		bin := filepath.Join(work, "cli", p.OS+"-"+p.Architecture, "waygate")
		if err := images.GoBuild(ctx, src, waygate, p, bin); err != nil {
			return nil, err
		}
		name := fmt.Sprintf("waygate_%s_%s_%s.tar.gz", src.Version, p.OS, p.Architecture)
		data, err := archive(src, bin)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		archives[p.String()] = [2]string{name, hex.EncodeToString(sum[:])}
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	return archives, os.WriteFile(filepath.Join(out, "checksums.txt"), []byte(sums.String()), 0o644)
}

// archive is a reproducible tar.gz of the CLI binary at bin and the
// license.
func archive(src images.Source, bin string) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct {
		name, path string
		mode       int64
	}{{"waygate", bin, 0o755}, {"LICENSE", filepath.Join(src.Root, "LICENSE"), 0o644}} {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(data)), ModTime: src.Created, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// krew writes the krew manifest of the kubectl plugin, pointing at the
// archives of the release on GitHub.
func krew(out, version string, archives map[string][2]string) error {
	var platforms []any
	for _, p := range cliPlatforms {
		a := archives[p.String()]
		platforms = append(platforms, map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"os": p.OS, "arch": p.Architecture}},
			"uri":      images.Repository + "/releases/download/" + version + "/" + a[0],
			"sha256":   a[1],
			"bin":      "kubectl-waygate",
			"files":    []any{map[string]any{"from": "waygate", "to": "kubectl-waygate"}, map[string]any{"from": "LICENSE", "to": "."}},
		})
	}
	manifest := map[string]any{
		"apiVersion": "krew.googlecontainertools.github.com/v1alpha2",
		"kind":       "Plugin",
		"metadata":   map[string]any{"name": "waygate"},
		"spec": map[string]any{
			"version":          version,
			"homepage":         images.Repository,
			"shortDescription": "Route gates, feature flags, rate limits and the audit log of Waygate",
			"description":      "Puts routes into maintenance, disables and schedules them, switches feature flags, sets rate limits and reads the audit log of Waygate for Kubernetes, as you: every change is audited with your user.",
			"platforms":        platforms,
		},
	}
	doc, err := yaml.Marshal(manifest)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "krew-waygate.yaml"), doc, 0o644)
}
