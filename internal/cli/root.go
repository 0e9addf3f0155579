// Package cli is the waygate command (also the kubectl plugin kubectl-waygate):
// runtime control of routes, rate limits, flags and segments, and their audit
// trail, from the terminal. It talks only to the Kubernetes API, as the user of
// the kubeconfig, so the audit trail records that user with platform "cli".
package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/edit"
	"github.com/waygate-dev/waygate/internal/scheme"
)

// FieldManager names the CLI's writes; the audit trail turns it into
// platform "cli".
const FieldManager = audit.CLIFieldManager

// Options are what every command shares: where to connect, how to print.
type Options struct {
	genericiooptions.IOStreams
	// Kube are the kubeconfig flags of kubectl (--kubeconfig, --context,
	// -n, --as, ...), set by NewRootCommand.
	Kube *genericclioptions.ConfigFlags
	// Output is table, wide, json or yaml.
	Output string
	// UTC prints times in UTC instead of local time.
	UTC bool
	// Now is the clock (time.Now unless set).
	Now func() time.Time
	// Version is this binary's version.
	Version string

	client    client.WithWatch
	writer    *edit.Writer // writes with client, as the CLI
	namespace string
}

// NewRootCommand returns the waygate command, printing to o's streams, with
// o's clock and version; its flags fill in the rest of o.
func NewRootCommand(o *Options) *cobra.Command {
	o.Kube = genericclioptions.NewConfigFlags(true)
	if o.Now == nil {
		o.Now = time.Now
	}
	root := &cobra.Command{
		Use:   "waygate",
		Short: "Runtime control of your APIs: route gates, rate limits, feature flags, and who changed what",
		Long: `waygate changes how your APIs behave at runtime, and shows who changed what,
through the Kubernetes API as you: every change is audited with your user.

Also usable as a kubectl plugin: kubectl waygate ...`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	o.Kube.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVarP(&o.Output, "output", "o", "table", "Output format: table, wide, json or yaml.")
	root.PersistentFlags().BoolVar(&o.UTC, "utc", false, "Show times in UTC instead of local time.")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "wide", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	root.AddGroup(&cobra.Group{ID: "routes", Title: "Routes:"}, &cobra.Group{ID: "more", Title: "Rate limits, flags, segments, audit:"})
	for _, c := range append(routeCommands(o), globalCommand(o)) {
		c.GroupID = "routes"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{rateLimitCommand(o), flagsCommand(o), segmentsCommand(o), auditCommand(o), dashboardCommand(o), versionCommand(o)} {
		c.GroupID = "more"
		root.AddCommand(c)
	}
	return root
}

// connect makes the client and resolves the namespace, once per run.
func (o *Options) connect() error {
	if o.client != nil {
		return nil
	}
	switch o.Output {
	case "table", "wide", "json", "yaml":
	default:
		return fmt.Errorf("--output %q: use table, wide, json or yaml", o.Output)
	}
	cfg, err := o.Kube.ToRESTConfig()
	if err != nil {
		return err
	}
	cfg.UserAgent = "waygate/" + o.Version
	if o.client, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		return err
	}
	o.writer = edit.New(o.client, FieldManager)
	o.namespace, _, err = o.Kube.ToRawKubeConfigLoader().Namespace()
	return err
}

// run wraps a command's work: it connects first and makes errors readable.
func (o *Options) run(f func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.connect(); err != nil {
			return explain(err)
		}
		return explain(f(cmd.Context(), args))
	}
}

// printf writes to standard output.
func (o *Options) printf(format string, a ...any) { _, _ = fmt.Fprintf(o.Out, format, a...) }

// warnf writes a note to standard error.
func (o *Options) warnf(format string, a ...any) {
	_, _ = fmt.Fprintf(o.ErrOut, "warning: "+format+"\n", a...)
}
