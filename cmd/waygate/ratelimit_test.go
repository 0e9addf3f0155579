package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// rl sets, lists, shows, resets and deletes rate limits; each change is
// audited with the user and platform cli, the reset as rl_reset.
func TestRateLimits(t *testing.T) {
	ns := namespace(t)
	golden(t, ns, must(t, "alice", ns, "rl", "set", "GET:/payments", "100/minute"),
		`GET:/payments: 100/minute (fixed_window, ip) (created ratelimitpolicy <ns>/get-payments)`)
	golden(t, ns, must(t, "bob", ns, "rl", "set", "GET:/payments", "200/minute", "--algorithm", "token_bucket", "--burst", "20", "--key", "api_key"),
		`GET:/payments: 100/minute (fixed_window, ip) → 200/minute (token_bucket, api_key, burst 20) (ratelimitpolicy <ns>/get-payments)`)
	must(t, "alice", ns, "rl", "set", "*", "1000/hour", "--service", "orders")
	golden(t, ns, settled(t, ns, "rl", "list"), `
ROUTE  SERVICE  LIMIT  ALGORITHM  KEY  BURST  ENABLED  READY
GET:/payments  -  200/minute  token_bucket  api_key  20  true  True
*  orders  1000/hour  fixed_window  ip  -  true  True`)
	golden(t, ns, must(t, "carol", ns, "rl", "get", "get:/payments"), `
Route:  GET:/payments
Service:  -
Limit:  200/minute
Algorithm:  token_bucket
Key:  api_key
Burst:  20
Enabled:  true
Scope:  route
Ready:  True Resolved: 200/minute per api_key key, token_bucket
RateLimitPolicy:  <ns>/get-payments`)

	golden(t, ns, must(t, "alice", ns, "rl", "reset", "GET:/payments"),
		`GET:/payments: counters reset requested at <time> (ratelimitpolicy <ns>/get-payments)`)
	golden(t, ns, must(t, "bob", ns, "rl", "delete", "GET:/payments"),
		`GET:/payments: 200/minute (token_bucket, api_key, burst 20), deleted (ratelimitpolicy <ns>/get-payments)`)
	eventually(t, 20*time.Second, func() error {
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "get-payments"}, &waygatev1.RateLimitPolicy{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("policy %s still there", "get-payments")
	})
	waitAudit(t, ns, 4, "GET:/payments")
	golden(t, ns, must(t, "carol", ns, "audit", "GET:/payments"), `
TIME  ACTOR  PLATFORM  ACTION  PATH  OLD → NEW  REASON
<time>  bob  cli  rl_policy_deleted  GET:/payments  200/minute → -  -
<time>  alice  cli  rl_reset  GET:/payments  200/minute → 200/minute  -
<time>  bob  cli  rl_policy_updated  GET:/payments  100/minute → 200/minute  -
<time>  alice  cli  rl_policy_created  GET:/payments  - → 100/minute  -`)

	for args, want := range map[string]string{
		"rl set GET:/x 100/fortnight": `the API server refused the change: spec.limit: spec.limit "100/fortnight" is not a limit: write <count>/<unit>`,
		"rl get GET:/paymnts":         "no RateLimitPolicy in namespace <ns> has route GET:/paymnts; `waygate rl list` lists the rate limits",
		"rl delete /orders":           "no RateLimitPolicy in namespace <ns> has route /orders",
	} {
		_, err := waygate(t, "alice", ns, strings.Fields(args)...)
		if err == nil || !strings.HasPrefix(masked(err.Error(), ns), want) {
			t.Errorf("waygate %s: %v\nwant: %s", args, err, want)
		}
	}
}
