package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waygate-dev/waygate/internal/edit"
	"github.com/waygate-dev/waygate/internal/routes"
)

// kind is what the commands need to know of one Waygate kind to find,
// list, change and delete its objects.
type kind[T any, P interface {
	*T
	client.Object
}] struct {
	// name is the kind's name in messages: RouteGate, FeatureFlag, ...
	name string
	// list reads the objects of ns (every namespace when empty).
	list func(ctx context.Context, c client.Reader, ns string) ([]T, error)
	// key is what users name an object by: a route key, a flag's key.
	key func(P) string
	// service is the service of a route's object (RouteGate,
	// RateLimitPolicy); nil for other kinds.
	service func(P) string
	// label names an object in what the CLI prints: GET:/payments, flag:<key>.
	label func(P) string
	// describe sums an object up in a few words, so that a change shows
	// what it was and what it is.
	describe func(*Options, P) string
	// hint says how to see what there is.
	hint string

	// The table of the list command: its columns, and those -o wide adds.
	headers, wide []string
	row, wideRow  func(o *Options, p P) []string
	// asList wraps items for -o json|yaml.
	asList func([]T) runtime.Object
	// empty is said when there is nothing to list.
	empty string
}

// listItems lists into list, whose items are items, in ns.
func listItems[T any](ctx context.Context, c client.Reader, ns string, list client.ObjectList, items *[]T) ([]T, error) {
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	return *items, nil
}

// print prints items (of every namespace when all) as a table, a wide
// table, JSON or YAML, sorted by namespace and key.
func (k kind[T, P]) print(o *Options, items []T, all bool) error {
	slices.SortFunc(items, func(a, b T) int {
		return strings.Compare(k.order(&a), k.order(&b))
	})
	if ok, err := o.structured(k.asList(items)); ok {
		return err
	}
	if len(items) == 0 {
		_, _ = fmt.Fprintln(o.ErrOut, k.empty)
		return nil
	}
	headers := k.headers
	if o.Output == "wide" {
		headers = append(slices.Clone(headers), k.wide...)
	}
	if all {
		headers = append([]string{"NAMESPACE"}, headers...)
	}
	var rows [][]string
	for i := range items {
		p := P(&items[i])
		row := k.row(o, p)
		if o.Output == "wide" {
			row = append(row, k.wideRow(o, p)...)
		}
		if all {
			row = append([]string{p.GetNamespace()}, row...)
		}
		rows = append(rows, row)
	}
	o.table(headers, rows)
	return nil
}

// order sorts objects by namespace, service and key.
func (k kind[T, P]) order(p P) string {
	s := ""
	if k.service != nil {
		s = k.service(p)
	}
	return p.GetNamespace() + "\x00" + s + "\x00" + k.key(p)
}

// listCommand lists the objects of the namespace, or of every namespace
// with -A.
func (k kind[T, P]) listCommand(o *Options, use, short string) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: o.run(func(ctx context.Context, _ []string) error {
			items, err := k.list(ctx, o.client, o.scope(all))
			if err != nil {
				return err
			}
			return k.print(o, items, all)
		}),
	}
	c.Flags().BoolVarP(&all, "all-namespaces", "A", false, "List every namespace.")
	return c
}

// scope is the namespace a read works in: the current one, or every one
// (empty) with -A.
func (o *Options) scope(all bool) string {
	if all {
		return ""
	}
	return o.namespace
}

// lookup finds the object of the namespace that arg names: a route key
// (in service, when given) for kinds keyed by route, else a key. It returns
// the key as normalised, the namespace's objects, and the object, or a
// notFoundError.
func (k kind[T, P]) lookup(ctx context.Context, o *Options, arg, service string) (string, []T, P, error) {
	key := arg
	if k.service != nil {
		var err error
		if key, err = routes.ParseRouteKey(arg); err != nil {
			return "", nil, nil, err
		}
	}
	items, err := k.list(ctx, o.client, o.namespace)
	if err != nil {
		return key, nil, nil, err
	}
	var p P
	if k.service != nil {
		p, err = findByRoute(items, k, key, service, o.namespace)
	} else {
		p, err = findByKey(items, k, key, o.namespace)
	}
	return key, items, p, err
}

// complete completes the keys of the namespace's objects.
func (k kind[T, P]) complete(o *Options) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 || o.connect() != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		items, err := k.list(cmd.Context(), o.client, o.namespace)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		keys := keysOf(items, k)
		slices.Sort(keys)
		return slices.Compact(keys), cobra.ShellCompDirectiveNoFileComp
	}
}

// command runs do on the object its first argument names, with the other
// arguments; kinds keyed by route get --service.
func (k kind[T, P]) command(o *Options, use, short string, do func(ctx context.Context, p P, args []string) error) *cobra.Command {
	var service string
	c := &cobra.Command{
		Use:               use,
		Short:             short,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: k.complete(o),
		RunE: o.run(func(ctx context.Context, args []string) error {
			_, _, p, err := k.lookup(ctx, o, args[0], service)
			if err != nil {
				return err
			}
			return do(ctx, p, args[1:])
		}),
	}
	if k.service != nil {
		c.Flags().StringVar(&service, "service", "", "The service the route belongs to, when several services share the route key.")
	}
	return c
}

// showCommand shows the object its argument names: with -o json|yaml as
// stored, else as show prints it.
func (k kind[T, P]) showCommand(o *Options, use, short string, show func(ctx context.Context, p P) error) *cobra.Command {
	return k.command(o, use, short, func(ctx context.Context, p P, _ []string) error {
		if ok, err := o.structured(p); ok {
			return err
		}
		return show(ctx, p)
	})
}

// changeCommand changes the object its first argument names, with the
// other arguments, and says what changed.
func (k kind[T, P]) changeCommand(o *Options, use, short string, more func(*cobra.Command), change func(p P, args []string) error) *cobra.Command {
	var force bool
	c := k.command(o, use, short, func(ctx context.Context, p P, args []string) error {
		before, err := edit.Update(ctx, o.writer, p, force, func(p P) error { return change(p, args) })
		if err != nil {
			return err
		}
		return o.changed(k.label(p), k.describe(o, before), k.describe(o, p), before, p)
	})
	c.Args = cobra.MinimumNArgs(1)
	c.Flags().BoolVar(&force, "force", false, "Change it even if GitOps manages it, knowing the next sync reverts the change.")
	if more != nil {
		more(c)
	}
	return c
}

// deleteCommand deletes the object its argument names.
func (k kind[T, P]) deleteCommand(o *Options, use, short string) *cobra.Command {
	var force bool
	c := k.command(o, use, short, func(ctx context.Context, p P, _ []string) error {
		return o.delete(ctx, k.label(p), k.describe(o, p), p, force)
	})
	c.Flags().BoolVar(&force, "force", false, "Delete it even if GitOps manages it, knowing the next sync restores it.")
	return c
}
