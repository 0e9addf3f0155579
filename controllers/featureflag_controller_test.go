package controllers_test

import (
	"context"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/controllers"
)

// boolFlag is an enabled boolean flag with variations on and off.
func boolFlag(ns, name string, prereqs ...waygatev1.Prerequisite) *waygatev1.FeatureFlag {
	return &waygatev1.FeatureFlag{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: waygatev1.FeatureFlagSpec{
			Type: waygatev1.FlagBoolean,
			Variations: []waygatev1.Variation{
				{Name: "on", Value: apiextensionsv1.JSON{Raw: []byte("true")}},
				{Name: "off", Value: apiextensionsv1.JSON{Raw: []byte("false")}},
			},
			OffVariation:  "off",
			Fallthrough:   waygatev1.Serve{Variation: "on"},
			Enabled:       true,
			Prerequisites: prereqs,
		},
	}
}

func flagConds(ff *waygatev1.FeatureFlag) func() []metav1.Condition {
	return func() []metav1.Condition { return ff.Status.Conditions }
}

func segConds(s *waygatev1.Segment) func() []metav1.Condition {
	return func() []metav1.Condition { return s.Status.Conditions }
}

func wantMessage(t *testing.T, c *metav1.Condition, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(c.Message, p) {
			t.Errorf("Ready message %q does not say %q", c.Message, p)
		}
	}
}

func TestFlagPrerequisites(t *testing.T) {
	ns := env.Namespace(t, "flags")
	// Applied out of order, as GitOps may: the dependent first.
	child := boolFlag(ns, "child", waygatev1.Prerequisite{Flag: "parent", Variation: "on"})
	create(t, child)
	c := waitReady(t, child, flagConds(child), metav1.ConditionFalse, controllers.ReasonPrerequisiteNotFound)
	wantMessage(t, c, `prerequisite flag "parent" does not exist in namespace `+ns, "create it or remove it from spec.prerequisites")
	if child.Status.Key != "child" {
		t.Errorf("status.key %q, want the name", child.Status.Key)
	}

	parent := boolFlag(ns, "parent")
	create(t, parent)
	waitReady(t, child, flagConds(child), metav1.ConditionTrue, controllers.ReasonResolved)

	// The prerequisite must name a variation the parent has.
	update(t, child, func(f *waygatev1.FeatureFlag) { f.Spec.Prerequisites[0].Variation = "blue" })
	c = waitReady(t, child, flagConds(child), metav1.ConditionFalse, controllers.ReasonPrerequisiteVariationNotFound)
	wantMessage(t, c, `prerequisite flag "parent" has no variation "blue"; use one of: on, off`)
}

func TestFlagPrerequisiteCycle(t *testing.T) {
	ns := env.Namespace(t, "flags")
	a := boolFlag(ns, "a", waygatev1.Prerequisite{Flag: "b", Variation: "on"})
	b := boolFlag(ns, "b", waygatev1.Prerequisite{Flag: "c", Variation: "on"})
	create(t, a)
	create(t, b)
	cFlag := boolFlag(ns, "c")
	create(t, cFlag)
	waitReady(t, a, flagConds(a), metav1.ConditionTrue, controllers.ReasonResolved)

	// Closing the loop puts every flag on it out of Ready, naming the cycle.
	update(t, cFlag, func(f *waygatev1.FeatureFlag) {
		f.Spec.Prerequisites = []waygatev1.Prerequisite{{Flag: "a", Variation: "on"}}
	})
	for _, f := range []*waygatev1.FeatureFlag{a, b, cFlag} {
		c := waitReady(t, f, flagConds(f), metav1.ConditionFalse, controllers.ReasonPrerequisiteCycle)
		wantMessage(t, c, "prerequisites form a cycle: "+f.Name+" → ")
	}
	c := waitReady(t, a, flagConds(a), metav1.ConditionFalse, controllers.ReasonPrerequisiteCycle)
	wantMessage(t, c, "a → b → c → a")

	// Breaking it restores them all.
	update(t, cFlag, func(f *waygatev1.FeatureFlag) { f.Spec.Prerequisites = nil })
	for _, f := range []*waygatev1.FeatureFlag{a, b, cFlag} {
		waitReady(t, f, flagConds(f), metav1.ConditionTrue, controllers.ReasonResolved)
	}

	// A flag that requires itself is the smallest cycle.
	self := boolFlag(ns, "self", waygatev1.Prerequisite{Flag: "self", Variation: "on"})
	create(t, self)
	c = waitReady(t, self, flagConds(self), metav1.ConditionFalse, controllers.ReasonPrerequisiteCycle)
	wantMessage(t, c, "self → self")
}

func TestFlagSegmentsAndKeys(t *testing.T) {
	ns := env.Namespace(t, "flags")
	ff := boolFlag(ns, "beta-only")
	ff.Spec.Key = "checkout.beta"
	ff.Spec.Rules = []waygatev1.FlagRule{{
		ID: "beta", Variation: "on",
		Clauses: []waygatev1.Clause{{Attribute: "key", Operator: waygatev1.OperatorInSegment, Values: []string{"beta-users"}}},
	}}
	create(t, ff)
	c := waitReady(t, ff, flagConds(ff), metav1.ConditionFalse, controllers.ReasonSegmentNotFound)
	wantMessage(t, c, `segment "beta-users" (named in spec.rules) does not exist in namespace `+ns)
	if ff.Status.Key != "checkout.beta" {
		t.Errorf("status.key %q, want spec.key", ff.Status.Key)
	}

	seg := &waygatev1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "beta-users"}, Spec: waygatev1.SegmentSpec{Included: []string{"bob"}}}
	create(t, seg)
	waitReady(t, ff, flagConds(ff), metav1.ConditionTrue, controllers.ReasonResolved)

	// A second flag with the same key is refused by the controller.
	dup := boolFlag(ns, "other")
	dup.Spec.Key = "checkout.beta"
	create(t, dup)
	c = waitReady(t, dup, flagConds(dup), metav1.ConditionFalse, controllers.ReasonDuplicate)
	wantMessage(t, c, `flag key "checkout.beta" is already used by FeatureFlag "beta-only"; set a different spec.key`)
	waitReady(t, ff, flagConds(ff), metav1.ConditionTrue, controllers.ReasonResolved)
}

func TestSegmentReferences(t *testing.T) {
	ns := env.Namespace(t, "flags")
	inSeg := func(key string) []waygatev1.SegmentRule {
		return []waygatev1.SegmentRule{{Clauses: []waygatev1.Clause{{Attribute: "key", Operator: waygatev1.OperatorInSegment, Values: []string{key}}}}}
	}
	staff := &waygatev1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "staff"}, Spec: waygatev1.SegmentSpec{Rules: inSeg("admins")}}
	create(t, staff)
	c := waitReady(t, staff, segConds(staff), metav1.ConditionFalse, controllers.ReasonSegmentNotFound)
	wantMessage(t, c, `segment "admins"`)

	admins := &waygatev1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "admins"}, Spec: waygatev1.SegmentSpec{Included: []string{"root"}}}
	create(t, admins)
	waitReady(t, staff, segConds(staff), metav1.ConditionTrue, controllers.ReasonResolved)

	update(t, admins, func(s *waygatev1.Segment) { s.Spec.Rules = inSeg("staff") })
	c = waitReady(t, admins, segConds(admins), metav1.ConditionFalse, controllers.ReasonSegmentCycle)
	wantMessage(t, c, "admins → staff → admins")
	waitReady(t, staff, segConds(staff), metav1.ConditionFalse, controllers.ReasonSegmentCycle)
}

func TestRateLimitPolicies(t *testing.T) {
	ns := env.Namespace(t, "flags")
	policy := func(name string, route waygatev1.RouteKey, service waygatev1.ServiceName) *waygatev1.RateLimitPolicy {
		return &waygatev1.RateLimitPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       waygatev1.RateLimitPolicySpec{Route: route, Service: service, Limit: "100/minute", Enabled: true},
		}
	}
	conds := func(p *waygatev1.RateLimitPolicy) func() []metav1.Condition {
		return func() []metav1.Condition { return p.Status.Conditions }
	}
	route := policy("route", "GET:/payments", "payments")
	service := policy("service", "*", "payments")
	global := policy("global", "*", "")
	for _, p := range []*waygatev1.RateLimitPolicy{route, service, global} {
		create(t, p)
		c := waitReady(t, p, conds(p), metav1.ConditionTrue, controllers.ReasonResolved)
		// Defaults are filled in by the schema.
		wantMessage(t, c, "100/minute per ip key, fixed_window")
	}
	for p, scope := range map[*waygatev1.RateLimitPolicy]string{route: controllers.ScopeRoute, service: controllers.ScopeService, global: controllers.ScopeNamespace} {
		if p.Status.Scope != scope {
			t.Errorf("%s: scope %q, want %q", p.Name, p.Status.Scope, scope)
		}
	}

	// The oldest policy holds the scope; within the same second, the lowest name.
	dup := policy("route-copy", "GET:/payments", "payments")
	create(t, dup)
	c := waitReady(t, dup, conds(dup), metav1.ConditionFalse, controllers.ReasonDuplicate)
	wantMessage(t, c, `route GET:/payments of service payments already has RateLimitPolicy "route"`)

	update(t, route, func(p *waygatev1.RateLimitPolicy) { p.Spec.Enabled = false })
	waitReady(t, route, conds(route), metav1.ConditionTrue, controllers.ReasonDisabled)

	if err := k8s.Delete(context.Background(), route); err != nil {
		t.Fatal(err)
	}
	waitReady(t, dup, conds(dup), metav1.ConditionTrue, controllers.ReasonResolved)
}
