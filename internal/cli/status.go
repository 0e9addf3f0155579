package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
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
		ValidArgsFunction: o.completeRoutes,
		RunE: o.run(func(ctx context.Context, args []string) error {
			ns := o.namespace
			if all {
				ns = ""
			}
			gates, err := o.gates(ctx, ns)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				return o.printGates(gates, all)
			}
			key, err := routeKey(args[0])
			if err != nil {
				return err
			}
			rg, err := findByRoute(gates, gateRoute, key, service, o.namespace)
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

func (o *Options) printGates(gates []waygatev1.RouteGate, all bool) error {
	slices.SortFunc(gates, func(a, b waygatev1.RouteGate) int {
		return strings.Compare(a.Namespace+"\x00"+string(a.Spec.Service)+"\x00"+string(a.Spec.Route), b.Namespace+"\x00"+string(b.Spec.Service)+"\x00"+string(b.Spec.Route))
	})
	if ok, err := o.structured(&waygatev1.RouteGateList{Items: gates}); ok {
		return err
	}
	if len(gates) == 0 {
		_, _ = fmt.Fprintln(o.ErrOut, "No gated routes: every route is served. `waygate disable ROUTE` or `waygate maintenance ROUTE` gates one.")
		return nil
	}
	headers := []string{"ROUTE", "SERVICE", "STATE", "REASON", "NEXT CHANGE"}
	if o.Output == "wide" {
		headers = append(headers, "ALLOWED ENVS", "GOVERNED BY", "ROUTEGATE", "READY", "AGE")
	}
	if all {
		headers = append([]string{"NAMESPACE"}, headers...)
	}
	var rows [][]string
	for i := range gates {
		rg := &gates[i]
		state, reason := effective(rg)
		next := "-"
		if t := rg.Status.NextTransition; t != nil {
			next = o.age(t.Time)
		}
		row := []string{string(rg.Spec.Route), orDash(string(rg.Spec.Service)), state, orDash(reason), next}
		if o.Output == "wide" {
			row = append(row, orDash(strings.Join(rg.Spec.AllowedEnvs, ",")), orDash(rg.Status.GovernedBy), rg.Name, ready(rg.Status.Conditions, rg.Generation), o.age(rg.CreationTimestamp.Time))
		}
		if all {
			row = append([]string{rg.Namespace}, row...)
		}
		rows = append(rows, row)
	}
	o.table(headers, rows)
	return nil
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
		add("Next change", fmt.Sprintf("%s (%s)", o.formatTime(t.Time), o.age(t.Time)))
	}
	add("Asked for", o.describeSpec(&rg.Spec))
	add("Ready", readyLine(rg.Status.Conditions, rg.Generation))
	add("RouteGate", rg.Namespace+"/"+rg.Name)
	if tool, mark := managedBy(rg); tool != "" {
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
