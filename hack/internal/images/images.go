// Package images builds Waygate's container images without Docker: each
// component's static Go binary (CGO off) on a minimal base of CA
// certificates and a non-root user, one image per platform under one OCI
// image index. The build is reproducible: the same commit gives the same
// digests (every timestamp is the commit's, every file owned by root with
// fixed modes, the Go build trimmed of paths and build IDs).
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// A Component is one of Waygate's programs shipped as an image.
type Component struct {
	// Name is the image's name (waygate-<name>) and its binary's (/<name>).
	Name string
	// Package is the Go package of its main.
	Package string
	// Description is the image's org.opencontainers.image.description.
	Description string
}

// Components are the images Waygate ships.
var Components = []Component{
	{Name: "manager", Package: "./cmd/manager", Description: "Waygate operator: controllers, admission webhooks, audit log"},
	{Name: "gate", Package: "./cmd/gate", Description: "Waygate gate: forward-auth, ext_authz and OFREP for gateways and apps"},
	{Name: "dashboard", Package: "./cmd/dashboard", Description: "Waygate dashboard: routes, flags, rate limits and the audit log in the browser"},
}

// Platforms are those images are built for by default.
var Platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// nonRoot is the user (and group) the images run as.
const nonRoot = 65532

// Source is where the images come from, for their labels and timestamps.
type Source struct {
	// Root is the repository's root, where the Go packages are built.
	Root string
	// Version is the release (v0.1.0), Revision the commit.
	Version, Revision string
	// Created is the commit's time: every timestamp of the image.
	Created time.Time
	// Repository is the source's URL (org.opencontainers.image.source).
	Repository string
}

// Build builds c's image index for platforms, building its binaries into
// work (a directory of the caller's).
func Build(ctx context.Context, src Source, c Component, platforms []v1.Platform, work string) (v1.ImageIndex, error) {
	base, err := baseLayer(src.Created)
	if err != nil {
		return nil, err
	}
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		bin := filepath.Join(work, p.OS+"-"+p.Architecture, c.Name)
		if err := GoBuild(ctx, src, c, p, bin); err != nil {
			return nil, err
		}
		img, err := image(src, c, p, base, bin)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	return mutate.AppendManifests(idx, adds...), nil
}

// GoBuild builds c's static binary for p into out, reproducibly: no cgo,
// no file paths, no build ID, the version stamped in.
func GoBuild(ctx context.Context, src Source, c Component, p v1.Platform, out string) error {
	ldflags := "-s -w -buildid= -X main.version=" + src.Version
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, c.Package)
	cmd.Dir = src.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s for %s/%s: %w\n%s", c.Name, p.OS, p.Architecture, err, b)
	}
	return nil
}

// image is c's image for p: the base layer, then the binary at bin.
func image(src Source, c Component, p v1.Platform, base v1.Layer, bin string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	app, err := layer(src.Created, []file{{name: c.Name, mode: 0o755, data: data}})
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, base, app)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Created = v1.Time{Time: src.Created}
	cfg.Config = v1.Config{
		Entrypoint: []string{"/" + c.Name},
		User:       fmt.Sprintf("%d:%d", nonRoot, nonRoot),
		WorkingDir: "/",
		Env:        []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		Labels:     labels(src, c),
	}
	cfg.History = nil
	return mutate.ConfigFile(img, cfg)
}

// labels are the image's OCI annotations, as labels.
func labels(src Source, c Component) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "waygate-" + c.Name,
		"org.opencontainers.image.description": c.Description,
		"org.opencontainers.image.source":      src.Repository,
		"org.opencontainers.image.revision":    src.Revision,
		"org.opencontainers.image.version":     src.Version,
		"org.opencontainers.image.created":     src.Created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
}

// baseLayer holds what every image shares: CA certificates (Mozilla's, as
// Go's x509roots/fallback bundles them: the same on every build machine),
// and the non-root user.
func baseLayer(created time.Time) (v1.Layer, error) {
	var certs bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			// A root distrusted after a date cannot say so in a PEM file.
			continue
		}
		if err := pem.Encode(&certs, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			return nil, err
		}
	}
	user := fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRoot, nonRoot)
	return layer(created, []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", nonRoot)},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\n" + user)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: certs.Bytes()},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonRoot},
		{name: "tmp/", mode: 0o1777},
	})
}

// file is an entry of a layer: a directory when its name ends in "/".
type file struct {
	name string
	mode int64
	uid  int
	data []byte
}

// layer is a gzipped tar of files, in their order, with fixed times and
// owners, so that it has one digest.
func layer(created time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: created, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer))
}
