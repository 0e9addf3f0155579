package controllers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Every invalid manifest is rejected by the API server, with a message that
// names the field and says how to fix it.
func TestInvalidManifestsAreRejected(t *testing.T) {
	ns := env.Namespace(t, "valid")
	const flagHead = `
apiVersion: waygate.dev/v1alpha1
kind: FeatureFlag
metadata: {name: f}
spec:
`
	const boolVariations = `
  variations: [{name: "on", value: true}, {name: "off", value: false}]
  offVariation: "off"
  fallthrough: {variation: "on"}
`
	// manifest returns a function that wraps a spec in a manifest of kind.
	manifest := func(kind string) func(spec string) string {
		return func(spec string) string {
			return "apiVersion: waygate.dev/v1alpha1\nkind: " + kind + "\nmetadata: {name: x}\nspec:\n" + spec
		}
	}
	rg, rlp, seg := manifest("RouteGate"), manifest("RateLimitPolicy"), manifest("Segment")
	ruleWith := func(clause string) string {
		return flagHead + boolVariations + "  rules: [{id: r1, variation: \"on\", clauses: [" + clause + "]}]\n"
	}

	cases := []struct {
		name     string
		manifest string
		want     []string // substrings of the error
	}{
		// RouteGate
		{"route without slash", rg("  route: payments\n"), []string{"spec.route", `"payments" is not a route key`, "METHOD:/path"}},
		{"lower-case method", rg("  route: get:/payments\n"), []string{"spec.route", "method in upper case"}},
		{"unknown method", rg("  route: FETCH:/payments\n"), []string{"spec.route", "is not a route key"}},
		{"route with query", rg("  route: GET:/payments?x=1\n"), []string{"spec.route", "is not a route key"}},
		{"route with an escape", rg("  route: GET:/%70ayments\n"), []string{"spec.route", "is not a route key the gate can match", "decoded"}},
		{"route with a parameter", rg("  route: /payments;v=1\n"), []string{"spec.route", "without ;parameters"}},
		{"route with a dot segment", rg("  route: /a/../payments\n"), []string{"spec.route", "segments"}},
		{"route with a repeated slash", rg("  route: GET://payments\n"), []string{"spec.route", "repeated slashes"}},
		{"route with a template in a segment", rg("  route: GET:/files/{name}.json\n"), []string{"spec.route", "a path template is a whole segment"}},
		{"route with a catch-all before the end", rg("  route: /mid/{rest...}/x\n"), []string{"spec.route", "a last {name...}"}},
		{"route missing", rg("  state: active\n"), []string{"spec.route", "Required value"}},
		{"unknown state", rg("  route: /a\n  state: paused\n"), []string{"spec.state", `"active", "maintenance", "disabled", "env_gated", "deprecated"`}},
		{"env_gated without envs", rg("  route: /a\n  state: env_gated\n"), []string{"spec.allowedEnvs", "required when state is env_gated"}},
		{"exempt on a single route", rg("  route: /a\n  exempt: [GET:/health]\n"), []string{"spec.exempt", `only allowed when route is "*"`}},
		{"bad exempt key", rg("  route: \"*\"\n  exempt: [health]\n"), []string{"spec.exempt[0]", "is not a route key"}},
		{"service gate disabled", rg("  route: \"*\"\n  state: disabled\n"), []string{"spec.state", "can only be active or maintenance"}},
		{"window end before start", rg("  route: /a\n  window: {start: \"2030-01-02T00:00:00Z\", end: \"2030-01-01T00:00:00Z\"}\n"), []string{"spec.window", "window.end must be after window.start"}},
		{"window on a disabled route", rg("  route: /a\n  state: disabled\n  window: {start: \"2030-01-01T00:00:00Z\", end: \"2030-01-02T00:00:00Z\"}\n"), []string{"spec.window", "needs state active or maintenance"}},
		{"until on an active route", rg("  route: /a\n  until: \"2030-01-01T00:00:00Z\"\n"), []string{"spec.until", "needs state disabled", "remove until, or set state disabled"}},
		{"until with a window", rg("  route: /a\n  state: maintenance\n  until: \"2030-01-01T00:00:00Z\"\n  window: {start: \"2030-01-01T00:00:00Z\", end: \"2030-01-02T00:00:00Z\"}\n"),
			[]string{"spec.until", "needs state disabled", "use spec.window"}},
		{"until not a time", rg("  route: /a\n  state: disabled\n  until: 2h\n"), []string{"spec.until"}},
		{"window not a time", rg("  route: /a\n  window: {start: tomorrow, end: \"2030-01-02T00:00:00Z\"}\n"), []string{"spec.window.start"}},
		{"forceActive in maintenance", rg("  route: /a\n  state: maintenance\n  forceActive: true\n"), []string{"spec.forceActive", "needs state active"}},
		{"includeForceActive on a route", rg("  route: /a\n  includeForceActive: true\n"), []string{"spec.includeForceActive", `route "*"`}},
		{"deprecated without details", rg("  route: /a\n  state: deprecated\n"), []string{"spec.deprecation", "required when state is deprecated"}},
		{"empty deprecation", rg("  route: /a\n  state: deprecated\n  deprecation: {}\n"), []string{"spec.deprecation", "sunset time, a successor, or both"}},
		{"bad service name", rg("  route: /a\n  service: Payments_API\n"), []string{"spec.service", "is not a service name"}},

		// RateLimitPolicy
		{"limit unit", rlp("  route: /a\n  limit: 100/fortnight\n"), []string{"spec.limit", `"100/fortnight" is not a limit`, "second, minute, hour, day, month, year"}},
		{"limit zero", rlp("  route: /a\n  limit: 0/minute\n"), []string{"spec.limit", "is not a limit"}},
		{"limit missing", rlp("  route: /a\n"), []string{"spec.limit", "Required value"}},
		{"unknown algorithm", rlp("  route: /a\n  limit: 1/second\n  algorithm: leaky_bucket\n"), []string{"spec.algorithm", "fixed_window", "token_bucket"}},
		{"header key without header", rlp("  route: /a\n  limit: 1/second\n  keyStrategy: header\n"), []string{"spec.keyHeader", "required when keyStrategy is header"}},
		{"header name without header strategy", rlp("  route: /a\n  limit: 1/second\n  keyHeader: X-Tenant\n"), []string{"spec.keyHeader", "only used with keyStrategy header"}},
		{"tiers without tier header", rlp("  route: /a\n  limit: 1/second\n  tiers: [{name: pro, limit: 10/second}]\n"), []string{"spec.tierHeader", "required with tiers"}},
		{"bad tier limit", rlp("  route: /a\n  limit: 1/second\n  tierHeader: X-Plan\n  tiers: [{name: pro, limit: lots}]\n"), []string{"spec.tiers[0].limit", `"lots" is not a limit`, "unlimited"}},
		{"bad CIDR", rlp("  route: /a\n  limit: 1/second\n  exemptCIDRs: [10.0.0.0/33]\n"), []string{"spec.exemptCIDRs[0]", "is not a CIDR"}},
		{"negative burst", rlp("  route: /a\n  limit: 1/second\n  burst: -1\n"), []string{"spec.burst", "greater than or equal to 0"}},
		{"unknown on-missing-key", rlp("  route: /a\n  limit: 1/second\n  onMissingKey: allow\n"), []string{"spec.onMissingKey", "exempt", "fallback_ip", "block"}},

		// FeatureFlag
		{"off variation unknown", flagHead + "  variations: [{name: \"on\", value: true}]\n  offVariation: nope\n  fallthrough: {variation: \"on\"}\n", []string{"spec.offVariation", `"nope" is not a variation of this flag`}},
		{"fallthrough variation unknown", flagHead + "  variations: [{name: \"on\", value: true}]\n  offVariation: \"on\"\n  fallthrough: {variation: maybe}\n", []string{"spec.fallthrough.variation", `"maybe" is not a variation of this flag`}},
		{"fallthrough both", flagHead + "  variations: [{name: \"on\", value: true}]\n  offVariation: \"on\"\n  fallthrough: {variation: \"on\", rollout: [{variation: \"on\", weight: 100000}]}\n", []string{"spec.fallthrough", "exactly one of variation or rollout"}},
		{"rollout weights", flagHead + "  variations: [{name: \"on\", value: true}, {name: \"off\", value: false}]\n  offVariation: \"off\"\n  fallthrough: {rollout: [{variation: \"on\", weight: 50}, {variation: \"off\", weight: 50}]}\n", []string{"spec.fallthrough.rollout", "must add up to 100000"}},
		{"rollout variation unknown", flagHead + "  variations: [{name: \"on\", value: true}]\n  offVariation: \"on\"\n  fallthrough: {rollout: [{variation: x, weight: 100000}]}\n", []string{"spec.fallthrough.rollout", "must name one of spec.variations"}},
		{"target variation unknown", flagHead + boolVariations + "  targets: [{variation: x, keys: [alice]}]\n", []string{"spec.targets", "must name one of spec.variations"}},
		{"rule variation unknown", flagHead + boolVariations + "  rules: [{variation: x, clauses: [{attribute: country, operator: is, values: [NL]}]}]\n", []string{"spec.rules", "must name one of spec.variations"}},
		{"duplicate variation", flagHead + "  variations: [{name: \"on\", value: true}, {name: \"on\", value: false}]\n  offVariation: \"on\"\n  fallthrough: {variation: \"on\"}\n", []string{"spec.variations[1]", "Duplicate value"}},
		{"boolean flag with string value", flagHead + "  type: boolean\n  variations: [{name: \"on\", value: \"yes\"}]\n  offVariation: \"on\"\n  fallthrough: {variation: \"on\"}\n", []string{"spec.variations[0].value", "must be true or false"}},
		{"integer flag with fraction", flagHead + "  type: integer\n  variations: [{name: a, value: 1.5}]\n  offVariation: a\n  fallthrough: {variation: a}\n", []string{"spec.variations[0].value", "whole number"}},
		{"string flag with number", flagHead + "  type: string\n  variations: [{name: a, value: 3}]\n  offVariation: a\n  fallthrough: {variation: a}\n", []string{"spec.variations[0].value", "must be a string"}},
		{"unknown type", flagHead + "  type: number\n" + boolVariations, []string{"spec.type", `"boolean", "string", "integer", "float", "json"`}},
		{"unknown operator", ruleWith("{attribute: country, operator: equals, values: [NL]}"), []string{"spec.rules[0].clauses[0].operator", `"is", "is_not"`}},
		{"regex does not compile", ruleWith("{attribute: email, operator: matches, values: ['(']}"), []string{"spec.rules[0].clauses[0].values[0]", "not a valid regular expression"}},
		{"number operator with text", ruleWith("{attribute: age, operator: gte, values: [adult]}"), []string{"spec.rules[0].clauses[0].values[0]", "operator gte: not a number"}},
		{"time operator with text", ruleWith("{attribute: signup, operator: before, values: [yesterday]}"), []string{"spec.rules[0].clauses[0].values[0]", "RFC 3339"}},
		{"semver operator with text", ruleWith("{attribute: app_version, operator: semver_gt, values: [latest]}"), []string{"spec.rules[0].clauses[0].values[0]", "not a semantic version"}},
		{"segment clause on another attribute", ruleWith("{attribute: email, operator: in_segment, values: [beta]}"), []string{"spec.rules[0].clauses[0].attribute", `must be "key" for in_segment`}},
		{"clause without values", ruleWith("{attribute: email, operator: is, values: []}"), []string{"spec.rules[0].clauses[0].values", "at least 1 items"}},
		{"duplicate rule ids", flagHead + boolVariations + "  rules: [{id: a, variation: \"on\", clauses: [{attribute: k, operator: is, values: [p]}]}, {id: a, variation: \"on\", clauses: [{attribute: k, operator: is, values: [q]}]}]\n", []string{"spec.rules", "rule ids must be unique"}},
		{"bad flag key", flagHead + "  key: \"-x\"\n" + boolVariations, []string{"spec.key", `"-x" is not a key`}},
		{"prerequisite without variation", flagHead + boolVariations + "  prerequisites: [{flag: other}]\n", []string{"spec.prerequisites[0].variation", "Required value"}},

		// Segment
		{"segment regex", seg("  rules: [{clauses: [{attribute: email, operator: not_matches, values: ['[a-']}]}]\n"), []string{"spec.rules[0].clauses[0].values[0]", "not a valid regular expression"}},
		{"segment bad key", seg("  key: \"a b\"\n"), []string{"spec.key", "is not a key"}},

		// AuditEntry
		{"audit entry unknown platform", "apiVersion: waygate.dev/v1alpha1\nkind: AuditEntry\nmetadata: {name: a}\nspec: {path: /a, action: enable, actor: me, platform: email, timestamp: \"2030-01-01T00:00:00.000000Z\", target: {kind: RouteGate, name: r}}\n", []string{"spec.platform", `"kubectl", "gitops", "cli", "dashboard", "api", "system"`}},
	}
	if len(cases) < 25 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := fromYAML(t, tc.manifest)
			obj.SetNamespace(ns)
			err := k8s.Create(context.Background(), obj)
			if err == nil {
				t.Fatalf("accepted, want rejected with %q", tc.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("error %v is not Invalid (422)", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// The samples are valid and every one of them becomes Ready.
func TestSamplesAreAcceptedAndReady(t *testing.T) {
	ns := env.Namespace(t, "valid")
	files, err := filepath.Glob(filepath.Join(env.Root, "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			obj := fromYAML(t, doc)
			obj.SetNamespace(ns)
			if err := k8s.Create(context.Background(), obj); err != nil {
				t.Fatalf("%s: %s %s rejected: %v", filepath.Base(f), obj.GetKind(), obj.GetName(), err)
			}
			objs = append(objs, obj)
		}
	}
	if len(objs) < 10 {
		t.Fatalf("only %d sample objects", len(objs))
	}
	for _, obj := range objs {
		eventually(t, 20*time.Second, func() error {
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
			for _, c := range conds {
				m := c.(map[string]any)
				if m["type"] == "Ready" && m["status"] == "True" {
					return nil
				}
			}
			return fmt.Errorf("%s %s not Ready: %v", obj.GetKind(), obj.GetName(), conds)
		})
	}
}

func fromYAML(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
		t.Fatalf("test manifest is not YAML: %v\n%s", err, manifest)
	}
	return obj
}
