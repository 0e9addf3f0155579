// Command waygate changes how APIs behave at runtime (route gates, rate
// limits, feature flags and segments) and shows who changed what, through
// the Kubernetes API. Installed as kubectl-waygate it is the kubectl plugin
// `kubectl waygate`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/waygate-dev/waygate/internal/cli"
)

// version is set at build time (-ldflags "-X main.version=v0.1.0"); builds
// without it report the module version or the commit.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := cli.NewRootCommand(&cli.Options{
		IOStreams: genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
		Version:   buildVersion(),
	})
	if filepath.Base(os.Args[0]) == "kubectl-waygate" {
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl waygate"}
	}
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
