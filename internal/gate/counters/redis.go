package counters

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	ctrl "sigs.k8s.io/controller-runtime"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

//go:embed counters.lua
var countersLua string

var countersScript = rueidis.NewLuaScript(countersLua)

// Redis keeps rate-limit counters in Redis, shared exactly by every
// replica: a script call counts all the limits of a decision atomically, in
// Redis's clock, and the decisions that arrive while earlier calls run go
// together in the next (split into calls of at most maxKeysPerCall keys,
// and on a Redis Cluster per namespace, whose counters share a hash slot).
// rueidis pipelines the calls onto a few connections, which measured 1.6 to
// 2.2 times the calls per second of go-redis's one call per pooled
// connection (docs/gate.md).
//
// When Redis does not answer within the timeout the decision fails open (or
// closed), the failure is counted and logged at most every logEvery, and
// the client reconnects by itself.
type Redis struct {
	client atomic.Pointer[rueidis.Client]
	// dialing is set while a connection is tried in the background.
	dialing atomic.Bool
	opt     rueidis.ClientOption
	timeout time.Duration
	metrics Instruments
	// failOpen says, in the log, what becomes of requests meanwhile.
	failOpen string

	// mu guards the queue of decisions waiting for a script call.
	mu       sync.Mutex
	queue    []*waiter
	inFlight int

	// health guards what failed and answered know of Redis.
	health   sync.Mutex
	down     bool
	failures int
	lastLog  time.Time
}

// Instruments are the metrics a Redis store reports to.
type Instruments struct {
	// Errors counts failures to count: a batch of decisions Redis did not
	// answer in time, or a decision before any connection.
	Errors prometheus.Counter
	// Up is 1 while Redis answers, 0 from a failure until it answers again.
	Up prometheus.Gauge
}

// logEvery bounds the log lines about an unreachable Redis.
const logEvery = 10 * time.Second

// NewRedis connects to the Redis at url (redis://[user:password@]host:port[/db],
// rediss:// for TLS). A Redis that is down at start is no error: the gate
// starts, fails open, and connects when Redis comes.
func NewRedis(url string, timeout time.Duration, failClosed bool, m Instruments) (*Redis, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("--redis-url %q: %w", url, err)
	}
	opt.DisableCache = true
	// Waiting 20 µs before a flush lets concurrent decisions share a
	// write and a read.
	opt.MaxFlushDelay = 20 * time.Microsecond
	opt.Dialer.Timeout = timeout
	// Detects a Redis that stopped answering on an open connection.
	opt.ConnWriteTimeout = max(timeout, time.Second)
	rc := &Redis{opt: opt, timeout: timeout, metrics: m, failOpen: "requests with rate limits are let through uncounted"}
	if failClosed {
		rc.failOpen = "requests with rate limits are refused (--fail-closed)"
	}
	if err := rc.dial(); err != nil {
		rc.failed(err)
	}
	return rc, nil
}

func (rc *Redis) dial() error {
	c, err := rueidis.NewClient(rc.opt)
	if err != nil {
		return err
	}
	rc.client.Store(&c)
	return nil
}

var errNoRedis = errors.New("not connected to Redis yet")

// maxInFlight bounds the script calls in flight at once. While they run,
// new decisions queue, and go together in the next call: Redis runs one
// script for many decisions (a script call costs it about 9 µs before any
// counting) and the gate writes and reads once for them.
const maxInFlight = 4

// waiter is one decision waiting for its batch.
type waiter struct {
	now     time.Time
	checks  []Check
	results []Result
	refused int
	err     error
	done    chan struct{}
}

// Take implements Store.
func (rc *Redis) Take(ctx context.Context, now time.Time, checks []Check, results []Result) (int, error) {
	if len(checks) == 0 {
		return -1, nil
	}
	for i := range checks {
		if checks[i].Namespace != checks[0].Namespace {
			// Their keys would span hash slots, which a Redis Cluster
			// refuses (and rueidis panics on).
			return 0, fmt.Errorf("the limits of one decision are of namespaces %q and %q: count each namespace's apart", checks[0].Namespace, checks[i].Namespace)
		}
	}
	c := rc.client.Load()
	if c == nil {
		rc.redial()
		rc.failed(errNoRedis)
		return 0, errNoRedis
	}
	// The waiter owns copies: a caller that gives up must not have its
	// buffers written to later.
	w := &waiter{now: now, checks: append([]Check(nil), checks...), results: make([]Result, len(checks)), done: make(chan struct{})}
	rc.mu.Lock()
	rc.queue = append(rc.queue, w)
	lead := rc.inFlight < maxInFlight
	if lead {
		rc.inFlight++
	}
	rc.mu.Unlock()
	if lead {
		go rc.drain(*c)
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if w.err != nil {
		return 0, w.err
	}
	copy(results, w.results)
	return w.refused, nil
}

// drain runs the queued decisions, a batch at a time, until none are left.
func (rc *Redis) drain(c rueidis.Client) {
	for {
		rc.mu.Lock()
		batch := rc.queue
		rc.queue = nil
		if len(batch) == 0 {
			rc.inFlight--
			rc.mu.Unlock()
			return
		}
		rc.mu.Unlock()
		rc.run(c, batch)
	}
}

// maxKeysPerCall bounds the keys of one script call: Redis runs nothing
// else while a script runs, so a burst of queued decisions is split into
// calls short enough not to hold up other clients of the same Redis.
const maxKeysPerCall = 256

// run decides batch in as few script calls as it may, at once.
func (rc *Redis) run(c rueidis.Client, batch []*waiter) {
	calls := split(batch, c.Mode() == rueidis.ClientModeCluster)
	ctx, cancel := context.WithTimeout(context.Background(), rc.timeout)
	defer cancel()
	errs := make([]error, len(calls))
	if len(calls) == 1 {
		errs[0] = runCall(ctx, c, calls[0])
	} else {
		// Concurrent calls are pipelined, and on a cluster sent to each
		// master at once.
		var wg sync.WaitGroup
		for i, ws := range calls {
			wg.Go(func() { errs[i] = runCall(ctx, c, ws) })
		}
		wg.Wait()
	}
	var failure error
	for i, ws := range calls {
		if errs[i] != nil {
			failure = errs[i]
		}
		for _, w := range ws {
			w.err = errs[i]
			close(w.done)
		}
	}
	if failure != nil {
		rc.failed(failure)
	} else {
		rc.answered()
	}
}

// split divides batch into script calls of at most maxKeysPerCall keys
// (a decision is never divided: its limits are counted atomically) and, on
// a Redis Cluster, of one namespace each, as a script's keys must share a
// hash slot.
func split(batch []*waiter, byNamespace bool) [][]*waiter {
	groups := [][]*waiter{batch}
	if byNamespace {
		groups = groups[:0]
		index := map[string]int{}
		for _, w := range batch {
			ns := w.checks[0].Namespace
			i, ok := index[ns]
			if !ok {
				i = len(groups)
				index[ns] = i
				groups = append(groups, nil)
			}
			groups[i] = append(groups[i], w)
		}
	}
	var calls [][]*waiter
	for _, g := range groups {
		from, keys := 0, 0
		for i, w := range g {
			if keys > 0 && keys+len(w.checks) > maxKeysPerCall {
				calls = append(calls, g[from:i])
				from, keys = i, 0
			}
			keys += len(w.checks)
		}
		calls = append(calls, g[from:])
	}
	return calls
}

// runCall decides ws in one script call.
func runCall(ctx context.Context, c rueidis.Client, ws []*waiter) error {
	keys, args := scriptArgs(ws)
	vals, err := countersScript.Exec(ctx, c, keys, args).AsIntSlice()
	if err != nil {
		return err
	}
	return unpack(vals, ws)
}

// scriptArgs are the keys and arguments of the script call deciding ws.
func scriptArgs(ws []*waiter) (keys, args []string) {
	n := 0
	for _, w := range ws {
		n += len(w.checks)
	}
	keys = make([]string, 0, n)
	args = make([]string, 0, len(ws)+4*n)
	for _, w := range ws {
		args = append(args, strconv.Itoa(len(w.checks)))
		for i := range w.checks {
			ch := &w.checks[i]
			keys = append(keys, counterKey(ch))
			args = append(args, algorithmCode(ch.Algorithm), strconv.FormatInt(ch.Count, 10), strconv.FormatInt(ch.Burst, 10),
				strconv.FormatInt(ch.Period.Microseconds(), 10))
		}
	}
	return keys, args
}

// counterKey names the counter of ch's caller. The namespace is the hash
// tag: a decision's keys share a Redis Cluster slot, and a counter has one
// key whichever decision counts it. "ip:" or "k:" says what the caller is,
// so that no header value names an address's counter.
func counterKey(ch *Check) string {
	ns := ch.Namespace
	if ns == "" {
		// An empty tag ("{}") would hash each whole key apart; "_" is no
		// namespace's name.
		ns = "_"
	}
	if ch.CallerAddr.IsValid() {
		return "waygate:rl:{" + ns + "}:" + ch.Policy + ":ip:" + ch.CallerAddr.String()
	}
	return "waygate:rl:{" + ns + "}:" + ch.Policy + ":k:" + ch.Caller
}

// unpack hands each waiter its results: the script's now, then per
// decision the number of limits counted and four values per limit. Times
// come in Redis's clock and go to each waiter in its own, by their offset
// from the script's now.
func unpack(vals []int64, ws []*waiter) error {
	if len(vals) == 0 {
		return fmt.Errorf("the counters script answered nothing for %d decisions", len(ws))
	}
	redisNow, pos := vals[0], 1
	for _, w := range ws {
		if pos >= len(vals) || vals[pos] < 1 || vals[pos] > int64(len(w.checks)) || pos+1+4*int(vals[pos]) > len(vals) {
			return fmt.Errorf("the counters script answered %d values for %d decisions", len(vals), len(ws))
		}
		at := func(us int64) time.Time { return w.now.Add(time.Duration(us-redisNow) * time.Microsecond) }
		counted := int(vals[pos])
		pos++
		w.refused = -1
		for i := range counted {
			v := vals[pos : pos+4]
			pos += 4
			w.results[i] = Result{Allowed: v[0] == 1, Remaining: v[1], Reset: at(v[2])}
			if !w.results[i].Allowed {
				w.results[i].RetryAt = at(v[3])
				w.refused = i
			}
		}
	}
	return nil
}

func algorithmCode(a waygatev1.RateLimitAlgorithm) string {
	switch a {
	case waygatev1.SlidingWindow:
		return "2"
	case waygatev1.TokenBucket:
		return "3"
	default:
		return "1"
	}
}

// redial connects in the background when the first connection failed.
func (rc *Redis) redial() {
	if !rc.dialing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer rc.dialing.Store(false)
		if err := rc.dial(); err != nil {
			time.Sleep(time.Second) // one attempt a second at most
		}
	}()
}

// failed records a failure: the metric, and a log line when the store goes
// down and then at most every logEvery.
func (rc *Redis) failed(err error) {
	rc.metrics.Errors.Inc()
	rc.metrics.Up.Set(0)
	rc.health.Lock()
	defer rc.health.Unlock()
	rc.failures++
	if !rc.down || time.Since(rc.lastLog) >= logEvery {
		ctrl.Log.WithName("redis").Error(err, "rate-limit counters unavailable: "+rc.failOpen,
			"failures", rc.failures, "address", rc.opt.InitAddress)
		rc.lastLog, rc.failures = time.Now(), 0
	}
	rc.down = true
}

// answered records an answer, and the recovery after failures.
func (rc *Redis) answered() {
	rc.health.Lock()
	defer rc.health.Unlock()
	if rc.down {
		rc.down = false
		rc.metrics.Up.Set(1)
		ctrl.Log.WithName("redis").Info("rate-limit counters available again", "failures since the last log line", rc.failures)
		rc.failures = 0
	}
}

// Close closes the connections.
func (rc *Redis) Close() {
	if c := rc.client.Load(); c != nil {
		(*c).Close()
	}
}
