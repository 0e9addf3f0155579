package cli

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

func flagsCommand(o *Options) *cobra.Command {
	flags := &cobra.Command{Use: "flags", Aliases: []string{"flag"}, Short: "Feature flags: create, switch, target, roll out (FeatureFlag)"}
	flags.AddCommand(flagKind.listCommand(o, "list", "List the feature flags"), flagGetCommand(o), flagCreateCommand(o),
		flagKind.changeCommand(o, "enable KEY", "Turn a flag on: its targeting decides what it serves", nil, func(f *waygatev1.FeatureFlag, _ []string) error {
			f.Spec.Enabled = true
			return nil
		}),
		flagKind.changeCommand(o, "disable KEY", "Turn a flag off: it serves its off variation to everyone", nil, func(f *waygatev1.FeatureFlag, _ []string) error {
			f.Spec.Enabled = false
			return nil
		}),
		flagKind.deleteCommand(o, "delete KEY", "Delete a feature flag"), flagAddRuleCommand(o), flagRemoveRuleCommand(o), flagTargetCommand(o), flagUntargetCommand(o), flagVariationsCommand(o), flagEvalCommand(o))
	return flags
}

// flagKind is FeatureFlag to the commands.
var flagKind = kind[waygatev1.FeatureFlag, *waygatev1.FeatureFlag]{
	name: "FeatureFlag",
	list: func(ctx context.Context, c client.Reader, ns string) ([]waygatev1.FeatureFlag, error) {
		var l waygatev1.FeatureFlagList
		return listItems(ctx, c, ns, &l, &l.Items)
	},
	key:      (*waygatev1.FeatureFlag).Key,
	label:    func(f *waygatev1.FeatureFlag) string { return "flag:" + f.Key() },
	describe: func(_ *Options, f *waygatev1.FeatureFlag) string { return describeFlag(f) },
	hint:     "`waygate flags list` lists the flags",
	headers:  []string{"KEY", "TYPE", "ENABLED", "VARIATIONS", "OFF", "FALLTHROUGH", "RULES", "TARGETED", "READY"},
	wide:     []string{"NAME", "TAGS", "FEATUREFLAG", "AGE"},
	row: func(_ *Options, f *waygatev1.FeatureFlag) []string {
		var names []string
		for _, v := range f.Spec.Variations {
			names = append(names, v.Name)
		}
		return []string{f.Key(), orDash(string(f.Spec.Type)), strconv.FormatBool(f.Spec.Enabled), strings.Join(names, ","), f.Spec.OffVariation,
			formatServe(f.Spec.Fallthrough.Variation, f.Spec.Fallthrough.Rollout), strconv.Itoa(len(f.Spec.Rules)), strconv.Itoa(targeted(f)),
			ready(f.Status.Conditions, f.Generation)}
	},
	wideRow: func(o *Options, f *waygatev1.FeatureFlag) []string {
		return []string{orDash(f.Spec.Name), orDash(strings.Join(f.Spec.Tags, ",")), f.Name, o.age(f.CreationTimestamp.Time)}
	},
	asList: func(items []waygatev1.FeatureFlag) runtime.Object { return &waygatev1.FeatureFlagList{Items: items} },
	empty:  "No feature flags. `waygate flags create KEY` creates one.",
}

// targeted counts the context keys a flag targets individually.
func targeted(f *waygatev1.FeatureFlag) int {
	n := 0
	for _, t := range f.Spec.Targets {
		n += len(t.Keys)
	}
	return n
}

// describeFlag sums a flag up in a few words, so a change shows before and
// after.
func describeFlag(f *waygatev1.FeatureFlag) string {
	state := "disabled"
	if f.Spec.Enabled {
		state = "enabled"
	}
	return fmt.Sprintf("%s, fallthrough %s, %s, %d targeted", state, formatServe(f.Spec.Fallthrough.Variation, f.Spec.Fallthrough.Rollout), count(len(f.Spec.Rules), "rule"), targeted(f))
}

func flagGetCommand(o *Options) *cobra.Command {
	return flagKind.showCommand(o, "get KEY", "Show a feature flag: variations, targets, rules, rollout", func(_ context.Context, f *waygatev1.FeatureFlag) error {
		rows := [][]string{{"Key:", f.Key()}, {"Name:", orDash(f.Spec.Name)}, {"Description:", orDash(f.Spec.Description)},
			{"Type:", orDash(string(f.Spec.Type))}, {"Enabled:", strconv.FormatBool(f.Spec.Enabled)}}
		for _, v := range f.Spec.Variations {
			rows = append(rows, []string{"Variation " + v.Name + ":", string(v.Value.Raw)})
		}
		rows = append(rows, []string{"Off:", f.Spec.OffVariation}, []string{"Fallthrough:", formatServe(f.Spec.Fallthrough.Variation, f.Spec.Fallthrough.Rollout)})
		for _, p := range f.Spec.Prerequisites {
			rows = append(rows, []string{"Prerequisite:", fmt.Sprintf("flag %s serves %s", p.Flag, p.Variation)})
		}
		for _, t := range f.Spec.Targets {
			kind := ""
			if t.ContextKind != "" && t.ContextKind != "user" {
				kind = " (" + t.ContextKind + ")"
			}
			rows = append(rows, []string{"Target " + t.Variation + kind + ":", strings.Join(t.Keys, ", ")})
		}
		for i, r := range f.Spec.Rules {
			rows = append(rows, []string{fmt.Sprintf("Rule %d (%s):", i+1, orDash(r.ID)), formatClauses(r.Clauses) + " → " + formatServe(r.Variation, r.Rollout)})
		}
		if len(f.Spec.Tags) > 0 {
			rows = append(rows, []string{"Tags:", strings.Join(f.Spec.Tags, ", ")})
		}
		rows = append(rows, []string{"Ready:", readyLine(f.Status.Conditions, f.Generation)}, []string{"FeatureFlag:", f.Namespace + "/" + f.Name})
		o.keyValues(rows)
		return nil
	})
}

func flagCreateCommand(o *Options) *cobra.Command {
	var typ, off, fallthroughTo, name, description string
	var variations, tags []string
	var enabled bool
	c := &cobra.Command{
		Use:   "create KEY",
		Short: "Create a feature flag (boolean on/off unless --type and --variation say otherwise)",
		Long: `Create a feature flag. It is created disabled, serving its off variation to
everyone, unless --enabled: turn it on with "waygate flags enable KEY" once
its targeting is as it should be. (A FeatureFlag written without
spec.enabled, as with kubectl apply, is enabled: the resource's default.)`,
		Example: `  waygate flags create new-checkout
  waygate flags create checkout-theme --type string --variation classic=classic --variation bold=bold --off classic --fallthrough bold`,
		Args: cobra.ExactArgs(1),
		RunE: o.run(func(ctx context.Context, args []string) error {
			key := args[0]
			t := waygatev1.FlagType(typ)
			spec := waygatev1.FeatureFlagSpec{Type: t, Name: name, Description: description, Tags: tags, Enabled: enabled,
				OffVariation: off, Fallthrough: waygatev1.Serve{Variation: fallthroughTo}}
			if len(variations) == 0 && t == waygatev1.FlagBoolean {
				variations = []string{"on=true", "off=false"}
				spec.OffVariation = cmp.Or(off, "off")
				spec.Fallthrough.Variation = cmp.Or(fallthroughTo, "on")
			}
			var names []string
			for _, v := range variations {
				n, raw, ok := strings.Cut(v, "=")
				if !ok || n == "" {
					return fmt.Errorf("--variation %q: write NAME=VALUE, e.g. --variation bold=bold", v)
				}
				value, err := variationValue(t, raw)
				if err != nil {
					return fmt.Errorf("--variation %s: %w", n, err)
				}
				spec.Variations = append(spec.Variations, waygatev1.Variation{Name: n, Value: value})
				names = append(names, n)
			}
			if spec.OffVariation == "" || spec.Fallthrough.Variation == "" {
				return fmt.Errorf("name the variation served when the flag is off (--off) and when no rule matches (--fallthrough): one of %s", strings.Join(names, ", "))
			}
			f := &waygatev1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: o.namespace, Name: objectName(key)}, Spec: spec}
			if f.Name != key {
				f.Spec.Key = waygatev1.Key(key)
			}
			return o.create(ctx, "flag:"+key, f, func() string {
				if f.Spec.Enabled {
					return describeFlag(f)
				}
				return fmt.Sprintf("%s, serving %s to everyone until `waygate flags enable %s`", describeFlag(f), f.Spec.OffVariation, key)
			})
		}),
	}
	c.Flags().StringVar(&typ, "type", "boolean", "boolean, string, integer, float or json.")
	c.Flags().StringArrayVar(&variations, "variation", nil, "A variation as NAME=VALUE (repeat); boolean flags get on=true and off=false when left out.")
	c.Flags().StringVar(&off, "off", "", "The variation served while the flag is disabled.")
	c.Flags().StringVar(&fallthroughTo, "fallthrough", "", "The variation served when no target or rule matches.")
	c.Flags().StringVar(&name, "name", "", "A human-readable name.")
	c.Flags().StringVar(&description, "description", "", "What the flag is for.")
	c.Flags().StringArrayVar(&tags, "tag", nil, "A tag (repeat).")
	c.Flags().BoolVar(&enabled, "enabled", false, "Create it enabled (it is created disabled, serving its off variation).")
	_ = c.RegisterFlagCompletionFunc("type", cobra.FixedCompletions([]string{"boolean", "string", "integer", "float", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

func flagAddRuleCommand(o *Options) *cobra.Command {
	var clauses []string
	var serve, rollout, id, description string
	return flagKind.changeCommand(o, "add-rule KEY", "Add a targeting rule: contexts matching every --clause get --serve (or a --rollout)", func(c *cobra.Command) {
		c.Flags().StringArrayVar(&clauses, "clause", nil, `A condition, "ATTRIBUTE OPERATOR VALUE[,VALUE...]", e.g. "country in US,CA" (repeat: all must match; "!in" negates).`)
		c.Flags().StringVar(&serve, "serve", "", "The variation the rule serves.")
		c.Flags().StringVar(&rollout, "rollout", "", "Serve a percentage rollout instead, e.g. on=25,off=75.")
		c.Flags().StringVar(&id, "id", "", "An id for the rule (r1, r2, ... when left out).")
		c.Flags().StringVar(&description, "description", "", "What the rule is for.")
	}, func(f *waygatev1.FeatureFlag, _ []string) error {
		cs, err := parseClauses(clauses)
		if err != nil {
			return err
		}
		rule := waygatev1.FlagRule{Description: description, Clauses: cs, Variation: serve}
		switch {
		case (serve == "") == (rollout == ""):
			return fmt.Errorf("say what the rule serves: --serve VARIATION or --rollout on=25,off=75")
		case rollout != "":
			if rule.Rollout, err = parseRollout(rollout); err != nil {
				return err
			}
		}
		if rule.ID, err = newRuleID(id, ruleIDs(f.Spec.Rules, flagRuleID)); err != nil {
			return err
		}
		f.Spec.Rules = append(f.Spec.Rules, rule)
		return nil
	})
}

func flagRemoveRuleCommand(o *Options) *cobra.Command {
	c := flagKind.changeCommand(o, "remove-rule KEY RULE", "Remove a targeting rule, by id or number", nil, func(f *waygatev1.FeatureFlag, args []string) error {
		return removeRule(&f.Spec.Rules, flagRuleID, args[0])
	})
	c.Args = cobra.ExactArgs(2)
	return c
}

func flagTargetCommand(o *Options) *cobra.Command {
	var kind string
	c := flagKind.changeCommand(o, "target KEY VARIATION CONTEXT-KEY...", "Serve a variation to particular contexts, before any rule", func(c *cobra.Command) {
		c.Flags().StringVar(&kind, "kind", "", "The context kind of the keys (user when left out).")
	}, func(f *waygatev1.FeatureFlag, args []string) error {
		variation, keys := args[0], args[1:]
		if !slices.ContainsFunc(f.Spec.Variations, func(v waygatev1.Variation) bool { return v.Name == variation }) {
			var names []string
			for _, v := range f.Spec.Variations {
				names = append(names, v.Name)
			}
			return fmt.Errorf("flag %s has no variation %s: use one of %s", f.Key(), variation, strings.Join(names, ", "))
		}
		// A context is targeted to one variation: take the keys out of the others.
		untarget(f, kind, keys)
		i := slices.IndexFunc(f.Spec.Targets, func(t waygatev1.Target) bool { return t.Variation == variation && sameKind(t.ContextKind, kind) })
		if i < 0 {
			f.Spec.Targets = append(f.Spec.Targets, waygatev1.Target{Variation: variation, ContextKind: kind})
			i = len(f.Spec.Targets) - 1
		}
		f.Spec.Targets[i].Keys = append(f.Spec.Targets[i].Keys, keys...)
		return nil
	})
	c.Args = cobra.MinimumNArgs(3)
	return c
}

func flagUntargetCommand(o *Options) *cobra.Command {
	var kind string
	c := flagKind.changeCommand(o, "untarget KEY CONTEXT-KEY...", "Stop targeting contexts: rules and the fallthrough decide for them again", func(c *cobra.Command) {
		c.Flags().StringVar(&kind, "kind", "", "The context kind of the keys (user when left out).")
	}, func(f *waygatev1.FeatureFlag, keys []string) error {
		untarget(f, kind, keys)
		return nil
	})
	c.Args = cobra.MinimumNArgs(2)
	return c
}

// untarget removes keys of kind from every target of f, and the targets
// left empty.
func untarget(f *waygatev1.FeatureFlag, kind string, keys []string) {
	var out []waygatev1.Target
	for _, t := range f.Spec.Targets {
		if sameKind(t.ContextKind, kind) {
			t.Keys = slices.DeleteFunc(slices.Clone(t.Keys), func(k string) bool { return slices.Contains(keys, k) })
		}
		if len(t.Keys) > 0 {
			out = append(out, t)
		}
	}
	f.Spec.Targets = out
}

// sameKind tells whether two context kinds are the same; empty is "user".
func sameKind(a, b string) bool { return cmp.Or(a, "user") == cmp.Or(b, "user") }

func flagVariationsCommand(o *Options) *cobra.Command {
	return flagKind.showCommand(o, "variations KEY", "List a flag's variations and which one serves when", func(_ context.Context, f *waygatev1.FeatureFlag) error {
		var rows [][]string
		for _, v := range f.Spec.Variations {
			var serves []string
			if v.Name == f.Spec.OffVariation {
				serves = append(serves, "off")
			}
			if v.Name == f.Spec.Fallthrough.Variation {
				serves = append(serves, "fallthrough")
			}
			rows = append(rows, []string{v.Name, string(v.Value.Raw), orDash(strings.Join(serves, ", ")), orDash(v.Description)})
		}
		o.table([]string{"NAME", "VALUE", "SERVED", "DESCRIPTION"}, rows)
		return nil
	})
}
