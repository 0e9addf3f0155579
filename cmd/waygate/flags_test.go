package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// Every flags and segments command says what it changed, and is audited
// with the user and platform cli.
func TestFlagsAndSegments(t *testing.T) {
	ns := namespace(t)
	steps := []struct {
		user   string
		args   string
		out    string
		action string
	}{
		{"alice", "segments create beta --include carol",
			"segment:beta: 1 included, 0 excluded, 0 rules (created segment <ns>/beta)", "segment_created"},
		{"bob", "segments include beta dave erin",
			"segment:beta: 1 included, 0 excluded, 0 rules → 3 included, 0 excluded, 0 rules (segment <ns>/beta)", "segment_updated"},
		{"alice", "segments exclude beta carol",
			"segment:beta: 3 included, 0 excluded, 0 rules → 2 included, 1 excluded, 0 rules (segment <ns>/beta)", "segment_updated"},
		{"alice", "flags create new-checkout",
			"flag:new-checkout: disabled, fallthrough on, 0 rules, 0 targeted, serving off to everyone until `waygate flags enable new-checkout` (created featureflag <ns>/new-checkout)", "flag_created"},
		{"bob", "flags add-rule new-checkout --clause key in_segment beta --rollout on=25,off=75",
			"flag:new-checkout: disabled, fallthrough on, 0 rules, 0 targeted → disabled, fallthrough on, 1 rule, 0 targeted (featureflag <ns>/new-checkout)", "flag_updated"},
		{"alice", "flags target new-checkout on alice bob",
			"flag:new-checkout: disabled, fallthrough on, 1 rule, 0 targeted → disabled, fallthrough on, 1 rule, 2 targeted (featureflag <ns>/new-checkout)", "flag_updated"},
		{"bob", "flags enable new-checkout",
			"flag:new-checkout: disabled, fallthrough on, 1 rule, 2 targeted → enabled, fallthrough on, 1 rule, 2 targeted (featureflag <ns>/new-checkout)", "flag_enabled"},
		{"alice", "flags untarget new-checkout alice",
			"flag:new-checkout: enabled, fallthrough on, 1 rule, 2 targeted → enabled, fallthrough on, 1 rule, 1 targeted (featureflag <ns>/new-checkout)", "flag_updated"},
		{"bob", "flags remove-rule new-checkout r1",
			"flag:new-checkout: enabled, fallthrough on, 1 rule, 1 targeted → enabled, fallthrough on, 0 rules, 1 targeted (featureflag <ns>/new-checkout)", "flag_updated"},
		{"alice", "flags disable new-checkout",
			"flag:new-checkout: enabled, fallthrough on, 0 rules, 1 targeted → disabled, fallthrough on, 0 rules, 1 targeted (featureflag <ns>/new-checkout)", "flag_disabled"},
		{"bob", "segments create gone",
			"segment:gone: 0 included, 0 excluded, 0 rules (created segment <ns>/gone)", "segment_created"},
		{"alice", "segments delete gone",
			"segment:gone: 0 included, 0 excluded, 0 rules, deleted (segment <ns>/gone)", "segment_deleted"},
	}
	want := map[string]int{}
	for _, s := range steps {
		golden(t, ns, must(t, s.user, ns, splitArgs(s.args)...), s.out)
		want[s.user+" "+s.action]++
	}
	eventually(t, 20*time.Second, func() error {
		out, err := waygate(t, "carol", ns, "audit", "--limit", "100")
		if err != nil {
			return err
		}
		got := map[string]int{}
		for _, line := range strings.Split(masked(out, ns), "\n")[1:] {
			f := strings.Split(line, "  ")
			if f[2] != "cli" {
				return fmt.Errorf("entry with platform %s: %s", f[2], line)
			}
			got[f[1]+" "+f[3]]++
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("entries by user and action: %v, want %v", got, want)
		}
		return nil
	})

	golden(t, ns, settled(t, ns, "flags", "list"), `
KEY  TYPE  ENABLED  VARIATIONS  OFF  FALLTHROUGH  RULES  TARGETED  READY
new-checkout  boolean  false  on,off  off  on  0  1  True`)
	golden(t, ns, must(t, "carol", ns, "flags", "variations", "new-checkout"), `
NAME  VALUE  SERVED  DESCRIPTION
on  true  fallthrough  -
off  false  off  -`)
	golden(t, ns, settled(t, ns, "segments", "get", "beta"), `
Key:  beta
Name:  -
Description:  -
Included:  dave, erin
Excluded:  carol
Used by:  -
Ready:  True Resolved: all segments named in rules resolve
Segment:  <ns>/beta`)
	golden(t, ns, must(t, "carol", ns, "segments", "list"), `
KEY  INCLUDED  EXCLUDED  RULES  READY
beta  2  1  0  True`)

	for args, want := range map[string]string{
		"flags enable new-chekout":                         "no FeatureFlag in namespace <ns> has key new-chekout; did you mean new-checkout?",
		"flags target new-checkout maybe alice":            "flag new-checkout has no variation maybe: use one of on, off",
		"flags remove-rule new-checkout r9":                "no rule r9: there are no rules",
		"flags add-rule new-checkout --serve on":           `a rule needs at least one --clause, e.g. --clause "country in US,CA"`,
		"flags create theme --type string --variation a=x": "name the variation served when the flag is off (--off) and when no rule matches (--fallthrough): one of a",
		"segments add-rule beta --clause plan":             `--clause "plan": write ATTRIBUTE OPERATOR VALUE[,VALUE...], e.g. "country in US,CA"`,
		"segments add-rule beta --clause plan almost gold": `the API server refused the change: spec.rules[0].clauses[0].operator: Unsupported value: "almost"`,
		"segments delete gamma":                            "no Segment in namespace <ns> has key gamma; `waygate segments list` lists the segments",
	} {
		_, err := waygate(t, "alice", ns, splitArgs(args)...)
		if err == nil || !strings.HasPrefix(masked(err.Error(), ns), want) {
			t.Errorf("waygate %s: %v\nwant: %s", args, err, want)
		}
	}
}

// splitArgs splits a command line on spaces, keeping "--clause" values
// (everything up to the next flag) together.
func splitArgs(s string) []string {
	var out []string
	f := strings.Fields(s)
	for i := 0; i < len(f); i++ {
		out = append(out, f[i])
		if f[i] == "--clause" {
			j := i + 1
			for j < len(f) && !strings.HasPrefix(f[j], "--") {
				j++
			}
			out = append(out, strings.Join(f[i+1:j], " "))
			i = j - 1
		}
	}
	return out
}

// flags create makes a flag disabled, serving its off variation, and says
// so; with --enabled, enabled. A FeatureFlag written without spec.enabled,
// as kubectl applies a manifest, is enabled: the schema's default.
func TestFlagCreateState(t *testing.T) {
	ns := namespace(t)
	golden(t, ns, must(t, "alice", ns, "flags", "create", "dark-mode", "--enabled"),
		"flag:dark-mode: enabled, fallthrough on, 0 rules, 0 targeted (created featureflag <ns>/dark-mode)")
	golden(t, ns, must(t, "alice", ns, "flags", "create", "theme", "--type", "string", "--variation", "classic=classic", "--variation", "bold=bold", "--off", "classic", "--fallthrough", "bold"),
		"flag:theme: disabled, fallthrough bold, 0 rules, 0 targeted, serving classic to everyone until `waygate flags enable theme` (created featureflag <ns>/theme)")
	manifest := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": waygatev1.GroupVersion.String(), "kind": "FeatureFlag",
		"metadata": map[string]any{"namespace": ns, "name": "from-manifest"},
		"spec": map[string]any{"type": "boolean", "offVariation": "off", "fallthrough": map[string]any{"variation": "on"},
			"variations": []any{map[string]any{"name": "on", "value": true}, map[string]any{"name": "off", "value": false}}},
	}}
	if err := env.Client.Create(context.Background(), manifest); err != nil {
		t.Fatal(err)
	}
	golden(t, ns, settled(t, ns, "flags", "list"), `
KEY  TYPE  ENABLED  VARIATIONS  OFF  FALLTHROUGH  RULES  TARGETED  READY
dark-mode  boolean  true  on,off  off  on  0  0  True
from-manifest  boolean  true  on,off  off  on  0  0  True
theme  string  false  classic,bold  classic  bold  0  0  True`)
	// Served to everyone: value, variant, reason.
	for key, want := range map[string]string{"dark-mode": "true on STATIC", "from-manifest": "true on STATIC", "theme": "classic classic DISABLED"} {
		var r struct{ Value, Variant, Reason any }
		if err := json.Unmarshal([]byte(must(t, "carol", ns, "flags", "eval", key, "--context", "key=alice", "-o", "json")), &r); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(r.Value, " ", r.Variant, " ", r.Reason); got != want {
			t.Errorf("flags eval %s: %s, want %s", key, got, want)
		}
	}
}

// flags eval evaluates with the gate's engine, from the flags as stored.
func TestFlagsEval(t *testing.T) {
	ns := namespace(t)
	must(t, "alice", ns, "segments", "create", "beta", "--include", "bob")
	must(t, "alice", ns, "flags", "create", "new-checkout")
	must(t, "alice", ns, splitArgs("flags add-rule new-checkout --clause key in_segment beta --serve on")...)
	must(t, "alice", ns, splitArgs("flags add-rule new-checkout --clause country in US --serve off")...)
	must(t, "alice", ns, "flags", "enable", "new-checkout")
	for args, want := range map[string]string{
		"flags eval new-checkout --context key=bob --context country=US": `
Flag:  new-checkout
Value:  true
Variant:  on
Reason:  TARGETING_MATCH`,
		"flags eval new-checkout --context key=carol --context country=US": `
Flag:  new-checkout
Value:  false
Variant:  off
Reason:  TARGETING_MATCH`,
		"flags eval new-checkout --context key=carol": `
Flag:  new-checkout
Value:  true
Variant:  on
Reason:  DEFAULT`,
		"flags eval nope --context key=carol": `
Flag:  nope
Reason:  ERROR
Error:  FLAG_NOT_FOUND: no flag has this key in this namespace`,
	} {
		golden(t, ns, must(t, "carol", ns, strings.Fields(args)...), want)
	}
	out := must(t, "carol", ns, "flags", "eval", "new-checkout", "--context", "key=bob", "-o", "json")
	if !strings.Contains(out, `"variant": "on"`) || !strings.Contains(out, `"value": true`) {
		t.Errorf("-o json: %s", out)
	}
	if _, err := waygate(t, "carol", ns, "flags", "eval", "new-checkout", "--context", "bob"); err == nil || !strings.Contains(err.Error(), "ATTRIBUTE=VALUE") {
		t.Errorf("--context bob: %v, want a hint at ATTRIBUTE=VALUE", err)
	}
}
