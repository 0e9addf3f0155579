package controllers_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// One control plane and one operator for the whole package; each test works
// in its own namespace.
var (
	env *operatortest.Env
	k8s client.Client
	// operator is a client as the operator's service account.
	operator client.Client
	// clk is the operator's clock: tests skip ahead to a window's boundary.
	clk = operatortest.NewClock(context.Background())
)

func TestMain(m *testing.M) {
	os.Exit(operatortest.Run(operatortest.RunInput{
		M: m, Clock: clk,
		// "seeder" may suppress auditing.
		AuditSuppressors: []string{"seeder"},
		Setup: func(e *operatortest.Env) (func(), error) {
			env, k8s = e, e.Client
			var err error
			operator, err = client.New(e.Operator, client.Options{Scheme: controlplane.Scheme})
			return nil, err
		},
	}))
}

// eventually polls cond until it returns nil or the timeout passes.
var eventually = operatortest.Eventually

// readyCondition fetches obj and returns its Ready condition once the
// controller has observed the object's generation.
func readyCondition(obj client.Object, conds func() []metav1.Condition) (*metav1.Condition, error) {
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		return nil, err
	}
	c := meta.FindStatusCondition(conds(), waygatev1.ConditionReady)
	if c == nil || c.ObservedGeneration != obj.GetGeneration() {
		return nil, fmt.Errorf("%s %s: Ready not yet observed for generation %d", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), obj.GetGeneration())
	}
	return c, nil
}

// waitReady waits until obj's Ready condition has status and reason.
func waitReady(t *testing.T, obj client.Object, conds func() []metav1.Condition, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	eventually(t, 20*time.Second, func() error {
		c, err := readyCondition(obj, conds)
		if err != nil {
			return err
		}
		if c.Status != status || c.Reason != reason {
			return fmt.Errorf("%s: Ready=%s reason %s (%s), want Ready=%s reason %s", obj.GetName(), c.Status, c.Reason, c.Message, status, reason)
		}
		got = c
		return nil
	})
	return got
}

// update applies change to the latest version of obj as the admin,
// retrying on conflicts with the controller's writes.
func update[T client.Object](t *testing.T, obj T, change func(T)) {
	t.Helper()
	updateAs(t, k8s, obj, change)
}

// updateAs is update as the user of c, with opts (client.DryRunAll).
func updateAs[T client.Object](t *testing.T, c client.Client, obj T, change func(T), opts ...client.UpdateOption) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		return c.Update(context.Background(), obj, opts...)
	})
	if err != nil {
		t.Fatalf("updating %s: %v", obj.GetName(), err)
	}
}
