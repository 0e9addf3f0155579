package counters

import (
	"math"
	"time"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// counterState is one caller's counter. Its fields mean, per algorithm:
// fixed_window: a is the window's index, b its count; sliding_window: a the
// window's index, b its count, c the previous window's count; token_bucket:
// a the time of the last refill, c the tokens left. Times are Unix
// microseconds, as in Redis, where Lua's numbers (doubles) hold them exactly.
type counterState struct {
	a, b int64
	c    float64
	// expires is when the counter is worth nothing more than a new one.
	expires int64
	// exhausted says that the last request counted was refused or used
	// what remained: forgetting such a counter would let its caller start
	// afresh, so the memory store evicts it last.
	exhausted bool
}

// take counts one request against st at now (Unix µs), as the algorithm of
// ch says. A zero st is a new counter. The Redis script
// (counters.lua) does the same arithmetic in the same
// order, so both stores answer alike to the microsecond; the counter tests
// run both.
func take(ch *Check, st *counterState, now int64) Result {
	period := ch.Period.Microseconds()
	capacity := ch.capacity()
	switch ch.Algorithm {
	case waygatev1.TokenBucket:
		perUs := float64(ch.Count) / float64(period) // refill rate in tokens per µs
		tokens := float64(capacity)
		if st.expires != 0 {
			tokens = math.Min(float64(capacity), st.c+float64(max(now-st.a, 0))*perUs)
		}
		r := Result{}
		if tokens >= 1 {
			tokens--
			r.Allowed = true
		} else {
			r.RetryAt = time.UnixMicro(now + ceilUs((1-tokens)/perUs))
		}
		full := now + ceilUs((float64(capacity)-tokens)/perUs)
		st.a, st.c, st.expires = now, tokens, full
		r.Remaining = int64(tokens)
		r.Reset = time.UnixMicro(full)
		return r
	case waygatev1.SlidingWindow:
		idx := now / period
		switch {
		case st.expires == 0 || idx > st.a+1:
			st.b, st.c = 0, 0
		case idx == st.a+1:
			st.b, st.c = 0, float64(st.b)
		}
		st.a = idx
		start := idx * period
		weight := 1 - float64(now-start)/float64(period)
		used := st.c*weight + float64(st.b)
		r := Result{Reset: time.UnixMicro(start + period)}
		if used+1 <= float64(capacity) {
			st.b++
			used++
			r.Allowed = true
		} else {
			r.RetryAt = slidingRetry(st, capacity, start, period)
		}
		st.expires = start + 2*period
		r.Remaining = max(int64(float64(capacity)-used), 0)
		return r
	default: // fixed_window
		idx := now / period
		if st.expires == 0 || st.a != idx {
			st.a, st.b = idx, 0
		}
		end := (idx + 1) * period
		st.expires = end
		r := Result{Reset: time.UnixMicro(end)}
		if st.b < capacity {
			st.b++
			r.Allowed = true
		} else {
			r.RetryAt = r.Reset
		}
		r.Remaining = capacity - st.b
		return r
	}
}

// slidingRetry is when a sliding window that refused a request will allow
// one: when the previous window's weighted count has decayed enough, in
// this window or the next.
func slidingRetry(st *counterState, capacity, start, period int64) time.Time {
	room := float64(capacity - 1 - st.b)
	prev, from := st.c, start
	if room < 0 {
		// This window alone is full: wait for the next, where it is the
		// previous window.
		room, prev, from = float64(capacity-1), float64(st.b), start+period
	}
	if prev <= room {
		return time.UnixMicro(from)
	}
	return time.UnixMicro(from + ceilUs(float64(period)*(1-room/prev)))
}

// ceilUs rounds a time in microseconds up, forgiving the float error of a
// thousandth of one (so 400000.00000000006 µs is 400000).
func ceilUs(us float64) int64 { return int64(math.Ceil(us - 1e-3)) }
