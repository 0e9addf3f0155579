package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/edit"
)

func rateLimitCommand(o *Options) *cobra.Command {
	rl := &cobra.Command{Use: "rl", Short: "Rate limits of routes, services and namespaces (RateLimitPolicy)"}
	rl.AddCommand(policyKind.listCommand(o, "list", "List the rate limits"), rlGetCommand(o), rlSetCommand(o), policyKind.deleteCommand(o, "delete ROUTE", "Remove the rate limit of a route"), rlResetCommand(o))
	return rl
}

// policyKind is RateLimitPolicy to the commands.
var policyKind = kind[waygatev1.RateLimitPolicy, *waygatev1.RateLimitPolicy]{
	name: "RateLimitPolicy",
	list: func(ctx context.Context, c client.Reader, ns string) ([]waygatev1.RateLimitPolicy, error) {
		var l waygatev1.RateLimitPolicyList
		return listItems(ctx, c, ns, &l, &l.Items)
	},
	key:     func(p *waygatev1.RateLimitPolicy) string { return string(p.Spec.Route) },
	service: func(p *waygatev1.RateLimitPolicy) string { return string(p.Spec.Service) },
	label: func(p *waygatev1.RateLimitPolicy) string {
		return routeLabel(string(p.Spec.Route), string(p.Spec.Service))
	},
	describe: func(_ *Options, p *waygatev1.RateLimitPolicy) string { return describeLimit(p) },
	hint:     "`waygate rl list` lists the rate limits",
	headers:  []string{"ROUTE", "SERVICE", "LIMIT", "ALGORITHM", "KEY", "BURST", "ENABLED", "READY"},
	wide:     []string{"TIERS", "EXEMPT", "POLICY", "AGE"},
	row: func(_ *Options, p *waygatev1.RateLimitPolicy) []string {
		return []string{string(p.Spec.Route), orDash(string(p.Spec.Service)), p.Spec.Limit, orDash(string(p.Spec.Algorithm)),
			orDash(string(p.Spec.KeyStrategy)), burst(p), strconv.FormatBool(p.Spec.Enabled), ready(p.Status.Conditions, p.Generation)}
	},
	wideRow: func(o *Options, p *waygatev1.RateLimitPolicy) []string {
		var tiers []string
		for _, t := range p.Spec.Tiers {
			tiers = append(tiers, t.Name+"="+t.Limit)
		}
		return []string{orDash(strings.Join(tiers, ",")), orDash(strings.Join(append(slices.Clone(p.Spec.ExemptCIDRs), p.Spec.ExemptRoles...), ",")),
			p.Name, o.age(p.CreationTimestamp.Time)}
	},
	asList: func(items []waygatev1.RateLimitPolicy) runtime.Object {
		return &waygatev1.RateLimitPolicyList{Items: items}
	},
	empty: "No rate limits. `waygate rl set ROUTE 100/minute` sets one.",
}

func burst(p *waygatev1.RateLimitPolicy) string {
	if p.Spec.Burst == 0 {
		return "-"
	}
	return strconv.Itoa(int(p.Spec.Burst))
}

// readyLine is the Ready condition in a detail view: status, reason and
// message.
func readyLine(conds []metav1.Condition, generation int64) string {
	c := meta.FindStatusCondition(conds, waygatev1.ConditionReady)
	if c == nil || c.ObservedGeneration != generation {
		return "Pending: the operator has not reported on the latest change yet"
	}
	return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
}

// ready is the Ready condition in a table cell: True, or False (Reason),
// or Pending while the operator has not seen this generation.
func ready(conds []metav1.Condition, generation int64) string {
	c := meta.FindStatusCondition(conds, waygatev1.ConditionReady)
	switch {
	case c == nil || c.ObservedGeneration != generation:
		return "Pending"
	case c.Status == metav1.ConditionTrue:
		return "True"
	default:
		return fmt.Sprintf("%s (%s)", c.Status, c.Reason)
	}
}

func rlGetCommand(o *Options) *cobra.Command {
	return policyKind.showCommand(o, "get ROUTE", "Show the rate limit of a route", func(_ context.Context, p *waygatev1.RateLimitPolicy) error {
		rows := [][]string{
			{"Route:", string(p.Spec.Route)}, {"Service:", orDash(string(p.Spec.Service))}, {"Limit:", p.Spec.Limit},
			{"Algorithm:", orDash(string(p.Spec.Algorithm))}, {"Key:", orDash(string(p.Spec.KeyStrategy))}, {"Burst:", burst(p)},
			{"Enabled:", strconv.FormatBool(p.Spec.Enabled)}, {"Scope:", orDash(p.Status.Scope)},
		}
		for _, t := range p.Spec.Tiers {
			rows = append(rows, []string{"Tier " + t.Name + ":", t.Limit})
		}
		if at := p.Annotations[audit.ResetAnnotation]; at != "" {
			rows = append(rows, []string{"Last reset:", at})
		}
		rows = append(rows, []string{"Ready:", readyLine(p.Status.Conditions, p.Generation)}, []string{"RateLimitPolicy:", p.Namespace + "/" + p.Name})
		o.keyValues(rows)
		return nil
	})
}

func rlSetCommand(o *Options) *cobra.Command {
	var f routeFlags
	var algorithm, key string
	var burstSize int32
	c := &cobra.Command{
		Use:   "set ROUTE LIMIT",
		Short: "Set the rate limit of a route (100/minute), creating the policy if needed",
		Example: `  waygate rl set GET:/payments 100/minute
  waygate rl set '*' 1000/hour --service orders --key api_key
  waygate rl set POST:/login 5/minute --algorithm token_bucket --burst 10`,
		Args: cobra.ExactArgs(2),
		RunE: o.run(func(ctx context.Context, args []string) error {
			limit := args[1]
			set := func(p *waygatev1.RateLimitPolicy) {
				p.Spec.Limit = limit
				if algorithm != "" {
					p.Spec.Algorithm = waygatev1.RateLimitAlgorithm(algorithm)
				}
				if key != "" {
					p.Spec.KeyStrategy = waygatev1.KeyStrategy(key)
				}
				if burstSize > 0 {
					p.Spec.Burst = burstSize
				}
			}
			route, _, p, err := policyKind.lookup(ctx, o, args[0], f.service)
			if err != nil && !isNotFound(err) {
				return err
			}
			if p == nil {
				p = &waygatev1.RateLimitPolicy{
					ObjectMeta: metav1.ObjectMeta{Namespace: o.namespace},
					Spec:       waygatev1.RateLimitPolicySpec{Route: waygatev1.RouteKey(route), Service: waygatev1.ServiceName(f.service), Enabled: true},
				}
				set(p)
				if err := o.writer.NameForRoute(ctx, p, f.service, route); err != nil {
					return err
				}
				return o.create(ctx, policyKind.label(p), p, func() string { return describeLimit(p) })
			}
			before, err := edit.Update(ctx, o.writer, p, f.force, func(p *waygatev1.RateLimitPolicy) error {
				set(p)
				return nil
			})
			if err != nil {
				return err
			}
			return o.changed(policyKind.label(p), describeLimit(before), describeLimit(p), before, p)
		}),
	}
	c.Flags().StringVar(&f.service, "service", "", "The service the route belongs to (spec.service); with ROUTE \"*\", every route of it.")
	c.Flags().BoolVar(&f.force, "force", false, "Change a policy that GitOps manages, knowing the next sync reverts it.")
	c.Flags().StringVar(&algorithm, "algorithm", "", "fixed_window, sliding_window or token_bucket (unchanged when left out; new policies default to fixed_window).")
	c.Flags().StringVar(&key, "key", "", "What a limit counts per: ip, user, api_key, header or global (unchanged when left out).")
	c.Flags().Int32Var(&burstSize, "burst", 0, "Requests allowed above the limit in a burst (unchanged when left out).")
	_ = c.RegisterFlagCompletionFunc("algorithm", cobra.FixedCompletions([]string{"fixed_window", "sliding_window", "token_bucket"}, cobra.ShellCompDirectiveNoFileComp))
	_ = c.RegisterFlagCompletionFunc("key", cobra.FixedCompletions([]string{"ip", "user", "api_key", "header", "global"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// describeLimit says in a few words what a policy enforces.
func describeLimit(p *waygatev1.RateLimitPolicy) string {
	s := p.Spec.Limit
	var parts []string
	for _, v := range []string{string(p.Spec.Algorithm), string(p.Spec.KeyStrategy)} {
		if v != "" {
			parts = append(parts, v)
		}
	}
	if p.Spec.Burst > 0 {
		parts = append(parts, "burst "+strconv.Itoa(int(p.Spec.Burst)))
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	if !p.Spec.Enabled {
		s += " disabled"
	}
	return s
}

func rlResetCommand(o *Options) *cobra.Command {
	return policyKind.command(o, "reset ROUTE", "Ask the data plane to reset the counters of a route's rate limit (audited as rl_reset)",
		func(ctx context.Context, p *waygatev1.RateLimitPolicy, _ []string) error {
			at := o.Now().UTC().Format(time.RFC3339Nano)
			// A reset changes no spec, so GitOps does not revert it.
			if _, err := edit.Update(ctx, o.writer, p, true, edit.SetAnnotation[*waygatev1.RateLimitPolicy](audit.ResetAnnotation, at)); err != nil {
				return err
			}
			return o.report(p, "%s: counters reset requested at %s (%s %s/%s)", policyKind.label(p), o.formatTime(o.Now()), kindOf(p), p.Namespace, p.Name)
		})
}
