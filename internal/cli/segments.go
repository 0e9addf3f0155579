package cli

import (
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
	"github.com/waygate-dev/waygate/internal/audit"
)

func segmentsCommand(o *Options) *cobra.Command {
	segs := &cobra.Command{Use: "segments", Aliases: []string{"segment"}, Short: "Segments: reusable groups of contexts for flag targeting (Segment)"}
	segs.AddCommand(segmentKind.listCommand(o, "list", "List the segments"), segmentGetCommand(o), segmentCreateCommand(o),
		segmentKind.deleteCommand(o, "delete KEY", "Delete a segment (flags that name it then report it missing)"),
		segmentKind.changeCommand(o, "include KEY CONTEXT-KEY...", "Put contexts in a segment, whatever its rules say", nil, func(s *waygatev1.Segment, keys []string) error {
			s.Spec.Excluded = without(s.Spec.Excluded, keys)
			s.Spec.Included = with(s.Spec.Included, keys)
			return nil
		}),
		segmentKind.changeCommand(o, "exclude KEY CONTEXT-KEY...", "Keep contexts out of a segment, whatever its rules say", nil, func(s *waygatev1.Segment, keys []string) error {
			s.Spec.Included = without(s.Spec.Included, keys)
			s.Spec.Excluded = with(s.Spec.Excluded, keys)
			return nil
		}),
		segmentAddRuleCommand(o), segmentRemoveRuleCommand(o))
	return segs
}

// with is list and the keys it lacks; without is list less keys.
func with(list, keys []string) []string {
	for _, k := range keys {
		if !slices.Contains(list, k) {
			list = append(list, k)
		}
	}
	return list
}

func without(list, keys []string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(k string) bool { return slices.Contains(keys, k) })
}

// segmentKind is Segment to the commands.
var segmentKind = kind[waygatev1.Segment, *waygatev1.Segment]{
	name: "Segment",
	list: func(ctx context.Context, c client.Reader, ns string) ([]waygatev1.Segment, error) {
		var l waygatev1.SegmentList
		return listItems(ctx, c, ns, &l, &l.Items)
	},
	key:      (*waygatev1.Segment).Key,
	label:    func(s *waygatev1.Segment) string { return "segment:" + s.Key() },
	describe: func(_ *Options, s *waygatev1.Segment) string { return audit.SegmentStatus(s) },
	hint:     "`waygate segments list` lists the segments",
	headers:  []string{"KEY", "INCLUDED", "EXCLUDED", "RULES", "READY"},
	wide:     []string{"NAME", "SEGMENT", "AGE"},
	row: func(_ *Options, s *waygatev1.Segment) []string {
		return []string{s.Key(), strconv.Itoa(len(s.Spec.Included)), strconv.Itoa(len(s.Spec.Excluded)), strconv.Itoa(len(s.Spec.Rules)),
			ready(s.Status.Conditions, s.Generation)}
	},
	wideRow: func(o *Options, s *waygatev1.Segment) []string {
		return []string{orDash(s.Spec.Name), s.Name, o.age(s.CreationTimestamp.Time)}
	},
	asList: func(items []waygatev1.Segment) runtime.Object { return &waygatev1.SegmentList{Items: items} },
	empty:  "No segments. `waygate segments create KEY` creates one.",
}

// usedBy lists, per segment key, the flags whose rules name it.
func usedBy(flags []waygatev1.FeatureFlag) map[string][]string {
	out := map[string][]string{}
	for i := range flags {
		f := &flags[i]
		for _, cs := range f.RuleClauses() {
			for _, c := range cs {
				if c.Operator == waygatev1.OperatorInSegment || c.Operator == waygatev1.OperatorNotInSegment {
					for _, v := range c.Values {
						out[v] = with(out[v], []string{f.Key()})
					}
				}
			}
		}
	}
	return out
}

func segmentGetCommand(o *Options) *cobra.Command {
	return segmentKind.showCommand(o, "get KEY", "Show a segment: included, excluded, rules", func(ctx context.Context, s *waygatev1.Segment) error {
		rows := [][]string{{"Key:", s.Key()}, {"Name:", orDash(s.Spec.Name)}, {"Description:", orDash(s.Spec.Description)},
			{"Included:", orDash(strings.Join(s.Spec.Included, ", "))}, {"Excluded:", orDash(strings.Join(s.Spec.Excluded, ", "))}}
		for i, r := range s.Spec.Rules {
			rows = append(rows, []string{fmt.Sprintf("Rule %d (%s):", i+1, orDash(r.ID)), formatClauses(r.Clauses)})
		}
		flags, err := flagKind.list(ctx, o.client, o.namespace)
		if err != nil {
			return err
		}
		rows = append(rows, []string{"Used by:", orDash(strings.Join(usedBy(flags)[s.Key()], ", "))})
		rows = append(rows, []string{"Ready:", readyLine(s.Status.Conditions, s.Generation)}, []string{"Segment:", s.Namespace + "/" + s.Name})
		o.keyValues(rows)
		return nil
	})
}

func segmentCreateCommand(o *Options) *cobra.Command {
	var name, description string
	var include []string
	c := &cobra.Command{
		Use:   "create KEY",
		Short: "Create a segment",
		Example: `  waygate segments create beta-users --include alice --include bob
  waygate segments add-rule beta-users --clause "email ends_with @acme.com"`,
		Args: cobra.ExactArgs(1),
		RunE: o.run(func(ctx context.Context, args []string) error {
			key := args[0]
			s := &waygatev1.Segment{
				ObjectMeta: metav1.ObjectMeta{Namespace: o.namespace, Name: objectName(key)},
				Spec:       waygatev1.SegmentSpec{Name: name, Description: description, Included: include},
			}
			if s.Name != key {
				s.Spec.Key = waygatev1.Key(key)
			}
			return o.create(ctx, "segment:"+key, s, func() string { return audit.SegmentStatus(s) })
		}),
	}
	c.Flags().StringVar(&name, "name", "", "A human-readable name.")
	c.Flags().StringVar(&description, "description", "", "Who is in it and why.")
	c.Flags().StringArrayVar(&include, "include", nil, "A context key that is in the segment (repeat).")
	return c
}

func segmentAddRuleCommand(o *Options) *cobra.Command {
	var clauses []string
	var id, description string
	c := segmentKind.changeCommand(o, "add-rule KEY", "Add a rule: contexts matching every --clause are in the segment", func(c *cobra.Command) {
		c.Flags().StringArrayVar(&clauses, "clause", nil, `A condition, "ATTRIBUTE OPERATOR VALUE[,VALUE...]", e.g. "email ends_with @acme.com" (repeat: all must match).`)
		c.Flags().StringVar(&id, "id", "", "An id for the rule (r1, r2, ... when left out).")
		c.Flags().StringVar(&description, "description", "", "What the rule is for.")
	}, func(s *waygatev1.Segment, _ []string) error {
		cs, err := parseClauses(clauses)
		if err != nil {
			return err
		}
		rule := waygatev1.SegmentRule{Description: description, Clauses: cs}
		if rule.ID, err = newRuleID(id, ruleIDs(s.Spec.Rules, segmentRuleID)); err != nil {
			return err
		}
		s.Spec.Rules = append(s.Spec.Rules, rule)
		return nil
	})
	c.Args = cobra.ExactArgs(1)
	return c
}

func segmentRemoveRuleCommand(o *Options) *cobra.Command {
	c := segmentKind.changeCommand(o, "remove-rule KEY RULE", "Remove a rule, by id or number", nil, func(s *waygatev1.Segment, args []string) error {
		return removeRule(&s.Spec.Rules, segmentRuleID, args[0])
	})
	c.Args = cobra.ExactArgs(2)
	return c
}
