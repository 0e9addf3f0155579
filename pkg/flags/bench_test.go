package flags

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// The flags of `make bench-flags`, equivalent to those of flagd's evaluator
// benchmark (BenchmarkResolveBooleanValue): a static boolean flag, and one
// with a single rule (color == "yellow"); then a rule on a segment of 10,000
// included keys, a three-way rollout, and a chain of three prerequisites.
func benchSnapshot() *Snapshot {
	included := make([]string, 10_000)
	for i := range included {
		included[i] = fmt.Sprintf("user-%d", i)
	}
	prereq := func(on string) func(*waygatev1.FeatureFlagSpec) {
		return func(s *waygatev1.FeatureFlagSpec) {
			s.Fallthrough.Variation = "on"
			if on != "" {
				s.Prerequisites = []waygatev1.Prerequisite{{Flag: waygatev1.Key(on), Variation: "on"}}
			}
		}
	}
	return Compile([]waygatev1.FeatureFlag{
		boolFlag("static", func(s *waygatev1.FeatureFlagSpec) { s.Fallthrough.Variation = "on" }),
		boolFlag("one-rule", ruleOn(cl("color", waygatev1.OperatorIs, "yellow"))),
		boolFlag("segment", ruleOn(cl("key", waygatev1.OperatorInSegment, "big"))),
		rollout(30_000, 30_000, 40_000),
		boolFlag("chain-1", prereq("")),
		boolFlag("chain-2", prereq("chain-1")),
		boolFlag("chain-3", prereq("chain-2")),
	}, []waygatev1.Segment{{ObjectMeta: metav1.ObjectMeta{Name: "big"}, Spec: waygatev1.SegmentSpec{Included: included}}})
}

func BenchmarkEvaluate(b *testing.B) {
	snap := benchSnapshot()
	cases := []struct {
		name, flag, variant string
		ctx                 *Context
	}{
		{"static", "static", "on", &Context{}},
		{"one-rule", "one-rule", "on", &Context{Key: "alice", Attributes: map[string]any{"color": "yellow"}}},
		{"segment-10000", "segment", "on", &Context{Key: "user-9999"}},
		{"rollout-3", "rollout", "", &Context{Key: "alice"}},
		{"prerequisites-3", "chain-3", "on", &Context{Key: "alice"}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			if r := snap.Evaluate(tc.flag, tc.ctx); r.ErrorCode != "" || (tc.variant != "" && r.Variant != tc.variant) {
				b.Fatalf("%s: %+v", tc.flag, r)
			}
			b.ReportAllocs()
			for b.Loop() {
				snap.Evaluate(tc.flag, tc.ctx)
			}
		})
	}
}
