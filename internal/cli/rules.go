package cli

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/routes"
)

// parseClause reads "ATTRIBUTE OPERATOR VALUE[,VALUE...]", e.g.
// "country in US,CA" or "email ends_with @acme.com"; an operator written
// with a leading "!" negates the clause.
func parseClause(s string) (waygatev1.Clause, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return waygatev1.Clause{}, fmt.Errorf("--clause %q: write ATTRIBUTE OPERATOR VALUE[,VALUE...], e.g. \"country in US,CA\"", s)
	}
	op, negate := strings.CutPrefix(f[1], "!")
	var values []string
	for _, v := range strings.Split(strings.Join(f[2:], " "), ",") {
		if v = strings.TrimSpace(v); v != "" {
			values = append(values, v)
		}
	}
	return waygatev1.Clause{Attribute: f[0], Operator: waygatev1.Operator(op), Values: values, Negate: negate}, nil
}

// formatClause writes a clause as parseClause reads it.
func formatClause(c waygatev1.Clause) string {
	op := string(c.Operator)
	if c.Negate {
		op = "!" + op
	}
	return fmt.Sprintf("%s %s %s", c.Attribute, op, strings.Join(c.Values, ","))
}

func formatClauses(cs []waygatev1.Clause) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = formatClause(c)
	}
	return strings.Join(parts, " AND ")
}

// parseClauses reads every --clause.
func parseClauses(in []string) ([]waygatev1.Clause, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("a rule needs at least one --clause, e.g. --clause \"country in US,CA\"")
	}
	out := make([]waygatev1.Clause, 0, len(in))
	for _, s := range in {
		c, err := parseClause(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// newRuleID is id, or the first of r1, r2, ... that ids does not hold; it
// fails when id is taken.
func newRuleID(id string, ids []string) (string, error) {
	if id != "" {
		if slices.Contains(ids, id) {
			return "", fmt.Errorf("--id %s: a rule with this id exists; pick another or remove that rule first", id)
		}
		return id, nil
	}
	for n := len(ids) + 1; ; n++ {
		if id := "r" + strconv.Itoa(n); !slices.Contains(ids, id) {
			return id, nil
		}
	}
}

// ruleIDs are the ids of rules.
func ruleIDs[R any](rules []R, id func(R) string) []string {
	ids := make([]string, len(rules))
	for i, r := range rules {
		ids[i] = id(r)
	}
	return ids
}

// removeRule removes the rule arg names (its id or number) from rules.
func removeRule[R any](rules *[]R, id func(R) string, arg string) error {
	i, err := ruleIndex(arg, ruleIDs(*rules, id))
	if err != nil {
		return err
	}
	*rules = slices.Delete(*rules, i, i+1)
	return nil
}

func flagRuleID(r waygatev1.FlagRule) string       { return r.ID }
func segmentRuleID(r waygatev1.SegmentRule) string { return r.ID }

// ruleIndex finds the rule named by arg: its id, or its number (from 1).
func ruleIndex(arg string, ids []string) (int, error) {
	if i := slices.Index(ids, arg); i >= 0 {
		return i, nil
	}
	if n, err := strconv.Atoi(arg); err == nil && n >= 1 && n <= len(ids) {
		return n - 1, nil
	}
	var named []string
	for i, id := range ids {
		named = append(named, fmt.Sprintf("%d (%s)", i+1, orDash(id)))
	}
	if len(named) == 0 {
		return 0, fmt.Errorf("no rule %s: there are no rules", arg)
	}
	return 0, fmt.Errorf("no rule %s: give an id or a number: %s", arg, strings.Join(named, ", "))
}

// parseRollout reads "on=25,off=75" (percent) into a rollout.
func parseRollout(s string) (waygatev1.Rollout, error) {
	var out waygatev1.Rollout
	for _, part := range strings.Split(s, ",") {
		name, pct, ok := strings.Cut(strings.TrimSpace(part), "=")
		p, err := strconv.ParseFloat(strings.TrimSuffix(pct, "%"), 64)
		if !ok || err != nil || p < 0 || p > 100 {
			return nil, fmt.Errorf("--rollout %q: write VARIATION=PERCENT,... adding up to 100, e.g. on=25,off=75", s)
		}
		out = append(out, waygatev1.WeightedVariation{Variation: name, Weight: int32(math.Round(p * 1000))})
	}
	return out, nil
}

// formatServe writes what a rule or the fallthrough serves.
func formatServe(variation string, rollout waygatev1.Rollout) string {
	if len(rollout) == 0 {
		return variation
	}
	parts := make([]string, len(rollout))
	for i, w := range rollout {
		parts[i] = fmt.Sprintf("%s %s%%", w.Variation, strconv.FormatFloat(float64(w.Weight)/1000, 'f', -1, 64))
	}
	return strings.Join(parts, ", ")
}

// variationValue turns what the user wrote into a value of a flag's type:
// true/false, a number, a string as written, or JSON.
func variationValue(t waygatev1.FlagType, s string) (apiextensionsv1.JSON, error) {
	raw := s
	switch t {
	case waygatev1.FlagString:
		raw = strconv.Quote(s)
	case waygatev1.FlagBoolean:
		if s != "true" && s != "false" {
			return apiextensionsv1.JSON{}, fmt.Errorf("%q is not a boolean: write true or false", s)
		}
	case waygatev1.FlagInteger:
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return apiextensionsv1.JSON{}, fmt.Errorf("%q is not an integer", s)
		}
	case waygatev1.FlagFloat:
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return apiextensionsv1.JSON{}, fmt.Errorf("%q is not a number", s)
		}
	}
	return apiextensionsv1.JSON{Raw: []byte(raw)}, nil
}

// objectName derives an object name from a flag or segment key: the key
// itself when it is one, else lower case with "-" for what names cannot
// hold.
func objectName(key string) string {
	return routes.Name(key)
}

// count is "1 rule", "2 rules".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}
