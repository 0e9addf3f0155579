package flags

import (
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

func TestValidateClauses(t *testing.T) {
	cases := []struct {
		op     waygatev1.Operator
		values []string
		want   string // substring of the error, "" for valid
	}{
		{waygatev1.OperatorIs, []string{"(", "anything"}, ""},
		{waygatev1.OperatorMatches, []string{`^.*@example\.com$`}, ""},
		{waygatev1.OperatorMatches, []string{"ok", "("}, "spec.rules[0].clauses[0].values[1]: Invalid value: \"(\": operator matches: not a valid regular expression"},
		{waygatev1.OperatorNotMatches, []string{"[a-"}, "not a valid regular expression"},
		{waygatev1.OperatorGT, []string{"18", "2.5", "-1e3"}, ""},
		{waygatev1.OperatorLTE, []string{"ten"}, "operator lte: not a number"},
		{waygatev1.OperatorBefore, []string{"2026-06-01T03:00:00Z"}, ""},
		{waygatev1.OperatorAfter, []string{"2026-06-01"}, "RFC 3339"},
		{waygatev1.OperatorSemverEq, []string{"1.4.0", "v2.0.0-rc.1", "3"}, ""},
		{waygatev1.OperatorSemverLT, []string{"latest"}, "not a semantic version"},
		{waygatev1.OperatorInSegment, []string{"beta-users"}, ""},
	}
	for _, tc := range cases {
		t.Run(string(tc.op)+"/"+strings.Join(tc.values, ","), func(t *testing.T) {
			errs := ValidateClauses([]waygatev1.Clause{{Attribute: "a", Operator: tc.op, Values: tc.values}}, field.NewPath("spec", "rules").Index(0).Child("clauses"))
			got := errs.ToAggregate()
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("unexpected error: %v", got)
			case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", got, tc.want)
			}
		})
	}
}

func TestValidateVariationValues(t *testing.T) {
	cases := []struct {
		typ  waygatev1.FlagType
		raw  string
		want string
	}{
		{waygatev1.FlagBoolean, "true", ""},
		{waygatev1.FlagBoolean, `"true"`, "must be true or false"},
		{waygatev1.FlagString, `"blue"`, ""},
		{waygatev1.FlagString, "1", "must be a string"},
		{waygatev1.FlagInteger, "42", ""},
		{waygatev1.FlagInteger, "4.2", "whole number"},
		{waygatev1.FlagInteger, `"42"`, "whole number"},
		{waygatev1.FlagFloat, "4.2", ""},
		{waygatev1.FlagFloat, "4", ""},
		{waygatev1.FlagFloat, "true", "must be a number"},
		{waygatev1.FlagJSON, `{"a": [1, null]}`, ""},
		{waygatev1.FlagJSON, "null", ""},
	}
	for _, tc := range cases {
		t.Run(string(tc.typ)+"/"+tc.raw, func(t *testing.T) {
			vs := []waygatev1.Variation{{Name: "v", Value: apiextensionsv1.JSON{Raw: []byte(tc.raw)}}}
			got := ValidateVariationValues(tc.typ, vs, field.NewPath("spec", "variations")).ToAggregate()
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("unexpected error: %v", got)
			case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", got, tc.want)
			}
		})
	}
}
