package main

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// Mistakes get one line that says what is wrong and how to fix it, and
// change nothing.
func TestErrors(t *testing.T) {
	ns := namespace(t)
	must(t, "alice", ns, "maintenance", "GET:/payments", "-r", "Migration")
	must(t, "alice", ns, "disable", "POST:/payments")
	must(t, "alice", ns, "disable", "GET:/orders")
	for _, tc := range []struct {
		user string
		args []string
		want string
	}{
		{"alice", []string{"enable", "GET:/paymnts"},
			"no RouteGate in namespace <ns> has route GET:/paymnts; did you mean GET:/payments or POST:/payments?"},
		{"alice", []string{"status", "/payments"},
			"/payments is ambiguous: no RouteGate in namespace <ns> covers every method of it, but GET:/payments, POST:/payments do: name one of them"},
		{"alice", []string{"enable", "/orders"},
			"no RouteGate in namespace <ns> covers every method of /orders; did you mean GET:/orders?"},
		{"alice", []string{"enable", "/nothing/like/it"},
			"no RouteGate in namespace <ns> has route /nothing/like/it; `waygate status` lists the gated routes"},
		{"alice", []string{"disable", "FETCH:/payments"},
			`"FETCH:/payments" is not a route key: FETCH is not an HTTP method; write METHOD:/path (e.g. GET:/payments) or /path for every method`},
		{"alice", []string{"env", "set", "*", "prod"},
			`the API server refused the change: spec.state: a service-wide gate (route "*") can only be active or maintenance; gate single routes to disable or env-gate them`},
		{"alice", []string{"schedule", "GET:/payments", "--start", "tomorrow", "--end", "2h"},
			`--start "tomorrow": give a time (2030-06-01T03:00:00Z, or 2030-06-01 03:00 in UTC) or a delay from now (<age>, <age>)`},
		{"alice", []string{"schedule", "GET:/payments", "--start", "2h", "--end", "1h"},
			"--end (<time>) must be after --start (<time>)"},
		{"alice", []string{"disable", "GET:/payments", "--until", "yesterday"},
			`--until "yesterday": give a time (2030-06-01T03:00:00Z, or 2030-06-01 03:00 in UTC) or a delay from now (<age>, <age>)`},
		{"alice", []string{"disable", "GET:/payments", "--until", "-5m"},
			"--until -<age> is not in the future (<time>): give a later time, or a delay from now such as <age>"},
		{"alice", []string{"audit", "--limit", "0"}, "--limit 0: give a number of entries above 0"},
		{"alice", []string{"status", "-o", "xml"}, `--output "xml": use table, wide, json or yaml`},
		{"carol", []string{"disable", "GET:/payments"},
			`routegates.waygate.dev "get-payments" is forbidden: User "carol" cannot update resource "routegates" in API group "waygate.dev" in the namespace "<ns>"; ask your cluster admin for it`},
		{"carol", []string{"disable", "GET:/new"},
			`routegates.waygate.dev is forbidden: User "carol" cannot create resource "routegates" in API group "waygate.dev" in the namespace "<ns>"; ask your cluster admin for it`},
		{"dave", []string{"audit"},
			`auditentries.waygate.dev is forbidden: User "dave" cannot list resource "auditentries" in API group "waygate.dev" in the namespace "<ns>"; ask your cluster admin for it`},
	} {
		out, err := waygate(t, tc.user, ns, tc.args...)
		if err == nil {
			t.Errorf("waygate %s: no error; printed\n%s", strings.Join(tc.args, " "), out)
			continue
		}
		if got := masked(err.Error(), ns); !strings.HasPrefix(got, tc.want) || strings.Contains(got, "\n") {
			t.Errorf("waygate %s:\n got: %s\nwant: %s", strings.Join(tc.args, " "), got, tc.want)
		}
	}
	// Nothing changed: the gates are as before, and no gate was created.
	golden(t, ns, settled(t, ns, "status"), `
ROUTE  SERVICE  STATE  REASON  NEXT CHANGE
GET:/orders  -  disabled  -  -
GET:/payments  -  maintenance  Migration  -
POST:/payments  -  disabled  -  -`)
}

// A RouteGate that GitOps manages is changed only with --force, as the next
// sync would silently undo the change.
func TestGitOpsManagedNeedsForce(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	for name, meta := range map[string]func(*waygatev1.RouteGate){
		"argo": func(rg *waygatev1.RouteGate) {
			rg.Annotations = map[string]string{"argocd.argoproj.io/tracking-id": "payments:waygate.dev/RouteGate:" + ns + "/argo"}
		},
		"flux": func(rg *waygatev1.RouteGate) {
			rg.Labels = map[string]string{"kustomize.toolkit.fluxcd.io/name": "payments"}
		},
		"helm": func(rg *waygatev1.RouteGate) { rg.Labels = map[string]string{"app.kubernetes.io/managed-by": "Helm"} },
	} {
		rg := &waygatev1.RouteGate{Spec: waygatev1.RouteGateSpec{Route: waygatev1.RouteKey("GET:/" + name), State: waygatev1.RouteActive}}
		rg.Namespace, rg.Name = ns, name
		meta(rg)
		if err := env.Client.Create(ctx, rg); err != nil {
			t.Fatal(err)
		}
	}
	for route, want := range map[string]string{
		"GET:/argo": "routegate <ns>/argo is managed by Argo CD (annotation argocd.argoproj.io/tracking-id): the next sync reverts a change made here; change it in Git, or pass --force to change it anyway",
		"GET:/flux": "routegate <ns>/flux is managed by Flux (label kustomize.toolkit.fluxcd.io/name)",
		"GET:/helm": "routegate <ns>/helm is managed by Helm (label app.kubernetes.io/managed-by)",
	} {
		_, err := waygate(t, "alice", ns, "disable", route)
		if err == nil || !strings.HasPrefix(masked(err.Error(), ns), want) {
			t.Errorf("disable %s: %v, want %s", route, err, want)
		}
	}
	golden(t, ns, must(t, "alice", ns, "disable", "GET:/argo", "--force", "-r", "Hotfix"),
		`GET:/argo: active → disabled "Hotfix" (routegate <ns>/argo)`)
	var rg waygatev1.RouteGate
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flux"}, &rg); err != nil || rg.Spec.State != waygatev1.RouteActive {
		t.Errorf("flux gate changed without --force: %v %s", err, rg.Spec.State)
	}
	if out := must(t, "carol", ns, "status", "GET:/argo"); !strings.Contains(out, "Managed by:  Argo CD") {
		t.Errorf("status does not say who manages the gate:\n%s", out)
	}
}
