package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/pkg/flags"
)

// flagEvalCommand evaluates a flag with the engine the gate and the Go
// provider use, from the namespace's flags and segments as stored.
func flagEvalCommand(o *Options) *cobra.Command {
	var attrs []string
	c := &cobra.Command{
		Use:   "eval KEY",
		Short: "Evaluate a flag for a context, as the gate would: value, variant, reason",
		Long: "Evaluate a flag for an evaluation context given as --context ATTRIBUTE=VALUE (repeatable; \"key\" is the\n" +
			"targeting key, \"kind\" the context kind), with the engine the gate serves over OFREP.\n" +
			"Here --context is the evaluation context: pick a kubeconfig context with --kubeconfig or `kubectl config use-context`.",
		Example: "  waygate flags eval new-checkout --context key=alice --context country=US",
		Args:    cobra.ExactArgs(1),
	}
	c.Flags().StringArrayVar(&attrs, "context", nil, "An attribute of the evaluation context, ATTRIBUTE=VALUE (key=alice, country=US).")
	c.RunE = o.run(func(ctx context.Context, args []string) error {
		values, err := flags.ParseContext(attrs)
		if err != nil {
			return fmt.Errorf("--context: %w (here --context is the evaluation context; pick a kubeconfig context with --kubeconfig or `kubectl config use-context`)", err)
		}
		snap, err := o.flagSnapshot(ctx)
		if err != nil {
			return err
		}
		r := snap.Evaluate(args[0], flags.NewContext(values))
		return o.printResult(&r)
	})
	return c
}

// flagSnapshot compiles the namespace's flags and segments.
func (o *Options) flagSnapshot(ctx context.Context) (*flags.Snapshot, error) {
	ffs, err := flagKind.list(ctx, o.client, o.namespace)
	if err != nil {
		return nil, err
	}
	var segs waygatev1.SegmentList
	if _, err := listItems(ctx, o.client, o.namespace, &segs, &segs.Items); err != nil {
		return nil, err
	}
	return flags.Compile(ffs, segs.Items), nil
}

// printResult prints an evaluation: a table, or its fields as JSON or YAML.
func (o *Options) printResult(r *flags.Result) error {
	out := map[string]any{"key": r.Key, "value": r.Value, "variant": r.Variant, "reason": r.Reason}
	if r.ErrorCode != "" {
		out["errorCode"], out["errorMessage"] = r.ErrorCode, r.ErrorMessage
	}
	if o.Output == "json" || o.Output == "yaml" {
		return o.encode(out)
	}
	rows := [][]string{{"Flag:", r.Key}}
	if r.ErrorCode != "" {
		rows = append(rows, []string{"Reason:", string(r.Reason)}, []string{"Error:", string(r.ErrorCode) + ": " + r.ErrorMessage})
		o.keyValues(rows)
		return nil
	}
	rows = append(rows, []string{"Value:", string(r.Raw)}, []string{"Variant:", r.Variant}, []string{"Reason:", string(r.Reason)})
	o.keyValues(rows)
	return nil
}
