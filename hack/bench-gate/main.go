// Command bench-gate measures the gate (`make bench-gate`): forward-auth
// requests per second and p99 with wrk against the gate and, in the same
// run, against nginx answering a static 200 (the ceiling); rate-limited
// decisions with counters in Redis against counters in memory; and the time
// from the API server accepting a change to the gate answering with the new
// decision; and OFREP flag evaluations, single and bulk (`make bench-flags`
// runs that phase). Everything runs on this machine's loopback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/hack/internal/cputime"
	"github.com/waygate-dev/waygate/internal/controlplane"
	"github.com/waygate-dev/waygate/internal/realservers"
)

func main() {
	manager := flag.String("manager", "bin/manager", "Path of the operator binary.")
	gateBin := flag.String("gate", "bin/gate", "Path of the gate binary.")
	duration := flag.Duration("duration", 10*time.Second, "How long each wrk run lasts.")
	changes := flag.Int("changes", 100, "State changes for the apply-to-enforced measurement.")
	phases := flag.String("phases", "forward-auth,rate-limit,apply,ofrep", "The measurements to make, comma-separated (scale, which make bench-scale runs, is not among the defaults).")
	flag.IntVar(&scaleRoutes, "routes", 50000, "RouteGates the scale phase creates (and a tenth as many RateLimitPolicies).")
	flag.IntVar(&scaleNamespaces, "namespaces", 500, "Namespaces the scale phase spreads them over.")
	flag.IntVar(&scaleBulk, "bulk", 5000, "RouteGates the scale phase's bulk update changes.")
	flag.StringVar(&profileDir, "profile", "", "Write CPU profiles of the gates during the rate-limited runs to this directory.")
	flag.Parse()
	b := &bench{dir: must(os.MkdirTemp("", "bench-gate"))}
	defer b.cleanup()
	b.phases = map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		b.phases[strings.TrimSpace(p)] = true
	}
	if err := b.run(*manager, *gateBin, *duration, *changes); err != nil {
		fmt.Fprintln(os.Stderr, "bench-gate:", err)
		b.cleanup()
		os.Exit(1)
	}
}

const ns = "bench"

// profileDir, when set, receives CPU profiles of the rate-limited runs.
var profileDir string

// The scale phase's sizes.
var scaleRoutes, scaleNamespaces, scaleBulk int

func (b *bench) run(manager, gateBin string, d time.Duration, changes int) error {
	ctx := context.Background()
	cp, err := controlplane.Start()
	if err != nil {
		return err
	}
	b.Cleanup(func() { _ = cp.Stop() })
	opPprof := realservers.FreeAddr(b)
	op, err := cp.StartOperator(ctx, manager, b.dir, "--pprof-bind-address", opPprof)
	if err != nil {
		return err
	}
	b.Cleanup(op.Stop)
	if err := setUp(ctx, cp.Client); err != nil {
		return err
	}
	redis := realservers.Redis(b)
	pprof := [2]string{realservers.FreeAddr(b), realservers.FreeAddr(b)}
	mem, err := cp.StartGate(ctx, gateBin, b.dir, "gate-memory", "", "--pprof-bind-address", pprof[0])
	if err != nil {
		return err
	}
	b.Cleanup(mem.Stop)
	shared, err := cp.StartGate(ctx, gateBin, b.dir, "gate-redis", "", "--redis-url", "redis://"+redis.Addr+"/0", "--pprof-bind-address", pprof[1])
	if err != nil {
		return err
	}
	b.Cleanup(shared.Stop)
	nginxAddr := realservers.FreeAddr(b)
	nginx := realservers.Nginx(b, nginxAddr, "server { listen "+nginxAddr+"; location / { return 200; } }")
	for _, g := range []*controlplane.Gate{mem, shared} {
		if err := waitAllowed(g); err != nil {
			return err
		}
	}

	if b.phases["forward-auth"] {
		if err := forwardAuth(d, mem, nginxAddr, nginx.Pid()); err != nil {
			return err
		}
	}
	if b.phases["rate-limit"] {
		if err := rateLimited(d, mem, shared, redis.Pid(), pprof); err != nil {
			return err
		}
	}
	if b.phases["apply"] {
		lat, err := applyToEnforced(ctx, cp.Client, mem, changes)
		if err != nil {
			return err
		}
		fmt.Printf("\napply → enforced, %d state changes: %s\n", len(lat), percentiles(lat))
	}
	if b.phases["scale"] {
		shared.Stop() // the scale phase measures one gate
		if err := b.scale(ctx, cp, op, mem, nginxAddr, nginx.Pid(), d, scaleRoutes, scaleNamespaces, changes, scaleBulk, [2]string{pprof[0], opPprof}); err != nil {
			return err
		}
	}
	if b.phases["ofrep"] {
		return b.ofrep(ctx, cp.Client, mem, d)
	}
	return nil
}

// forwardAuth compares the gate's forward-auth answers with nginx's static
// 200s.
func forwardAuth(d time.Duration, mem *controlplane.Gate, nginxAddr string, nginxPid int) error {
	fmt.Printf("forward-auth, wrk -t2, %s per run (an allowed request to a gated namespace with 200 routes)\n", d)
	fmt.Printf("%-28s %6s %12s %10s\n", "target", "conns", "requests/s", "p99")
	for _, conns := range []int{16, 64} {
		ceiling, err := measure(d, conns, target{url: "http://" + nginxAddr + "/"}, new(cputime.Meter).Add("nginx", nginxPid))
		if err != nil {
			return err
		}
		gate, err := measure(d, conns, check(mem, "/api/v1/resource150/42"), new(cputime.Meter).Add("gate", mem.Pid))
		if err != nil {
			return err
		}
		fmt.Printf("%-28s %6d %12.0f %10s   %s\n", "nginx static 200 (ceiling)", conns, ceiling.rps, ceiling.p99, ceiling.cpu)
		fmt.Printf("%-28s %6d %12.0f %10s   %s\n", "gate, allowed", conns, gate.rps, gate.p99, gate.cpu)
		fmt.Printf("%-28s %6d %12.2f\n", "gate / nginx", conns, gate.rps/ceiling.rps)
	}
	return nil
}

// rateLimited compares counting in Redis with counting in memory.
func rateLimited(d time.Duration, mem, shared *controlplane.Gate, redisPid int, pprof [2]string) error {

	// Two rounds, alternating, as rates on a machine this small vary from
	// run to run by a tenth or more.
	fmt.Printf("\nrate-limited decisions (token bucket, per client address), wrk -t2 -c64, %s per run\n", d)
	var sums [2]float64
	for round := range 2 {
		for i, c := range []struct {
			name string
			g    *controlplane.Gate
			m    *cputime.Meter
		}{{"counters in memory", mem, new(cputime.Meter).Add("gate", mem.Pid)}, {"counters in Redis", shared, new(cputime.Meter).Add("gate", shared.Pid).Add("redis", redisPid)}} {
			stopProfile := func() {}
			if round == 0 {
				stopProfile = profile(pprof[i], c.name, d)
			}
			r, err := measure(d, 64, check(c.g, "/api/v1/limited"), c.m)
			stopProfile()
			if err != nil {
				return err
			}
			sums[i] += r.rps
			fmt.Printf("%-20s %8.0f req/s  p99 %-8s  %s\n", c.name, r.rps, r.p99, r.cpu)
		}
	}
	fmt.Printf("%-20s %8.2f (both rounds)\n", "Redis / memory", sums[1]/sums[0])
	return nil
}

// setUp creates a namespace like a busy service's: 200 gated routes (a
// tenth of them templates), a route in maintenance and a rate-limited one.
func setUp(ctx context.Context, c client.Client) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	for i := range 200 {
		path := fmt.Sprintf("/api/v1/resource%d", i)
		if i%10 == 0 {
			path += "/{id}"
		}
		rg := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprint("r", i)},
			Spec: waygatev1.RouteGateSpec{Route: waygatev1.RouteKey("GET:" + path), Service: "api", State: waygatev1.RouteActive}}
		if err := c.Create(ctx, rg); err != nil {
			return err
		}
	}
	toggled := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "toggled"},
		Spec: waygatev1.RouteGateSpec{Route: "GET:/api/v1/toggled", Service: "api", State: waygatev1.RouteActive}}
	if err := c.Create(ctx, toggled); err != nil {
		return err
	}
	return c.Create(ctx, &waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "limited"},
		Spec: waygatev1.RateLimitPolicySpec{Route: "GET:/api/v1/limited", Service: "api", Limit: "1000000000/second",
			Algorithm: waygatev1.TokenBucket, KeyStrategy: waygatev1.KeyByIP, Enabled: true}})
}

// target is what wrk sends requests to: a URL, with wrk arguments (headers,
// a script).
type target struct {
	url  string
	args []string
}

// check is the forward-auth request for GET uri to g.
func check(g *controlplane.Gate, uri string) target {
	return target{url: checkURL(g), args: []string{"-H", "X-Forwarded-Method: GET", "-H", "X-Forwarded-Uri: " + uri}}
}

func checkURL(g *controlplane.Gate) string { return "http://" + g.HTTP + "/v1/check/" + ns + "/api" }

// waitAllowed waits until g has the rate limit (its snapshot is complete).
func waitAllowed(g *controlplane.Gate) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, h, err := ask(checkURL(g), "/api/v1/limited"); err == nil && h.Get("X-RateLimit-Limit") != "" {
			return nil
		}
	}
	return errors.New("the gate did not see the rate limit within 30s")
}

// ask asks the gate at url about GET uri, as a gateway would.
func ask(url, uri string) (int, http.Header, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", uri)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

type wrkResult struct {
	rps float64
	p99 string
	// cpu is what a request cost each process, wrk included.
	cpu string
}

// measure runs wrk (see wrk) and says what a request cost the processes
// m meters and wrk.
func measure(d time.Duration, conns int, t target, m *cputime.Meter) (wrkResult, error) {
	before := m.Sample()
	r, used, err := wrk(d, conns, t)
	if err != nil {
		return r, err
	}
	cost := m.Since(before, int64(r.rps*d.Seconds()))
	cost.Add("wrk", used)
	r.cpu = cost.Format(time.Microsecond, "µs")
	return r, nil
}

var (
	rpsLine = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p99Line = regexp.MustCompile(`\s99%\s+(\S+)`)
	non2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// wrk runs wrk against t, and returns the CPU it used.
func wrk(d time.Duration, conns int, t target) (wrkResult, time.Duration, error) {
	args := append([]string{"-t2", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(d.Seconds())), "--latency"}, t.args...)
	cmd := exec.Command("wrk", append(args, t.url)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, 0, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	used := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if m := non2xx.FindSubmatch(out); m != nil {
		return wrkResult{}, 0, fmt.Errorf("wrk got %s refusals from %s:\n%s", m[1], t.url, out)
	}
	r, p := rpsLine.FindSubmatch(out), p99Line.FindSubmatch(out)
	if r == nil || p == nil {
		return wrkResult{}, 0, fmt.Errorf("unexpected wrk output:\n%s", out)
	}
	rps, _ := strconv.ParseFloat(string(r[1]), 64)
	return wrkResult{rps: rps, p99: string(p[1])}, used, nil
}

// applyToEnforced flips a route between maintenance and active n times and
// measures, for each change, the time from the API server accepting it to
// the gate answering with the new decision (polled every 200 µs).
func applyToEnforced(ctx context.Context, c client.Client, g *controlplane.Gate, n int) ([]time.Duration, error) {
	url, uri := checkURL(g), "/api/v1/toggled"
	rg := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "toggled"}}
	var lat []time.Duration
	for i := range n {
		state, want := waygatev1.RouteMaintenance, http.StatusServiceUnavailable
		if i%2 == 1 {
			state, want = waygatev1.RouteActive, http.StatusOK
		}
		// As kubectl patch writes it: no resourceVersion, so the
		// operator's own writes do not conflict with it. While the operator
		// is far behind, the journal is full and the change is refused for
		// a moment (429).
		patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"state":%q}}`, state))
		if err := retry.OnError(wait.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: 12, Cap: time.Second}, apierrors.IsTooManyRequests, func() error {
			return c.Patch(ctx, rg, patch)
		}); err != nil {
			return nil, err
		}
		accepted := time.Now()
		for {
			status, _, err := ask(url, uri)
			if err != nil {
				return nil, err
			}
			if status == want {
				lat = append(lat, time.Since(accepted))
				break
			}
			if time.Since(accepted) > 10*time.Second {
				return nil, fmt.Errorf("change %d not enforced after 10s", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	return lat, nil
}

// heapProfile writes the heap profile of the process whose pprof endpoint
// is at addr into profileDir/<name>.heap.pprof (nothing without -profile).
func heapProfile(addr, name string) {
	if profileDir != "" {
		saveProfile("http://"+addr+"/debug/pprof/heap?gc=1", name+".heap.pprof")
	}
}

// profile takes a CPU profile of the gate whose pprof endpoint is at addr
// for most of d into profileDir/<name>.pprof, spaces made dashes (nothing
// without -profile); the function it returns waits for it.
func profile(addr, name string, d time.Duration) func() {
	if profileDir == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		saveProfile(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(int(d.Seconds())-1, 1)), strings.ReplaceAll(name, " ", "-")+".pprof")
	}()
	return func() { <-done }
}

// saveProfile writes what url answers into profileDir/file, saying on
// stderr why it could not.
func saveProfile(url, file string) {
	resp, err := http.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	f, err := os.Create(filepath.Join(profileDir, file))
	if err == nil {
		_, err = io.Copy(f, resp.Body)
		_ = f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
	}
}

func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[min(len(sorted)*p/100, len(sorted)-1)]
}

// bench is the realservers.T of a program: a failure ends it, after the
// cleanups.
type bench struct {
	dir      string
	cleanups []func()
	phases   map[string]bool
}

func (b *bench) Helper()                   {}
func (b *bench) TempDir() string           { return must(os.MkdirTemp(b.dir, "")) }
func (b *bench) Cleanup(f func())          { b.cleanups = append(b.cleanups, f) }
func (b *bench) Fatal(args ...any)         { b.fail(fmt.Sprint(args...)) }
func (b *bench) Fatalf(f string, a ...any) { b.fail(fmt.Sprintf(f, a...)) }

func (b *bench) fail(msg string) {
	fmt.Fprintln(os.Stderr, "bench-gate:", msg)
	b.cleanup()
	os.Exit(1)
}

func (b *bench) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
	_ = os.RemoveAll(b.dir)
}

func must[T any](v T, err error) T {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-gate:", err)
		os.Exit(1)
	}
	return v
}
