package images

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/partial"
)

// Repository is where Waygate's source lives.
const Repository = "https://github.com/waygate-dev/waygate"

// GitSource is the source of the commit checked out at root, as version.
func GitSource(root, version string) (Source, error) {
	out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%H %ct").Output()
	if err != nil {
		return Source{}, fmt.Errorf("reading the commit at %s (images are stamped with it): %w", root, err)
	}
	rev, ts, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Source{}, fmt.Errorf("the commit's time %q: %w", ts, err)
	}
	return Source{Root: root, Version: version, Revision: rev, Created: time.Unix(secs, 0).UTC(), Repository: Repository}, nil
}

// ParsePlatforms parses "linux/amd64,linux/arm64".
func ParsePlatforms(s string) ([]v1.Platform, error) {
	var ps []v1.Platform
	for _, f := range strings.Split(s, ",") {
		p, err := v1.ParsePlatform(strings.TrimSpace(f))
		if err != nil || p.OS == "" || p.Architecture == "" {
			return nil, fmt.Errorf("platform %q: write <os>/<arch>, e.g. linux/amd64", f)
		}
		ps = append(ps, *p)
	}
	return ps, nil
}

// RefName is the name an image index has in the OCI layout
// (org.opencontainers.image.ref.name): waygate-<component>:<version>.
func RefName(c Component, version string) string { return "waygate-" + c.Name + ":" + version }

// Write puts idx into the OCI layout at dir (created when missing) under
// its ref name, replacing an index of that name.
func Write(dir string, c Component, version string, idx v1.ImageIndex) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return err
		}
	}
	ref := RefName(c, version)
	return p.ReplaceIndex(idx, match.Annotation("org.opencontainers.image.ref.name", ref),
		layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}))
}

// Find is the index of c at version in the layout p.
func Find(p layout.Path, c Component, version string) (v1.ImageIndex, error) {
	root, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	ref := RefName(c, version)
	found, err := partial.FindIndexes(root, match.Annotation("org.opencontainers.image.ref.name", ref))
	if err != nil {
		return nil, err
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("the layout %s has %d images named %s: build them with make images VERSION=%s", p, len(found), ref, version)
	}
	return found[0], nil
}
