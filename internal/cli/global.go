package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/routes"
)

func globalCommand(o *Options) *cobra.Command {
	g := &cobra.Command{
		Use:   "global",
		Short: "Maintenance of every route of a service (--service) or of the namespace",
		Long: `Maintenance of every route at once: of a service with --service, else of
the whole namespace. It is the RouteGate with route "*"; exempt routes and
(unless --include-force-active) force-active routes stay served.`,
	}
	g.AddCommand(globalStatusCommand(o),
		globalStateCommand(o, "enable", "Put every route into maintenance (503 MAINTENANCE_MODE), except the exempt ones", waygatev1.RouteMaintenance),
		globalStateCommand(o, "disable", "End maintenance of every route: each route's own state applies again", waygatev1.RouteActive),
		exemptCommand(o, "exempt-add ROUTE...", "Keep routes served during maintenance of every route", true),
		exemptCommand(o, "exempt-remove ROUTE...", "Stop exempting routes from maintenance of every route", false))
	return g
}

// globalStateCommand puts the "*" gate into state; maintenance creates the
// gate when there is none, and may include force-active routes.
func globalStateCommand(o *Options, use, short string, state waygatev1.RouteState) *cobra.Command {
	var f routeFlags
	var includeForceActive bool
	maintenance := state == waygatev1.RouteMaintenance
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: o.run(func(ctx context.Context, _ []string) error {
			return o.changeRoute(ctx, waygatev1.AllRoutes, f, maintenance, func(spec *waygatev1.RouteGateSpec) error {
				spec.State, spec.Window, spec.IncludeForceActive = state, nil, includeForceActive
				return nil
			})
		}),
	}
	f.add(c)
	if maintenance {
		c.Flags().BoolVar(&includeForceActive, "include-force-active", false, "Put routes with forceActive into maintenance too.")
	}
	return c
}

// exemptCommand adds routes to, or removes them from, the exempt list of
// the "*" gate (the reason stays unless --reason is given).
func exemptCommand(o *Options, use, short string, add bool) *cobra.Command {
	var f routeFlags
	c := &cobra.Command{
		Use:               use,
		Short:             short,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: gateKind.complete(o),
		RunE: o.run(func(ctx context.Context, args []string) error {
			var keys []waygatev1.RouteKey
			for _, a := range args {
				k, err := routes.ParseRouteKey(a)
				if err != nil {
					return err
				}
				if k == waygatev1.AllRoutes {
					return fmt.Errorf(`"*" cannot be exempt from maintenance of every route: use waygate global disable`)
				}
				keys = append(keys, waygatev1.RouteKey(k))
			}
			return o.changeRoute(ctx, waygatev1.AllRoutes, f, add, func(spec *waygatev1.RouteGateSpec) error {
				for _, k := range keys {
					has := slices.Contains(spec.Exempt, k)
					switch {
					case add && !has:
						spec.Exempt = append(spec.Exempt, k)
					case !add && has:
						spec.Exempt = slices.DeleteFunc(spec.Exempt, func(e waygatev1.RouteKey) bool { return e == k })
					case !add:
						return fmt.Errorf("%s is not exempt; exempt now: %s", k, orDash(strings.Join(routeKeysOf(spec.Exempt), ", ")))
					}
				}
				return nil
			})
		}),
	}
	f.add(c)
	return c
}

func globalStatusCommand(o *Options) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Show maintenance of every route: per service and for the namespace",
		Args:  cobra.NoArgs,
		RunE: o.run(func(ctx context.Context, _ []string) error {
			gates, err := gateKind.list(ctx, o.client, o.scope(all))
			if err != nil {
				return err
			}
			var wide []waygatev1.RouteGate
			governed := map[string]int{}
			for _, g := range gates {
				if g.Spec.Route == waygatev1.AllRoutes {
					wide = append(wide, g)
				}
				if g.Status.GovernedBy != "" {
					governed[g.Namespace+"/"+g.Status.GovernedBy]++
				}
			}
			if ok, err := o.structured(&waygatev1.RouteGateList{Items: wide}); ok {
				return err
			}
			if len(wide) == 0 {
				_, _ = fmt.Fprintln(o.ErrOut, "No maintenance of every route is set up: `waygate global enable [--service S] -r REASON` starts one.")
				return nil
			}
			headers := []string{"SERVICE", "STATE", "REASON", "EXEMPT", "FORCE-ACTIVE TOO", "ROUTES GOVERNED", "NEXT CHANGE"}
			if all {
				headers = append([]string{"NAMESPACE"}, headers...)
			}
			var rows [][]string
			for i := range wide {
				g := &wide[i]
				state, reason := effective(g)
				service := string(g.Spec.Service)
				if service == "" {
					service = "(namespace)"
				}
				row := []string{service, state, orDash(reason), orDash(strings.Join(routeKeysOf(g.Spec.Exempt), ",")),
					strconv.FormatBool(g.Spec.IncludeForceActive), strconv.Itoa(governed[g.Namespace+"/"+g.Name]), o.nextChange(g.Status.NextTransition)}
				if all {
					row = append([]string{g.Namespace}, row...)
				}
				rows = append(rows, row)
			}
			o.table(headers, rows)
			return nil
		}),
	}
	c.Flags().BoolVarP(&all, "all-namespaces", "A", false, "Show every namespace.")
	return c
}
