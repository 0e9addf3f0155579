package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/routes"
)

func statusCommand(o *Options) *cobra.Command {
	var all bool
	var service string
	c := &cobra.Command{
		Use:   "status [ROUTE]",
		Short: "Show the state in effect of every gated route, or of one",
		Example: `  waygate status
  waygate status GET:/payments
  waygate status -A -o wide`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: gateKind.complete(o),
		RunE: o.run(func(ctx context.Context, args []string) error {
			gates, err := gateKind.list(ctx, o.client, o.scope(all))
			if err != nil {
				return err
			}
			if len(args) == 0 {
				return gateKind.print(o, gates, all)
			}
			key, err := routes.ParseRouteKey(args[0])
			if err != nil {
				return err
			}
			rg, err := findByRoute(gates, gateKind, key, service, o.namespace)
			if err != nil {
				return err
			}
			return o.printGate(rg)
		}),
	}
	c.Flags().BoolVarP(&all, "all-namespaces", "A", false, "Show the routes of every namespace.")
	c.Flags().StringVar(&service, "service", "", "The service the route belongs to, when gates of several services share the key.")
	return c
}

// effective is the state in effect, as the operator last reported it.
func effective(rg *waygatev1.RouteGate) (state, reason string) {
	if rg.Status.ObservedGeneration != rg.Generation || rg.Status.State == "" {
		return "pending", "the operator has not reported on this change yet"
	}
	return string(rg.Status.State), rg.Status.Reason
}

// gateKind is RouteGate to the commands.
var gateKind = kind[waygatev1.RouteGate, *waygatev1.RouteGate]{
	name: "RouteGate",
	list: func(ctx context.Context, c client.Reader, ns string) ([]waygatev1.RouteGate, error) {
		var l waygatev1.RouteGateList
		return listItems(ctx, c, ns, &l, &l.Items)
	},
	key:      func(g *waygatev1.RouteGate) string { return string(g.Spec.Route) },
	service:  func(g *waygatev1.RouteGate) string { return string(g.Spec.Service) },
	label:    func(g *waygatev1.RouteGate) string { return routeLabel(string(g.Spec.Route), string(g.Spec.Service)) },
	describe: func(o *Options, g *waygatev1.RouteGate) string { return o.describeSpec(&g.Spec) },
	hint:     "`waygate status` lists the gated routes",
	headers:  []string{"ROUTE", "SERVICE", "STATE", "REASON", "NEXT CHANGE"},
	wide:     []string{"ALLOWED ENVS", "GOVERNED BY", "ROUTEGATE", "READY", "AGE"},
	row: func(o *Options, rg *waygatev1.RouteGate) []string {
		state, reason := effective(rg)
		return []string{string(rg.Spec.Route), orDash(string(rg.Spec.Service)), state, orDash(reason), o.nextChange(rg.Status.NextTransition)}
	},
	wideRow: func(o *Options, rg *waygatev1.RouteGate) []string {
		return []string{orDash(strings.Join(rg.Spec.AllowedEnvs, ",")), orDash(rg.Status.GovernedBy), rg.Name,
			ready(rg.Status.Conditions, rg.Generation), o.age(rg.CreationTimestamp.Time)}
	},
	asList: func(items []waygatev1.RouteGate) runtime.Object { return &waygatev1.RouteGateList{Items: items} },
	empty:  "No gated routes: every route is served. `waygate disable ROUTE` or `waygate maintenance ROUTE` gates one.",
}

// nextChange is when a state changes on its own next, as an age.
func (o *Options) nextChange(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	return o.age(t.Time)
}

func (o *Options) printGate(rg *waygatev1.RouteGate) error {
	if ok, err := o.structured(rg); ok {
		return err
	}
	state, reason := effective(rg)
	var rows [][]string
	add := func(k, v string) { rows = append(rows, []string{k + ":", v}) }
	add("Route", string(rg.Spec.Route))
	add("Service", orDash(string(rg.Spec.Service)))
	add("State", state)
	add("Reason", orDash(reason))
	if rg.Status.GovernedBy != "" {
		add("Governed by", "routegate "+rg.Status.GovernedBy+" (service-wide maintenance)")
	}
	if t := rg.Status.NextTransition; t != nil {
		add("Next change", fmt.Sprintf("%s (%s)", o.formatTime(t.Time), o.nextChange(t)))
	}
	add("Asked for", o.describeSpec(&rg.Spec))
	add("Ready", readyLine(rg.Status.Conditions, rg.Generation))
	add("RouteGate", rg.Namespace+"/"+rg.Name)
	if tool, mark := audit.ManagedBy(rg); tool != "" {
		add("Managed by", fmt.Sprintf("%s (%s)", tool, mark))
	}
	o.keyValues(rows)
	return nil
}

// keyValues prints "Key:  value" lines aligned.
func (o *Options) keyValues(rows [][]string) {
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	for _, r := range rows {
		o.printf("%-*s %s\n", width+1, r[0], r[1])
	}
}
