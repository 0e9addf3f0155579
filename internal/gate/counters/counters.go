// Package counters keeps rate-limit counters: the algorithms (fixed window,
// sliding window, token bucket) and the stores that hold callers' counters,
// in this process (Memory, for one gate replica) or in Redis (Redis, shared
// exactly by every replica). Both count alike to the microsecond: the Redis
// script mirrors take statement for statement, and one conformance suite
// runs against both.
package counters

import (
	"context"
	"net/netip"
	"time"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// Store keeps the counters of callers against rate limits.
type Store interface {
	// Take counts one request against each check in order and stops at the
	// first that refuses it, whose index it returns (-1 when every check
	// allowed it). results[i] is filled for every check counted. A request
	// refused by a later check still counts against the earlier ones, as
	// it reached them.
	Take(ctx context.Context, now time.Time, checks []Check, results []Result) (refused int, err error)
}

// Check is one rate limit to count a request against.
type Check struct {
	// Policy identifies the counters: a new identity (a reset) starts
	// them afresh.
	Policy string
	// Namespace is where the policy lives. Every check of one decision has
	// the same, so that a shared store can keep a decision's counters
	// together (one Redis Cluster hash slot) and a counter under one key
	// whichever decision counts it.
	Namespace string
	// Caller is the key the request is counted by; CallerAddr when it is the
	// client address or network (kept as an address so that counting
	// allocates nothing). The two never share a counter, whatever the
	// Caller's text.
	Caller     string
	CallerAddr netip.Addr
	Algorithm  waygatev1.RateLimitAlgorithm
	// Count requests are allowed per Period, and Burst more at once.
	Count, Burst int64
	Period       time.Duration
}

// capacity is how many requests a caller may make at once.
func (ch *Check) capacity() int64 { return ch.Count + ch.Burst }

// Result is what a counter says of one request.
type Result struct {
	Allowed bool
	// Remaining is how many more requests would be allowed now.
	Remaining int64
	// Reset is when the counter is back to its full capacity (fixed and
	// sliding windows: the end of the current window).
	Reset time.Time
	// RetryAt is when a refused request would be allowed.
	RetryAt time.Time
}
