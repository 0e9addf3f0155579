package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/hack/internal/cputime"
	"github.com/waygate-dev/waygate/hack/internal/parallel"
	"github.com/waygate-dev/waygate/hack/internal/procmem"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// scale measures the gate and the operator with routes RouteGates and a
// tenth as many RateLimitPolicies over namespaces namespaces (`make
// bench-scale`): their memory (with -profile, their heap profiles), apply → enforced at rest and during a bulk
// update, what a bulk update costs the gate (snapshots, namespaces
// compiled, CPU), and forward-auth against the same nginx ceiling at 200
// routes and at routes.
func (b *bench) scale(ctx context.Context, cp *controlplane.ControlPlane, op *controlplane.Operator, g *controlplane.Gate, nginxAddr string, nginxPid int,
	d time.Duration, routes, namespaces, changes, bulk int, pprof [2]string) error {
	// memory reads the gate's and the operator's resident memory, and
	// prints it (and the peaks) unless when is "".
	memory := func(when string) (gateRSS, opRSS int64, err error) {
		gateRSS, gatePeak, err := procmem.Read(g.Pid)
		if err != nil {
			return 0, 0, err
		}
		opRSS, opPeak, err := procmem.Read(op.Pid)
		if err != nil {
			return 0, 0, err
		}
		if when != "" {
			fmt.Printf("%s: gate RSS %d MiB (peak %d), operator RSS %d MiB (peak %d)\n", when, gateRSS>>20, gatePeak>>20, opRSS>>20, opPeak>>20)
		}
		return gateRSS, opRSS, nil
	}
	fmt.Printf("scale: %d RouteGates and %d RateLimitPolicies over %d namespaces\n", routes, routes/10, namespaces)
	operator := new(cputime.Meter).Add("operator", op.Pid)
	// Forward-auth is measured on a quiet machine: the API server, etcd
	// and the operator done with the last burst.
	quiet := new(cputime.Meter).Add("operator", op.Pid)
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if err := quiet.AddBinary(bin, filepath.Join(controlplane.AssetsDir(cp.Root), bin)); err != nil {
			return err
		}
	}
	settle(g)
	idle(quiet) // the operator's first writes of the 201 routes too
	small, smallShare, err := forwardAuthRate(d, g, nginxAddr, nginxPid)
	if err != nil {
		return err
	}
	// The footprint the routes are counted from: after a forward-auth run,
	// whose connections the gate keeps buffers for.
	gateRSS0, opRSS0, err := memory("with 201 routes")
	if err != nil {
		return err
	}

	start := time.Now()
	for n := range namespaces {
		if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("scale-", n)}}); err != nil {
			return err
		}
	}
	if err := parallel.Do(ctx, 8, routes+routes/10, func(i int) error {
		ns := fmt.Sprint("scale-", i%namespaces)
		if i >= routes {
			j := i - routes
			return cp.Client.Create(ctx, &waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprint("p", j)},
				Spec: waygatev1.RateLimitPolicySpec{Route: waygatev1.RouteKey(fmt.Sprintf("GET:/api/r%d", j)), Service: "api", Limit: "100/second", Enabled: true}})
		}
		path := fmt.Sprintf("/api/r%d", i)
		if i%10 == 0 {
			path += "/{id}"
		}
		return cp.Client.Create(ctx, &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprint("r", i)},
			Spec: waygatev1.RouteGateSpec{Route: waygatev1.RouteKey("GET:" + path), Service: "api", State: waygatev1.RouteActive}})
	}); err != nil {
		return err
	}
	fmt.Printf("created in %s (%.0f objects/s)\n", time.Since(start).Round(time.Second), float64(routes+routes/10)/time.Since(start).Seconds())
	// The operator writes every object's status and audit entry; the gate
	// has them all once it enforces the last one.
	if err := waitObjects(g, routes+routes/10+202, 15*time.Minute); err != nil {
		return err
	}
	settle(g)
	fmt.Printf("the gate enforces them all after %s\n", time.Since(start).Round(time.Second))
	idle(operator)
	fmt.Printf("the operator has recorded and reconciled them all after %s\n", time.Since(start).Round(time.Second))
	if _, _, err := memory(fmt.Sprintf("with %d routes, just after", routes+201)); err != nil {
		return err
	}
	// What the burst left, the Go runtime gives back to the system over
	// a minute or two: resident memory is read once it stops falling.
	var gateRSS, opRSS int64
	for deadline, last := time.Now().Add(3*time.Minute), int64(0); ; time.Sleep(15 * time.Second) {
		if gateRSS, opRSS, err = memory(""); err != nil {
			return err
		}
		if last != 0 && gateRSS+opRSS > last-last/100 || time.Now().After(deadline) {
			break
		}
		last = gateRSS + opRSS
	}
	fmt.Printf("with %d routes, settled: gate RSS %d MiB, operator RSS %d MiB\n", routes+201, gateRSS>>20, opRSS>>20)
	heapProfile(pprof[0], "gate")
	heapProfile(pprof[1], "operator")
	fmt.Printf("  per RouteGate above the 201-route footprint: gate %.2f KiB (target <= 1.5), operator %.2f KiB (target <= 2)\n",
		float64(gateRSS-gateRSS0)/1024/float64(routes), float64(opRSS-opRSS0)/1024/float64(routes))

	lat, err := applyToEnforced(ctx, cp.Client, g, changes)
	if err != nil {
		return err
	}
	fmt.Printf("apply → enforced at rest, %d changes: %s (target p99 <= 50ms)\n", len(lat), percentiles(lat))

	// A bulk update (a GitOps sync) of bulk objects across every namespace,
	// and apply → enforced while it runs.
	builds, compiled := metricValue(g, "waygate_gate_snapshot_builds_total"), metricValue(g, "waygate_gate_snapshot_namespaces_compiled_total")
	cpu := new(cputime.Meter).Add("gate", g.Pid).Add("operator", op.Pid)
	before := cpu.Sample()
	var updated atomic.Int64
	var wg sync.WaitGroup
	bulkCtx, stopBulk := context.WithCancel(ctx)
	defer stopBulk()
	bulkStart := time.Now()
	wg.Go(func() {
		_ = parallel.Do(bulkCtx, 8, bulk, func(i int) error {
			j := (i * (routes / bulk)) % routes
			patch := fmt.Sprintf(`{"spec":{"reason":"bulk %d"}}`, i)
			rg := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprint("scale-", j%namespaces), Name: fmt.Sprint("r", j)}}
			if err := cp.Client.Patch(bulkCtx, rg, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
				return err
			}
			updated.Add(1)
			return nil
		})
	})
	lat, err = applyToEnforced(ctx, cp.Client, g, changes)
	wg.Wait()
	bulkTook := time.Since(bulkStart)
	if err != nil {
		return err
	}
	fmt.Printf("apply → enforced during a bulk update of %d RouteGates (%s, %.0f/s): %s (target p99 <= 250ms)\n",
		updated.Load(), bulkTook.Round(time.Second), float64(updated.Load())/bulkTook.Seconds(), percentiles(lat))
	settle(g)
	idle(operator)
	n := updated.Load() + int64(changes)
	fmt.Printf("  the gate built %.0f snapshots compiling %.0f namespaces for %d changes; per change: %s\n",
		metricValue(g, "waygate_gate_snapshot_builds_total")-builds, metricValue(g, "waygate_gate_snapshot_namespaces_compiled_total")-compiled, n,
		cpu.Since(before, n).Format(time.Microsecond, "µs"))

	idle(quiet)
	large, largeShare, err := forwardAuthRate(d, g, nginxAddr, nginxPid)
	if err != nil {
		return err
	}
	// The ceiling moves with what else the machine does: the shares of it
	// compare the gate with itself.
	fmt.Printf("forward-auth at %d routes / at 201 routes: %.2f of the ceiling / %.2f: %.2f (target >= 0.9; req/s %.2f)\n",
		routes+201, largeShare, smallShare, largeShare/smallShare, large/small)
	return nil
}

// forwardAuthRate is the gate's allowed forward-auth requests per second
// with 64 connections, and its share of nginx's static 200s measured just
// before (printed).
func forwardAuthRate(d time.Duration, g *controlplane.Gate, nginxAddr string, nginxPid int) (rps, share float64, err error) {
	ceiling, err := measure(d, 64, target{url: "http://" + nginxAddr + "/"}, new(cputime.Meter).Add("nginx", nginxPid))
	if err != nil {
		return 0, 0, err
	}
	r, err := measure(d, 64, check(g, "/api/v1/resource150/42"), new(cputime.Meter).Add("gate", g.Pid))
	if err != nil {
		return 0, 0, err
	}
	fmt.Printf("  forward-auth, wrk -t2 -c64, %s: gate %.0f req/s (p99 %s), nginx static 200 %.0f req/s: %.2f of the ceiling\n",
		d, r.rps, r.p99, ceiling.rps, r.rps/ceiling.rps)
	return r.rps, r.rps / ceiling.rps, nil
}

// waitObjects waits until g's snapshot holds n objects.
func waitObjects(g *controlplane.Gate, n int, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(time.Second) {
		if metricValue(g, "waygate_gate_snapshot_objects") >= float64(n) {
			return nil
		}
	}
	return fmt.Errorf("the gate's snapshot holds %.0f objects after %s, want %d", metricValue(g, "waygate_gate_snapshot_objects"), timeout, n)
}

// settle waits until g has built no snapshot for two seconds (the operator
// is done writing), five minutes at most.
func settle(g *controlplane.Gate) {
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
		b := metricValue(g, "waygate_gate_snapshot_builds_total")
		time.Sleep(2 * time.Second)
		if metricValue(g, "waygate_gate_snapshot_builds_total") == b {
			return
		}
	}
}

// idle waits until the processes of m use less than a tenth of a core
// over two seconds (the operator has worked through its queue), 20 minutes
// at most.
func idle(m *cputime.Meter) {
	for deadline := time.Now().Add(20 * time.Minute); time.Now().Before(deadline); {
		before := m.Sample()
		time.Sleep(2 * time.Second)
		if m.Since(before, 1).Total() < 200*time.Millisecond {
			return
		}
	}
}

// metricValue reads one sample of g's metrics (0 when it has none).
func metricValue(g *controlplane.Gate, sample string) float64 {
	resp, err := http.Get("http://" + g.Metrics + "/metrics")
	if err != nil {
		return 0
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// percentiles says p50, p99 and the slowest of lat.
func percentiles(lat []time.Duration) string {
	slices.Sort(lat)
	return fmt.Sprintf("p50 %s, p99 %s, max %s", pct(lat, 50).Round(time.Microsecond), pct(lat, 99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
}
