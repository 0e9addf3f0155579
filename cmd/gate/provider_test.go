package main

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"k8s.io/client-go/rest"

	"github.com/waygate-dev/waygate/pkg/flags/provider"
)

// evalContext is an OFREP case's context as the Go SDK takes it.
func evalContext(c map[string]any) of.EvaluationContext {
	attrs := map[string]any{}
	for k, v := range c {
		if k != "targetingKey" {
			attrs[k] = v
		}
	}
	key, _ := c["targetingKey"].(string)
	return of.NewEvaluationContext(key, attrs)
}

// The Go provider, through the OpenFeature Go SDK, evaluates in-process what
// the gate answers over OFREP; reports changes, and the gate's absence; and
// keeps serving the flags it last loaded.
func TestGoProvider(t *testing.T) {
	ctx := context.Background()
	ns := applyOFREPFlags(t)
	// A gate of the test's own, to stop.
	g, err := env.StartGate(ctx, gateBin, dir, "provider-gate", "")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	base := "http://" + g.HTTP + "/ns/" + ns

	// Definitions name the keys of targets and segments: only namespaces
	// that ask for an API key serve them.
	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(ctx) }()
	err = api.SetProviderAndWait(ctx, provider.New(provider.Options{BaseURL: base, Interval: 100 * time.Millisecond}))
	if err == nil || !strings.Contains(err.Error(), "waygate-ofrep-keys") {
		t.Fatalf("a namespace without an API key: %v, want a refusal naming the Secret", err)
	}

	kubectl(t, "", "create", "secret", "generic", "waygate-ofrep-keys", "-n", ns, "--from-literal=go=go-key")
	eventually(t, 10*time.Second, func() error {
		if a := get(t, http.MethodGet, base+"/waygate/v1/flags", "X-API-Key", "go-key"); a.Status != http.StatusOK {
			return fmt.Errorf("definitions: %s", a)
		}
		return nil
	})
	changes := make(chan of.EventDetails, 16)
	stale := make(chan of.EventDetails, 16)
	ready := make(chan of.EventDetails, 16)
	for typ, ch := range map[of.EventType]chan of.EventDetails{of.ProviderConfigChange: changes, of.ProviderStale: stale, of.ProviderReady: ready} {
		cb := func(d of.EventDetails) { ch <- d }
		api.AddHandler(typ, &cb)
	}
	p := provider.New(provider.Options{BaseURL: base, APIKey: "go-key", Interval: 100 * time.Millisecond})
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		t.Fatal(err)
	}
	client := api.NewClient()

	for _, tc := range ofrepCases(t) {
		ec := evalContext(tc.Context)
		var value any
		var d of.EvaluationDetails
		var err error
		switch tc.Type {
		case "boolean":
			var r of.BooleanEvaluationDetails
			r, err = client.BooleanValueDetails(ctx, tc.Flag, false, ec)
			value, d = r.Value, r.EvaluationDetails
		case "string":
			var r of.StringEvaluationDetails
			r, err = client.StringValueDetails(ctx, tc.Flag, "", ec)
			value, d = r.Value, r.EvaluationDetails
		case "integer":
			var r of.IntEvaluationDetails
			r, err = client.IntValueDetails(ctx, tc.Flag, -1, ec)
			value, d = float64(r.Value), r.EvaluationDetails
		case "float":
			var r of.FloatEvaluationDetails
			r, err = client.FloatValueDetails(ctx, tc.Flag, -1, ec)
			value, d = r.Value, r.EvaluationDetails
		default:
			var r of.InterfaceEvaluationDetails
			r, err = client.ObjectValueDetails(ctx, tc.Flag, nil, ec)
			value, d = r.Value, r.EvaluationDetails
		}
		if err != nil || !reflect.DeepEqual(value, tc.Value) || d.Variant != tc.Variant || string(d.Reason) != tc.Reason {
			t.Errorf("%s %v: %v %q %q (%v), want %v %q %q", tc.Flag, tc.Context, value, d.Variant, d.Reason, err, tc.Value, tc.Variant, tc.Reason)
		}
	}
	r, err := client.BooleanValueDetails(ctx, "theme", true, of.NewEvaluationContext("dave", nil))
	if err == nil || r.ErrorCode != of.TypeMismatchCode || !r.Value {
		t.Errorf("a string flag asked as a boolean: %+v %v, want TYPE_MISMATCH and the default", r, err)
	}
	r, err = client.BooleanValueDetails(ctx, "nope", true, of.NewEvaluationContext("dave", nil))
	if err == nil || r.ErrorCode != of.FlagNotFoundCode {
		t.Errorf("an unknown flag: %+v %v, want FLAG_NOT_FOUND", r, err)
	}

	// A change made with kubectl: an event, and the new value.
	changedTo(t, ns, client, changes, "dark")

	// The gate goes away: STALE, and the last flags are still served.
	g.Stop()
	waitEvent(t, stale, "PROVIDER_STALE with the gate stopped")
	if v, err := client.StringValue(ctx, "theme", "", of.NewEvaluationContext("dave", nil)); v != "dark" || err != nil {
		t.Errorf("theme with the gate stopped: %q %v, want dark from the last snapshot", v, err)
	}
}

// changedTo patches theme's fallthrough to variation with kubectl, and
// waits for a PROVIDER_CONFIGURATION_CHANGED after which the client
// evaluates it so.
func changedTo(t *testing.T, ns string, client *of.Client, changes chan of.EventDetails, variation string) {
	t.Helper()
	kubectl(t, "", "patch", "featureflag", "theme", "-n", ns, "--type", "merge", "-p", `{"spec":{"fallthrough":{"variation":"`+variation+`"}}}`)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-changes:
			if v, _ := client.StringValue(context.Background(), "theme", "", of.NewEvaluationContext("dave", nil)); v == variation {
				return
			}
		case <-deadline:
			t.Fatalf("no PROVIDER_CONFIGURATION_CHANGED that brought theme %s within 10s of a kubectl patch", variation)
		}
	}
}

// waitEvent waits for an event on ch.
func waitEvent(t *testing.T, ch chan of.EventDetails, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
}

// In the cluster, the provider watches the namespace's flags with the
// service's own identity, which needs to read them there and nothing else.
func TestGoProviderFromCluster(t *testing.T) {
	ctx := context.Background()
	ns := applyOFREPFlags(t)
	app := rest.CopyConfig(env.Admin)
	app.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":shop"}

	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(ctx) }()
	err := api.SetProviderAndWait(ctx, provider.NewFromCluster(app, ns))
	if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "get, list and watch of featureflags and segments") {
		t.Fatalf("an identity that may not read the flags: %v, want a refusal saying what it needs", err)
	}

	kubectl(t, "", "create", "role", "read-flags", "-n", ns, "--verb=get,list,watch", "--resource=featureflags.waygate.dev,segments.waygate.dev")
	kubectl(t, "", "create", "rolebinding", "shop-reads-flags", "-n", ns, "--role=read-flags", "--serviceaccount="+ns+":shop")
	changes := make(chan of.EventDetails, 16)
	cb := func(d of.EventDetails) { changes <- d }
	api.AddHandler(of.ProviderConfigChange, &cb)
	if err := api.SetProviderAndWait(ctx, provider.NewFromCluster(app, ns)); err != nil {
		t.Fatal(err)
	}
	client := api.NewClient()
	for _, tc := range ofrepCases(t) {
		if tc.Type != "boolean" && tc.Type != "string" {
			continue
		}
		var value any
		var d of.EvaluationDetails
		if tc.Type == "boolean" {
			r, _ := client.BooleanValueDetails(ctx, tc.Flag, false, evalContext(tc.Context))
			value, d = r.Value, r.EvaluationDetails
		} else {
			r, _ := client.StringValueDetails(ctx, tc.Flag, "", evalContext(tc.Context))
			value, d = r.Value, r.EvaluationDetails
		}
		if value != tc.Value || d.Variant != tc.Variant || string(d.Reason) != tc.Reason {
			t.Errorf("%s %v: %v %q %q, want %v %q %q", tc.Flag, tc.Context, value, d.Variant, d.Reason, tc.Value, tc.Variant, tc.Reason)
		}
	}
	changedTo(t, ns, client, changes, "dark")
}
