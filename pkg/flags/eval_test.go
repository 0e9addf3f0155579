package flags

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// boolFlag is an enabled boolean flag "on"/"off" that serves off by
// default, with spec changed by edit.
func boolFlag(key string, edit func(*waygatev1.FeatureFlagSpec)) waygatev1.FeatureFlag {
	ff := waygatev1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Name: key, UID: types.UID("uid-" + key)},
		Spec: waygatev1.FeatureFlagSpec{
			Type: waygatev1.FlagBoolean, Enabled: true, OffVariation: "off",
			Variations:  []waygatev1.Variation{{Name: "on", Value: raw(true)}, {Name: "off", Value: raw(false)}},
			Fallthrough: waygatev1.Serve{Variation: "off"},
		},
	}
	if edit != nil {
		edit(&ff.Spec)
	}
	return ff
}

func raw(v any) apiextensionsv1.JSON {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return apiextensionsv1.JSON{Raw: b}
}

func ruleOn(clauses ...waygatev1.Clause) func(*waygatev1.FeatureFlagSpec) {
	return func(s *waygatev1.FeatureFlagSpec) {
		s.Rules = []waygatev1.FlagRule{{Clauses: clauses, Variation: "on"}}
	}
}

func cl(attr string, op waygatev1.Operator, values ...string) waygatev1.Clause {
	return waygatev1.Clause{Attribute: attr, Operator: op, Values: values}
}

func TestOperators(t *testing.T) {
	segments := []waygatev1.Segment{
		{ObjectMeta: metav1.ObjectMeta{Name: "beta"}, Spec: waygatev1.SegmentSpec{Included: []string{"alice"}}},
	}
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	many := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "US"} // looked up in a map
	cases := []struct {
		name   string
		clause waygatev1.Clause
		attrs  map[string]any // nil: the attribute is missing
		want   bool
	}{
		{"is", cl("country", waygatev1.OperatorIs, "US", "CA"), map[string]any{"country": "CA"}, true},
		{"is, other", cl("country", waygatev1.OperatorIs, "US"), map[string]any{"country": "FR"}, false},
		{"is, long list", cl("country", waygatev1.OperatorIs, many...), map[string]any{"country": "US"}, true},
		{"is, a boolean", cl("beta", waygatev1.OperatorIs, "true"), map[string]any{"beta": true}, true},
		{"is, a number", cl("age", waygatev1.OperatorIs, "42"), map[string]any{"age": 42.0}, true},
		{"is, missing", cl("country", waygatev1.OperatorIs, "US"), nil, false},
		{"is, negated", waygatev1.Clause{Attribute: "country", Operator: waygatev1.OperatorIs, Values: []string{"US"}, Negate: true}, map[string]any{"country": "US"}, false},
		{"is, a list is no string", cl("country", waygatev1.OperatorIs, "US"), map[string]any{"country": []any{"US"}}, false},
		{"is_not", cl("country", waygatev1.OperatorIsNot, "US"), map[string]any{"country": "FR"}, true},
		{"is_not, equal", cl("country", waygatev1.OperatorIsNot, "US"), map[string]any{"country": "US"}, false},
		{"is_not, missing", cl("country", waygatev1.OperatorIsNot, "US"), nil, true},
		{"is_not, missing, negated", waygatev1.Clause{Attribute: "country", Operator: waygatev1.OperatorIsNot, Values: []string{"US"}, Negate: true}, nil, false},
		{"contains", cl("email", waygatev1.OperatorContains, "@example"), map[string]any{"email": "a@example.com"}, true},
		{"contains, no", cl("email", waygatev1.OperatorContains, "@example"), map[string]any{"email": "a@other.com"}, false},
		{"contains, missing", cl("email", waygatev1.OperatorContains, "@"), nil, false},
		{"not_contains", cl("email", waygatev1.OperatorNotContains, "@example"), map[string]any{"email": "a@other.com"}, true},
		{"not_contains, missing", cl("email", waygatev1.OperatorNotContains, "@example"), nil, false},
		{"starts_with", cl("path", waygatev1.OperatorStartsWith, "/admin"), map[string]any{"path": "/admin/users"}, true},
		{"starts_with, no", cl("path", waygatev1.OperatorStartsWith, "/admin"), map[string]any{"path": "/x/admin"}, false},
		{"ends_with", cl("email", waygatev1.OperatorEndsWith, ".org", ".com"), map[string]any{"email": "a@b.com"}, true},
		{"ends_with, a number", cl("email", waygatev1.OperatorEndsWith, ".com"), map[string]any{"email": 3}, false},
		{"matches", cl("email", waygatev1.OperatorMatches, `^[a-z]+@example\.com$`), map[string]any{"email": "bob@example.com"}, true},
		{"matches, no", cl("email", waygatev1.OperatorMatches, `^[a-z]+@example\.com$`), map[string]any{"email": "Bob@example.com"}, false},
		{"matches, missing", cl("email", waygatev1.OperatorMatches, `.*`), nil, false},
		{"not_matches", cl("email", waygatev1.OperatorNotMatches, `@example\.com$`), map[string]any{"email": "bob@x.io"}, true},
		{"not_matches, missing", cl("email", waygatev1.OperatorNotMatches, `x`), nil, false},
		{"gt", cl("age", waygatev1.OperatorGT, "18"), map[string]any{"age": 19}, true},
		{"gt, equal", cl("age", waygatev1.OperatorGT, "18"), map[string]any{"age": 18.0}, false},
		{"gte, equal", cl("age", waygatev1.OperatorGTE, "18"), map[string]any{"age": json.Number("18")}, true},
		{"lt", cl("age", waygatev1.OperatorLT, "2.5"), map[string]any{"age": int64(2)}, true},
		{"lte, a numeric string", cl("age", waygatev1.OperatorLTE, "18"), map[string]any{"age": "17.5"}, true},
		{"lt, not a number", cl("age", waygatev1.OperatorLT, "18"), map[string]any{"age": "young"}, false},
		{"gt, a boolean", cl("age", waygatev1.OperatorGT, "0"), map[string]any{"age": true}, false},
		{"gt, missing", cl("age", waygatev1.OperatorGT, "0"), nil, false},
		{"before", cl("signup", waygatev1.OperatorBefore, "2026-06-01T00:00:00Z"), map[string]any{"signup": "2026-05-31T23:59:59Z"}, true},
		{"before, after", cl("signup", waygatev1.OperatorBefore, "2026-06-01T00:00:00Z"), map[string]any{"signup": at.Add(time.Hour)}, false},
		{"after, Unix seconds", cl("signup", waygatev1.OperatorAfter, "2026-06-01T00:00:00Z"), map[string]any{"signup": float64(at.Unix() + 1)}, true},
		{"after, not a time", cl("signup", waygatev1.OperatorAfter, "2026-06-01T00:00:00Z"), map[string]any{"signup": "June"}, false},
		{"in", cl("plan", waygatev1.OperatorIn, "pro", "team"), map[string]any{"plan": "team"}, true},
		{"in, a list attribute", cl("groups", waygatev1.OperatorIn, "admins"), map[string]any{"groups": []any{"devs", "admins"}}, true},
		{"in, a string list attribute", cl("groups", waygatev1.OperatorIn, "admins"), map[string]any{"groups": []string{"devs"}}, false},
		{"not_in", cl("plan", waygatev1.OperatorNotIn, "free"), map[string]any{"plan": "pro"}, true},
		{"not_in, a list attribute", cl("groups", waygatev1.OperatorNotIn, "admins"), map[string]any{"groups": []any{"admins"}}, false},
		{"not_in, missing", cl("plan", waygatev1.OperatorNotIn, "free"), nil, true},
		{"in_segment", cl("key", waygatev1.OperatorInSegment, "beta"), map[string]any{"targetingKey": "alice"}, true},
		{"in_segment, not a member", cl("key", waygatev1.OperatorInSegment, "beta"), map[string]any{"targetingKey": "bob"}, false},
		{"in_segment, no such segment", cl("key", waygatev1.OperatorInSegment, "gamma"), map[string]any{"targetingKey": "alice"}, false},
		{"in_segment, no key", cl("key", waygatev1.OperatorInSegment, "beta"), nil, false},
		{"not_in_segment", cl("key", waygatev1.OperatorNotInSegment, "beta"), map[string]any{"targetingKey": "bob"}, true},
		{"not_in_segment, no key", cl("key", waygatev1.OperatorNotInSegment, "beta"), nil, false},
		{"semver_eq", cl("app_version", waygatev1.OperatorSemverEq, "1.4.0"), map[string]any{"app_version": "v1.4"}, true},
		{"semver_lt", cl("app_version", waygatev1.OperatorSemverLT, "2.0.0"), map[string]any{"app_version": "2.0.0-rc.1"}, true},
		{"semver_gt", cl("app_version", waygatev1.OperatorSemverGT, "2.0.0"), map[string]any{"app_version": "2.0.0"}, false},
		{"semver_gt, not a version", cl("app_version", waygatev1.OperatorSemverGT, "1.0.0"), map[string]any{"app_version": "latest"}, false},
		{"semver_eq, missing", cl("app_version", waygatev1.OperatorSemverEq, "1.0.0"), nil, false},
		{"kind", cl("kind", waygatev1.OperatorIs, "user"), map[string]any{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := Compile([]waygatev1.FeatureFlag{boolFlag("f", ruleOn(tc.clause))}, segments)
			ctx := NewContext(tc.attrs)
			if ctx.Attributes == nil {
				ctx.Attributes = map[string]any{}
			}
			r := snap.Evaluate("f", ctx)
			if r.ErrorCode != "" {
				t.Fatalf("error %s: %s", r.ErrorCode, r.ErrorMessage)
			}
			if got := r.Variant == "on"; got != tc.want {
				t.Errorf("%s %v on %v: matched %v, want %v", tc.clause.Operator, tc.clause.Values, tc.attrs, got, tc.want)
			}
		})
	}
}

func TestEvaluationOrder(t *testing.T) {
	str := func(key string, edit func(*waygatev1.FeatureFlagSpec)) waygatev1.FeatureFlag {
		ff := waygatev1.FeatureFlag{
			ObjectMeta: metav1.ObjectMeta{Name: key},
			Spec: waygatev1.FeatureFlagSpec{
				Type: waygatev1.FlagString, Enabled: true, OffVariation: "grey",
				Variations: []waygatev1.Variation{
					{Name: "grey", Value: raw("#999")}, {Name: "red", Value: raw("#f00")}, {Name: "blue", Value: raw("#00f")},
				},
				Fallthrough: waygatev1.Serve{Variation: "blue"},
			},
		}
		edit(&ff.Spec)
		return ff
	}
	redRule := waygatev1.FlagRule{Clauses: []waygatev1.Clause{cl("country", waygatev1.OperatorIs, "US")}, Variation: "red"}
	greyRule := waygatev1.FlagRule{Clauses: []waygatev1.Clause{cl("country", waygatev1.OperatorIs, "US"), cl("plan", waygatev1.OperatorIs, "pro")}, Variation: "grey"}
	prereqs := []waygatev1.FeatureFlag{
		boolFlag("new-ui", ruleOn(cl("country", waygatev1.OperatorIs, "US"))),
		boolFlag("dark", func(s *waygatev1.FeatureFlagSpec) { s.Enabled = false; s.OffVariation = "on" }),
		boolFlag("loop-a", func(s *waygatev1.FeatureFlagSpec) {
			s.Prerequisites = []waygatev1.Prerequisite{{Flag: "loop-b", Variation: "off"}}
		}),
		boolFlag("loop-b", func(s *waygatev1.FeatureFlagSpec) {
			s.Prerequisites = []waygatev1.Prerequisite{{Flag: "loop-a", Variation: "off"}}
		}),
	}
	us := map[string]any{"targetingKey": "carol", "country": "US"}
	cases := []struct {
		name    string
		flag    waygatev1.FeatureFlag
		ctx     map[string]any
		variant string
		reason  Reason
		code    ErrorCode
	}{
		{"static", str("c", func(*waygatev1.FeatureFlagSpec) {}), nil, "blue", ReasonStatic, ""},
		{"disabled: the off variation, whatever matches", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Enabled = false
			s.Rules = []waygatev1.FlagRule{redRule}
		}), us, "grey", ReasonDisabled, ""},
		{"the first matching rule", str("c", func(s *waygatev1.FeatureFlagSpec) { s.Rules = []waygatev1.FlagRule{redRule, greyRule} }), map[string]any{"country": "US", "plan": "pro"}, "red", ReasonTargetingMatch, ""},
		{"a later rule when the first does not match (clauses ANDed)", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Rules = []waygatev1.FlagRule{greyRule, redRule}
		}), us, "red", ReasonTargetingMatch, ""},
		{"no rule matches: the fallthrough", str("c", func(s *waygatev1.FeatureFlagSpec) { s.Rules = []waygatev1.FlagRule{redRule} }), map[string]any{"country": "FR"}, "blue", ReasonDefault, ""},
		{"a target before the rules", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Targets = []waygatev1.Target{{Variation: "grey", Keys: []string{"carol"}}}
			s.Rules = []waygatev1.FlagRule{redRule}
		}), us, "grey", ReasonTargetingMatch, ""},
		{"a target of another context kind", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Targets = []waygatev1.Target{{Variation: "grey", ContextKind: "org", Keys: []string{"carol"}}}
		}), us, "blue", ReasonDefault, ""},
		{"a target of the context's kind", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Targets = []waygatev1.Target{{Variation: "red", ContextKind: "org", Keys: []string{"acme"}}}
		}), map[string]any{"targetingKey": "acme", "kind": "org"}, "red", ReasonTargetingMatch, ""},
		{"a prerequisite that serves the variation", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Prerequisites = []waygatev1.Prerequisite{{Flag: "new-ui", Variation: "on"}}
		}), us, "blue", ReasonDefault, ""},
		{"a prerequisite that serves another: off, before targets", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Prerequisites = []waygatev1.Prerequisite{{Flag: "new-ui", Variation: "on"}}
			s.Targets = []waygatev1.Target{{Variation: "red", Keys: []string{"dave"}}}
		}), map[string]any{"targetingKey": "dave", "country": "FR"}, "grey", ReasonDisabled, ""},
		{"a disabled prerequisite fails, even serving the variation", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Prerequisites = []waygatev1.Prerequisite{{Flag: "dark", Variation: "on"}}
		}), us, "grey", ReasonDisabled, ""},
		{"a missing prerequisite fails", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Prerequisites = []waygatev1.Prerequisite{{Flag: "gone", Variation: "on"}}
		}), us, "grey", ReasonDisabled, ""},
		{"a prerequisite cycle is an error, not a hang", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Prerequisites = []waygatev1.Prerequisite{{Flag: "loop-a", Variation: "off"}}
		}), us, "", ReasonError, ErrorGeneral},
		{"a rollout without a targeting key", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Fallthrough = waygatev1.Serve{Rollout: waygatev1.Rollout{{Variation: "red", Weight: 50000}, {Variation: "blue", Weight: 50000}}}
		}), map[string]any{"country": "US"}, "", ReasonError, ErrorTargetingKeyMissing},
		{"a full rollout", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Fallthrough = waygatev1.Serve{Rollout: waygatev1.Rollout{{Variation: "red", Weight: 0}, {Variation: "blue", Weight: 100000}}}
		}), us, "blue", ReasonSplit, ""},
		{"a rule's rollout is a targeting match", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Rules = []waygatev1.FlagRule{{Clauses: redRule.Clauses, Rollout: waygatev1.Rollout{{Variation: "red", Weight: 100000}}}}
		}), us, "red", ReasonTargetingMatch, ""},
		{"a variation the flag lacks", str("c", func(s *waygatev1.FeatureFlagSpec) { s.Fallthrough.Variation = "green" }), us, "", ReasonError, ErrorParse},
		{"a value not of the flag's type", str("c", func(s *waygatev1.FeatureFlagSpec) { s.Variations[0].Value = raw(7) }), us, "", ReasonError, ErrorParse},
		{"a clause value the operator cannot read", str("c", func(s *waygatev1.FeatureFlagSpec) {
			s.Rules = []waygatev1.FlagRule{{Clauses: []waygatev1.Clause{cl("age", waygatev1.OperatorGT, "ten")}, Variation: "red"}}
		}), us, "", ReasonError, ErrorParse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := Compile(append([]waygatev1.FeatureFlag{tc.flag}, prereqs...), nil)
			r := snap.Evaluate("c", NewContext(tc.ctx))
			if r.Variant != tc.variant || r.Reason != tc.reason || r.ErrorCode != tc.code {
				t.Fatalf("got %s/%s/%s (%s), want %s/%s/%s", r.Variant, r.Reason, r.ErrorCode, r.ErrorMessage, tc.variant, tc.reason, tc.code)
			}
			if tc.code != "" && (r.Value != nil || r.ErrorMessage == "") {
				t.Errorf("error result with value %v and message %q: want no value and a message", r.Value, r.ErrorMessage)
			}
		})
	}
	if r := Compile(nil, nil).Evaluate("nope", NewContext(nil)); r.ErrorCode != ErrorFlagNotFound || r.Reason != ReasonError {
		t.Errorf("unknown flag: %+v, want FLAG_NOT_FOUND", r)
	}
}

func TestValues(t *testing.T) {
	flag := func(typ waygatev1.FlagType, v any) waygatev1.FeatureFlag {
		return waygatev1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Name: "v"}, Spec: waygatev1.FeatureFlagSpec{
			Type: typ, Enabled: true, OffVariation: "x", Fallthrough: waygatev1.Serve{Variation: "x"},
			Variations: []waygatev1.Variation{{Name: "x", Value: raw(v)}},
			Name:       "Value", Maintainer: "team-a", Tags: []string{"ui", "q3"}, Temporary: true,
		}}
	}
	cases := []struct {
		typ  waygatev1.FlagType
		in   any
		want any
	}{
		{waygatev1.FlagBoolean, true, true},
		{waygatev1.FlagString, "blue", "blue"},
		{waygatev1.FlagInteger, 42, int64(42)},
		{waygatev1.FlagFloat, 2.5, 2.5},
		{waygatev1.FlagFloat, 3, 3.0},
		{waygatev1.FlagJSON, map[string]any{"a": []any{1.0, "b"}}, map[string]any{"a": []any{1.0, "b"}}},
	}
	for _, tc := range cases {
		r := Compile([]waygatev1.FeatureFlag{flag(tc.typ, tc.in)}, nil).Evaluate("v", NewContext(nil))
		if fmt.Sprintf("%#v", r.Value) != fmt.Sprintf("%#v", tc.want) {
			t.Errorf("%s flag of %v: value %#v, want %#v", tc.typ, tc.in, r.Value, tc.want)
		}
		if r.Metadata["name"] != "Value" || r.Metadata["maintainer"] != "team-a" || r.Metadata["tags"] != "ui,q3" || r.Metadata["temporary"] != true {
			t.Errorf("metadata %v", r.Metadata)
		}
	}
}

func TestSegments(t *testing.T) {
	seg := func(key string, spec waygatev1.SegmentSpec) waygatev1.Segment {
		return waygatev1.Segment{ObjectMeta: metav1.ObjectMeta{Name: key}, Spec: spec}
	}
	segments := []waygatev1.Segment{
		seg("staff", waygatev1.SegmentSpec{
			Included: []string{"alice", "mallory"}, Excluded: []string{"mallory", "eve"},
			Rules: []waygatev1.SegmentRule{
				{Clauses: []waygatev1.Clause{cl("email", waygatev1.OperatorEndsWith, "@example.com")}},
				{Clauses: []waygatev1.Clause{cl("country", waygatev1.OperatorIs, "US"), cl("plan", waygatev1.OperatorIs, "pro")}},
			},
		}),
		seg("trusted", waygatev1.SegmentSpec{Rules: []waygatev1.SegmentRule{{Clauses: []waygatev1.Clause{cl("key", waygatev1.OperatorInSegment, "staff")}}}}),
		seg("ouro", waygatev1.SegmentSpec{Rules: []waygatev1.SegmentRule{{Clauses: []waygatev1.Clause{cl("key", waygatev1.OperatorInSegment, "boros")}}}}),
		seg("boros", waygatev1.SegmentSpec{Rules: []waygatev1.SegmentRule{{Clauses: []waygatev1.Clause{cl("key", waygatev1.OperatorInSegment, "ouro")}}}}),
	}
	cases := []struct {
		name    string
		segment string
		ctx     map[string]any
		want    bool
	}{
		{"included", "staff", map[string]any{"targetingKey": "alice"}, true},
		{"excluded wins over included", "staff", map[string]any{"targetingKey": "mallory"}, false},
		{"excluded wins over a rule", "staff", map[string]any{"targetingKey": "eve", "email": "eve@example.com"}, false},
		{"a rule", "staff", map[string]any{"targetingKey": "bob", "email": "bob@example.com"}, true},
		{"rules ORed, clauses ANDed", "staff", map[string]any{"targetingKey": "bob", "country": "US", "plan": "pro"}, true},
		{"half a rule", "staff", map[string]any{"targetingKey": "bob", "country": "US"}, false},
		{"a segment of a segment", "trusted", map[string]any{"targetingKey": "alice"}, true},
		{"a cycle of segments matches nobody, and ends", "ouro", map[string]any{"targetingKey": "alice"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ff := boolFlag("f", ruleOn(cl("key", waygatev1.OperatorInSegment, tc.segment)))
			r := Compile([]waygatev1.FeatureFlag{ff}, segments).Evaluate("f", NewContext(tc.ctx))
			if got := r.Variant == "on"; got != tc.want {
				t.Errorf("in %s with %v: %v, want %v", tc.segment, tc.ctx, got, tc.want)
			}
		})
	}
}

// The oldest of the objects that claim a key holds it, as the operator
// reports.
func TestDuplicateKeys(t *testing.T) {
	older := boolFlag("older", func(s *waygatev1.FeatureFlagSpec) { s.Key = "k"; s.Fallthrough.Variation = "on" })
	older.CreationTimestamp = metav1.NewTime(time.Unix(100, 0))
	newer := boolFlag("newer", func(s *waygatev1.FeatureFlagSpec) { s.Key = "k" })
	newer.CreationTimestamp = metav1.NewTime(time.Unix(200, 0))
	snap := Compile([]waygatev1.FeatureFlag{newer, older}, nil)
	if r := snap.Evaluate("k", NewContext(nil)); r.Variant != "on" {
		t.Errorf("key k served %q, want the older flag's on", r.Variant)
	}
	if len(snap.Keys()) != 1 {
		t.Errorf("keys %v, want [k]", snap.Keys())
	}
}

func rollout(weights ...int32) waygatev1.FeatureFlag {
	return boolFlag("rollout", func(s *waygatev1.FeatureFlagSpec) {
		s.Type = waygatev1.FlagString
		s.Variations = []waygatev1.Variation{{Name: "a", Value: raw("a")}, {Name: "b", Value: raw("b")}, {Name: "c", Value: raw("c")}}
		s.OffVariation = "a"
		var r waygatev1.Rollout
		for i, w := range weights {
			r = append(r, waygatev1.WeightedVariation{Variation: string(rune('a' + i)), Weight: w})
		}
		s.Fallthrough = waygatev1.Serve{Rollout: r}
	})
}

func TestRolloutDistribution(t *testing.T) {
	const n = 100_000
	weights := []int32{20_000, 30_000, 50_000}
	snap := Compile([]waygatev1.FeatureFlag{rollout(weights...)}, nil)
	got := map[string]int{}
	ctx := &Context{}
	for i := range n {
		ctx.Key = fmt.Sprintf("user-%d", i)
		got[snap.Evaluate("rollout", ctx).Variant]++
	}
	for i, w := range weights {
		v := string(rune('a' + i))
		share := float64(got[v]) / n
		if want := float64(w) / buckets; math.Abs(share-want) > 0.01 {
			t.Errorf("variation %s: %.2f%% of %d keys, want %.2f%% ± 1%%", v, 100*share, n, 100*want)
		}
	}
}

// A context keeps its variation as the first variation's weight grows, in
// every snapshot: the bucket depends on flag key, kind and key only.
func TestRolloutStability(t *testing.T) {
	small := Compile([]waygatev1.FeatureFlag{rollout(10_000, 90_000)}, nil)
	large := Compile([]waygatev1.FeatureFlag{rollout(40_000, 60_000)}, nil)
	again := Compile([]waygatev1.FeatureFlag{rollout(10_000, 90_000)}, nil)
	moved := 0
	for i := range 10_000 {
		ctx := &Context{Key: fmt.Sprintf("user-%d", i)}
		before, after := small.Evaluate("rollout", ctx).Variant, large.Evaluate("rollout", ctx).Variant
		if before == "a" && after != "a" {
			t.Fatalf("%s had a at 10%% and lost it at 40%%", ctx.Key)
		}
		if before != after {
			moved++
		}
		if v := again.Evaluate("rollout", ctx).Variant; v != before {
			t.Fatalf("%s: %s, then %s from the same flag", ctx.Key, before, v)
		}
	}
	if moved < 2_500 || moved > 3_500 {
		t.Errorf("%d of 10,000 contexts moved to a when it grew by 30%%, want about 3,000", moved)
	}
	// Another kind with the same key is another context.
	if Bucket("f", "user", "x") == Bucket("f", "org", "x") && Bucket("f", "user", "y") == Bucket("f", "org", "y") {
		t.Error("the context kind does not change the bucket")
	}
	// Pinned values: a change of the hash would move every user.
	if b := Bucket("new-checkout", "user", "alice"); b != pinnedBucket {
		t.Errorf("Bucket(new-checkout, user, alice) = %d, want %d", b, pinnedBucket)
	}
}

func TestNoAllocations(t *testing.T) {
	snap := Compile([]waygatev1.FeatureFlag{
		boolFlag("static", func(s *waygatev1.FeatureFlagSpec) { s.Fallthrough.Variation = "on" }),
		boolFlag("rule", ruleOn(cl("color", waygatev1.OperatorIs, "yellow"))),
		rollout(30_000, 30_000, 40_000),
	}, nil)
	ctx := &Context{Key: "alice", Attributes: map[string]any{"color": "yellow"}}
	for _, key := range []string{"static", "rule", "rollout", "missing"} {
		if n := testing.AllocsPerRun(100, func() { snap.Evaluate(key, ctx) }); n != 0 {
			t.Errorf("evaluating %s: %.0f allocations, want 0", key, n)
		}
	}
}

const pinnedBucket = 84385
