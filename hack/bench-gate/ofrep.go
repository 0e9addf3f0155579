package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/hack/internal/cputime"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// ofrepFlags is how many flags the OFREP namespace has: a bulk evaluation
// evaluates them all.
const ofrepFlags = 50

// ofrep measures OFREP evaluations with wrk: one flag with a targeting rule,
// and the bulk evaluation of all 50 flags, for one context.
func (b *bench) ofrep(ctx context.Context, c client.Client, g *controlplane.Gate, d time.Duration) error {
	if err := setUpFlags(ctx, c); err != nil {
		return err
	}
	base := "http://" + g.HTTP + "/ns/" + ns + "/ofrep/v1/evaluate/flags"
	body := `{"context":{"targetingKey":"user-42","color":"yellow","plan":"pro","app_version":"2.1.0"}}`
	if err := waitFlags(base, body); err != nil {
		return err
	}
	script := filepath.Join(b.dir, "ofrep.lua")
	lua := fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", body)
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nOFREP evaluations, wrk -t2 -c64, %s per run (namespace of %d flags: static, one rule, rollouts, segments)\n", d, ofrepFlags)
	for _, t := range []struct{ name, url string }{
		{"single flag (one rule)", base + "/rule-1"},
		{fmt.Sprintf("bulk (%d flags)", ofrepFlags), base},
	} {
		r, err := measure(d, 64, target{url: t.url, args: []string{"-s", script}}, new(cputime.Meter).Add("gate", g.Pid))
		if err != nil {
			return err
		}
		fmt.Printf("%-24s %8.0f req/s  p99 %-8s  %s\n", t.name, r.rps, r.p99, r.cpu)
	}
	return nil
}

// setUpFlags creates ofrepFlags flags in ns: a fifth static, two fifths
// with a rule on an attribute, a fifth rolled out, a fifth on a segment.
func setUpFlags(ctx context.Context, c client.Client) error {
	included := make([]string, 1000)
	for i := range included {
		included[i] = fmt.Sprintf("user-%d", i)
	}
	if err := c.Create(ctx, &waygatev1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "beta"},
		Spec: waygatev1.SegmentSpec{Included: included}}); err != nil {
		return err
	}
	raw := func(v bool) apiextensionsv1.JSON { b, _ := json.Marshal(v); return apiextensionsv1.JSON{Raw: b} }
	for i := range ofrepFlags {
		spec := waygatev1.FeatureFlagSpec{
			Type: waygatev1.FlagBoolean, Enabled: true, OffVariation: "off", Fallthrough: waygatev1.Serve{Variation: "off"},
			Variations: []waygatev1.Variation{{Name: "on", Value: raw(true)}, {Name: "off", Value: raw(false)}},
		}
		name := fmt.Sprint("static-", i)
		switch i % 5 {
		case 1, 2:
			name = fmt.Sprint("rule-", i)
			spec.Rules = []waygatev1.FlagRule{{Clauses: []waygatev1.Clause{{Attribute: "color", Operator: waygatev1.OperatorIs, Values: []string{"yellow"}}}, Variation: "on"}}
		case 3:
			name = fmt.Sprint("rollout-", i)
			spec.Fallthrough = waygatev1.Serve{Rollout: waygatev1.Rollout{{Variation: "on", Weight: 30000}, {Variation: "off", Weight: 70000}}}
		case 4:
			name = fmt.Sprint("segment-", i)
			spec.Rules = []waygatev1.FlagRule{{Clauses: []waygatev1.Clause{{Attribute: "key", Operator: waygatev1.OperatorInSegment, Values: []string{"beta"}}}, Variation: "on"}}
		}
		if err := c.Create(ctx, &waygatev1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}); err != nil {
			return err
		}
	}
	return nil
}

// waitFlags waits until the bulk evaluation at url has every flag.
func waitFlags(url, body string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			continue
		}
		var bulk struct {
			Flags []json.RawMessage `json:"flags"`
		}
		err = json.NewDecoder(resp.Body).Decode(&bulk)
		_ = resp.Body.Close()
		if err == nil && len(bulk.Flags) == ofrepFlags {
			return nil
		}
	}
	return fmt.Errorf("the gate did not serve the %d flags within 30s", ofrepFlags)
}
