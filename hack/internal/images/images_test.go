package images_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/hack/internal/images"
)

var env *operatortest.Env

func TestMain(m *testing.M) {
	os.Exit(operatortest.Run(operatortest.RunInput{M: m, Env: &env}))
}

// The gate's image, built for two platforms, pushed to a registry and
// pulled back, is what a cluster runs: an index of both platforms, each
// running the static binary as the non-root user, labelled with its
// source; the same commit builds the same digests; and the binary taken
// out of the amd64 image serves against the API server.
func TestGateImage(t *testing.T) {
	ctx := context.Background()
	src, err := images.GitSource(env.Root, "v0.0.0-test")
	if err != nil {
		t.Fatal(err)
	}
	gate := images.Components[slices.IndexFunc(images.Components, func(c images.Component) bool { return c.Name == "gate" })]
	idx, err := images.Build(ctx, src, gate, images.Platforms, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	// Pushed and pulled back through a registry.
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	u, _ := url.Parse(reg.URL)
	ref, err := name.ParseReference(u.Host + "/waygate/" + images.RefName(gate, src.Version))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := pulled.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range manifest.Manifests {
		platforms = append(platforms, d.Platform.String())
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Fatalf("the index has platforms %v, want %v", platforms, want)
	}
	var amd64 v1.Image
	for _, d := range manifest.Manifests {
		img, err := pulled.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != d.Platform.Architecture || cfg.OS != "linux" {
			t.Errorf("%s: the config says %s/%s", d.Platform, cfg.OS, cfg.Architecture)
		}
		if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/gate"}) {
			t.Errorf("%s: user %q, entrypoint %v; want 65532:65532 and [/gate]", d.Platform, cfg.Config.User, cfg.Config.Entrypoint)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.source":   images.Repository,
			"org.opencontainers.image.revision": src.Revision,
			"org.opencontainers.image.version":  "v0.0.0-test",
		} {
			if got := cfg.Config.Labels[k]; got != want {
				t.Errorf("%s: label %s is %q, want %q", d.Platform, k, got, want)
			}
		}
		files := filesOf(t, img)
		for _, f := range []string{"gate", "etc/passwd", "etc/ssl/certs/ca-certificates.crt"} {
			if _, ok := files[f]; !ok {
				t.Errorf("%s: no /%s in the image", d.Platform, f)
			}
		}
		for _, shell := range []string{"bin/sh", "bin/bash", "busybox"} {
			if _, ok := files[shell]; ok {
				t.Errorf("%s: the image has a shell, /%s", d.Platform, shell)
			}
		}
		if d.Platform.Architecture == "amd64" {
			amd64 = img
		}
	}

	// Reproducible: a second build of the commit, from a fresh go build,
	// has the same digest.
	again, err := images.Build(ctx, src, gate, images.Platforms[:1], t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	againManifest, err := again.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	first, _ := amd64.Digest()
	if got := againManifest.Manifests[0].Digest; got != first {
		t.Errorf("two builds of one commit: amd64 image %s, then %s", first, got)
	}

	// The OCI layout make images writes holds it by name.
	dir := filepath.Join(t.TempDir(), "layout")
	if err := images.Write(dir, gate, src.Version, idx); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if found, err := images.Find(p, gate, src.Version); err != nil {
		t.Fatal(err)
	} else if d1, d2 := digest(t, found), digest(t, idx); d1 != d2 {
		t.Errorf("the layout holds %s, the build was %s", d1, d2)
	}

	// The binary out of the image serves.
	bin := filepath.Join(t.TempDir(), "gate")
	if err := os.WriteFile(bin, filesOf(t, amd64)["gate"], 0o755); err != nil {
		t.Fatal(err)
	}
	g, err := env.StartGate(ctx, bin, t.TempDir(), "gate", "")
	if err != nil {
		t.Fatalf("the gate from the image: %v", err)
	}
	g.Stop()
}

func digest(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// filesOf reads every regular file of img's layers, by path.
func filesOf(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				if files[h.Name], err = io.ReadAll(tr); err != nil {
					t.Fatal(err)
				}
			}
		}
		_ = rc.Close()
	}
	return files
}
