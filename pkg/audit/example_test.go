package audit_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/pkg/audit"
)

// cfg stands for your cluster's connection (ctrl.GetConfig() in a program).
var cfg *rest.Config

// env is the control plane of the package's tests.
var env *operatortest.Env

func TestMain(m *testing.M) {
	os.Exit(operatortest.Run(operatortest.RunInput{M: m, Env: &env, Setup: func(e *operatortest.Env) (func(), error) {
		cfg = e.Admin
		return nil, changePayments(e)
	}}))
}

// changePayments has alice put GET:/payments of the namespace shop into
// maintenance and back, as kubectl would, and waits for the operator to
// write the audit entries.
func changePayments(env *operatortest.Env) error {
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		return err
	}
	if err := env.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "alice"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "waygate-edit"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	}); err != nil {
		return err
	}
	alice, err := env.As("alice")
	if err != nil {
		return err
	}
	alice = client.WithFieldOwner(alice, "kubectl")
	rg := &waygatev1.RouteGate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "get-payments"},
		Spec:       waygatev1.RouteGateSpec{Route: "GET:/payments", Service: "payments", State: waygatev1.RouteActive},
	}
	for deadline := time.Now().Add(10 * time.Second); ; { // RBAC caches take a moment to see the binding
		if err = alice.Create(ctx, rg); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	for _, change := range []struct {
		state  waygatev1.RouteState
		reason string
	}{{waygatev1.RouteMaintenance, "Database migration"}, {waygatev1.RouteActive, ""}} {
		patch := client.MergeFrom(rg.DeepCopy())
		rg.Spec.State, rg.Spec.Reason = change.state, change.reason
		if err := alice.Patch(ctx, rg, patch); err != nil {
			return err
		}
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if entries, err := audit.GetAuditLog(ctx, env.Client, "shop", "GET:/payments", 20); err == nil && len(entries) == 3 {
			return nil
		}
	}
	return fmt.Errorf("the operator did not write the three entries of GET:/payments")
}

// The last 20 entries of a route, newest first, as a program outside
// Waygate reads them.
func Example() {
	scheme := runtime.NewScheme()
	if err := waygatev1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		panic(err)
	}
	entries, err := audit.GetAuditLog(context.Background(), c, "shop", "GET:/payments", 20)
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		s := e.Spec
		fmt.Printf("%s %s %s: %q → %q %q\n", s.Actor, s.Platform, s.Action, s.OldStatus, s.NewStatus, s.Reason)
	}
	// Output:
	// alice kubectl maintenance_off: "maintenance" → "active" ""
	// alice kubectl maintenance_on: "active" → "maintenance" "Database migration"
	// alice kubectl route_created: "" → "active" ""
}
