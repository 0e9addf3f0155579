package gate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/blang/semver/v4"
	"k8s.io/apimachinery/pkg/util/validation/field"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// valueParsers check the values of operators that compare other than as
// plain strings. Each returns an error that says what a value should look like.
var valueParsers = map[waygatev1.Operator]func(string) error{
	waygatev1.OperatorMatches:    compileRegexp,
	waygatev1.OperatorNotMatches: compileRegexp,
	waygatev1.OperatorGT:         parseNumber,
	waygatev1.OperatorGTE:        parseNumber,
	waygatev1.OperatorLT:         parseNumber,
	waygatev1.OperatorLTE:        parseNumber,
	waygatev1.OperatorBefore:     parseTime,
	waygatev1.OperatorAfter:      parseTime,
	waygatev1.OperatorSemverEq:   parseSemver,
	waygatev1.OperatorSemverLT:   parseSemver,
	waygatev1.OperatorSemverGT:   parseSemver,
}

// ValidateClauses checks that every clause's values suit its operator:
// regular expressions compile, numbers, times and versions parse. The schema
// checks everything else.
func ValidateClauses(clauses []waygatev1.Clause, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range clauses {
		parse, ok := valueParsers[c.Operator]
		if !ok {
			continue
		}
		for j, v := range c.Values {
			if err := parse(v); err != nil {
				errs = append(errs, field.Invalid(path.Index(i).Child("values").Index(j), v,
					fmt.Sprintf("operator %s: %v", c.Operator, err)))
			}
		}
	}
	return errs
}

func compileRegexp(v string) error {
	if _, err := regexp.Compile(v); err != nil {
		return fmt.Errorf("not a valid regular expression (RE2 syntax): %w", err)
	}
	return nil
}

func parseNumber(v string) error {
	if _, err := strconv.ParseFloat(v, 64); err != nil {
		return fmt.Errorf("not a number: write a decimal number such as 18 or 2.5")
	}
	return nil
}

func parseTime(v string) error {
	if _, err := time.Parse(time.RFC3339, v); err != nil {
		return fmt.Errorf("not a time: write an RFC 3339 time such as 2026-06-01T03:00:00Z")
	}
	return nil
}

func parseSemver(v string) error {
	if _, err := semver.ParseTolerant(v); err != nil {
		return fmt.Errorf("not a semantic version: write a version such as 1.4.0 (%w)", err)
	}
	return nil
}

// ValidateVariationValues checks that every variation value is of the flag's
// type, which the schema cannot see into.
func ValidateVariationValues(typ waygatev1.FlagType, variations []waygatev1.Variation, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, v := range variations {
		if want := valueTypeError(typ, v.Value.Raw); want != "" {
			errs = append(errs, field.Invalid(path.Index(i).Child("value"), string(v.Value.Raw),
				fmt.Sprintf("variation %q of a %s flag: %s", v.Name, typ, want)))
		}
	}
	return errs
}

// valueTypeError says what a value of typ must look like, or "" when raw is one.
func valueTypeError(typ waygatev1.FlagType, raw []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "value is not valid JSON"
	}
	switch typ {
	case waygatev1.FlagBoolean:
		if _, ok := v.(bool); !ok {
			return "value must be true or false"
		}
	case waygatev1.FlagString:
		if _, ok := v.(string); !ok {
			return "value must be a string (quote it in YAML)"
		}
	case waygatev1.FlagInteger:
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			return "value must be a whole number"
		}
	case waygatev1.FlagFloat:
		if _, ok := v.(json.Number); !ok {
			return "value must be a number"
		}
	}
	return ""
}
