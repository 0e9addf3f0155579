// Command images builds Waygate's OCI images without Docker (make images)
// into an OCI layout, and pushes them to a registry (make push).
//
//	go run ./hack/images --out dist/images --version v0.1.0
//	go run ./hack/images --out dist/images --version v0.1.0 --push ghcr.io/waygate-dev
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/waygate-dev/waygate/hack/internal/images"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

func main() {
	out := flag.String("out", "dist/images", "The OCI layout to write the images into.")
	version := flag.String("version", "v0.1.0", "The version the images and binaries are stamped with, and their tag.")
	platforms := flag.String("platforms", "linux/amd64,linux/arm64", "The platforms to build for, comma-separated.")
	only := flag.String("components", "manager,gate,dashboard", "The images to build, comma-separated.")
	push := flag.String("push", "", "Instead of building, push the images of the layout to this registry and path (e.g. ghcr.io/waygate-dev), as <registry>/waygate-<component>:<version>.")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if *push != "" {
		err = pushAll(ctx, *out, *push, *version, strings.Split(*only, ","))
	} else {
		err = buildAll(ctx, *out, *version, *platforms, strings.Split(*only, ","))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

// components are the Components named in names.
func components(names []string) ([]images.Component, error) {
	var cs []images.Component
	for _, n := range names {
		i := slices.IndexFunc(images.Components, func(c images.Component) bool { return c.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("no component %q: the images are manager, gate and dashboard", n)
		}
		cs = append(cs, images.Components[i])
	}
	return cs, nil
}

func buildAll(ctx context.Context, out, version, platforms string, names []string) error {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	ps, err := images.ParsePlatforms(platforms)
	if err != nil {
		return err
	}
	cs, err := components(names)
	if err != nil {
		return err
	}
	src, err := images.GitSource(root, version)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "waygate-images")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	for _, c := range cs {
		idx, err := images.Build(ctx, src, c, ps, work)
		if err != nil {
			return err
		}
		if err := images.Write(out, c, version, idx); err != nil {
			return err
		}
		digest, err := idx.Digest()
		if err != nil {
			return err
		}
		fmt.Printf("%s@%s (%s)\n", images.RefName(c, version), digest, platforms)
	}
	fmt.Printf("OCI layout: %s (revision %s)\n", out, src.Revision)
	return nil
}

func pushAll(ctx context.Context, out, registry, version string, names []string) error {
	cs, err := components(names)
	if err != nil {
		return err
	}
	p, err := layout.FromPath(out)
	if err != nil {
		return fmt.Errorf("reading the images in %s (make images writes them): %w", out, err)
	}
	for _, c := range cs {
		ref, err := name.ParseReference(strings.TrimSuffix(registry, "/") + "/" + images.RefName(c, version))
		if err != nil {
			return fmt.Errorf("--push %q: %w", registry, err)
		}
		idx, err := images.Find(p, c, version)
		if err != nil {
			return err
		}
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
		digest, err := idx.Digest()
		if err != nil {
			return err
		}
		fmt.Printf("pushed %s@%s\n", ref, digest)
	}
	return nil
}
