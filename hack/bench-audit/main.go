// Command bench-audit measures the audit pipeline on the embedded control
// plane with the operator binary running as it does in `make run`, and prints
// the figures `make bench-audit` reports:
//
//   - the API server's write rates: ConfigMap updates, AuditEntry creates,
//     and plain custom-resource patches (no webhook, no controller), the
//     ceiling; the same patches through a webhook that allows them unchanged
//     (what calling a webhook costs);
//   - RouteGate changes made with the operator's identity, which are not
//     audited but still have their status computed (what the kind and its
//     controller cost);
//   - the sustained rate of audited changes (RouteGate updates until their
//     entries exist), which should be at least a third of the ceiling, as a
//     change costs three writes (the change, the entry, the status);
//   - for both RouteGate runs, the API requests each change caused, from the
//     API server's metrics (status writes, webhook calls: a call more than
//     one a change is a patch the API server retried).
//   - p50 and p99 latency from a change being accepted to its AuditEntry
//     existing, at 20 changes a second, and entries lost (must be 0);
//   - the operator's resident memory with 5,000 RouteGates and 50,000
//     AuditEntries present;
//   - reading the newest entries (and older pages) with 50,000 present;
//   - the dashboard's Audit and Routes pages, and its memory, with as many.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/hack/internal/cputime"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

func main() {
	ctrl.SetLogger(zap.New())
	manager := flag.String("manager", "bin/manager", "Path of the operator binary.")
	workers := flag.Int("workers", 8, "Concurrent writers for the throughput runs.")
	duration := flag.Duration("duration", 10*time.Second, "Length of each throughput run.")
	gates := flag.Int("routegates", 5000, "RouteGates present for the memory figure.")
	entries := flag.Int("entries", 50000, "AuditEntries present for the memory figure.")
	profile := flag.String("profile", "", "Write CPU profiles of the API server and the operator, taken during the audited run, to this directory.")
	phaseList := flag.String("phases", "throughput,latency,memory,log,dashboard", "The phases to run, comma-separated: throughput, latency, memory, log (reading the log with that many entries present), dashboard (its pages with as many present).")
	flag.StringVar(&waygateBin, "waygate", "bin/waygate", "Path of the CLI binary, for the log phase.")
	flag.Parse()
	phases := map[string]bool{}
	for _, p := range strings.Split(*phaseList, ",") {
		phases[strings.TrimSpace(p)] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, phases, *manager, *workers, *duration, *gates, *entries, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "bench-audit:", err)
		os.Exit(1)
	}
}

// waygateBin is the CLI the log phase times.
var waygateBin string

func run(ctx context.Context, phases map[string]bool, manager string, workers int, duration time.Duration, gates, entries int, profile string) error {
	cp, err := controlplane.Start()
	if err != nil {
		return err
	}
	defer func() { _ = cp.Stop() }()
	dir := filepath.Join(cp.Root, "bin", "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Nothing is pruned by count during the run; age-based retention still
	// pages through every entry, as it does in production.
	pprofAddr := "127.0.0.1:6065"
	op, err := cp.StartOperator(ctx, manager, dir, "--audit-max-entries=0", "--pprof-bind-address="+pprofAddr)
	if err != nil {
		return err
	}
	defer op.Stop()
	c := cp.Client
	for _, ns := range []string{"bench-raw", "bench-unaudited", "bench-rate", "bench-latency", "bench-memory"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	fmt.Printf("bench-audit: %d workers, %s per run, operator log %s\n", workers, duration, op.Log)
	// The control plane, the operator and this process.
	cpu := &cputime.Meter{}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if err := cpu.AddBinary(bin, filepath.Join(controlplane.AssetsDir(cp.Root), bin)); err != nil {
			return err
		}
	}
	cpu.Add("operator", op.Pid)
	cpu.Add("bench", os.Getpid())

	if phases["throughput"] {
		before := cpu.Sample()
		raw, err := rawRate(ctx, c, workers, duration)
		if err != nil {
			return err
		}
		fmt.Printf("raw API server writes (ConfigMap updates):   %7.1f /s\n", raw)
		cost := cpu.Since(before, int64(raw*duration.Seconds()))
		rawCost := cost.Total()
		fmt.Printf("  %s\n", cost.Format(time.Millisecond, "ms"))
		before = cpu.Sample()
		crd, err := crdRate(ctx, cp, workers, duration)
		if err != nil {
			return err
		}
		fmt.Printf("  for comparison, AuditEntry creates (a CRD, no webhook): %.1f /s\n", crd)
		cost = cpu.Since(before, int64(crd*duration.Seconds()))
		crdCost := cost.Total()
		fmt.Printf("  %s\n", cost.Format(time.Millisecond, "ms"))
		// The machine's cores are shared by all processes, so rates follow the
		// CPU an operation costs in total.
		fmt.Printf("  a custom-resource write costs %.1fx a ConfigMap update: at three such writes a change (the change, its entry, the status), audited/raw is at most %.2f\n",
			float64(crdCost)/float64(rawCost), float64(rawCost)/float64(3*crdCost))
		// The ceiling of the audit issue: custom-resource patches of a
		// change's size, with no webhook and no controller.
		if err := plainCRD(ctx, cp); err != nil {
			return err
		}
		before = cpu.Sample()
		patches, err := crPatchRate(ctx, cp, "plain", workers, duration)
		if err != nil {
			return err
		}
		fmt.Printf("plain custom-resource patches (no webhook, no controller): %7.1f /s\n", patches)
		fmt.Printf("  %s\n", cpu.Since(before, int64(patches*duration.Seconds())).Format(time.Millisecond, "ms"))
		// What calling any webhook costs: the same patches through one that
		// allows them unchanged.
		if err := allowingWebhook(ctx, cp); err != nil {
			return err
		}
		before = cpu.Sample()
		allowed, err := crPatchRate(ctx, cp, "allowed", workers, duration)
		if err != nil {
			return err
		}
		allowedCost := cpu.Since(before, int64(allowed*duration.Seconds()))
		fmt.Printf("  the same patches through a webhook that allows them unchanged: %7.1f /s (%.2f of plain)\n", allowed, allowed/patches)
		fmt.Printf("  %s\n", allowedCost.Format(time.Millisecond, "ms"))
		fmt.Printf("  with an AuditEntry create on top of each, audited/plain is at most %.2f\n",
			float64(allowedCost.Total())/float64(allowedCost.Total()+crdCost)*allowed/patches)

		var profiling sync.WaitGroup
		if profile != "" {
			profiling.Go(func() { cpuProfiles(ctx, cp, pprofAddr, profile, duration) })
		}
		// The kind's own cost: the same changes to RouteGates made with the
		// operator's identity, which the audit webhook skips (no journal, no
		// entry); the controller still computes and writes their status.
		opc, err := client.New(cp.Operator, client.Options{Scheme: controlplane.Scheme})
		if err != nil {
			return err
		}
		reqs, err := requests(ctx, cp)
		if err != nil {
			return err
		}
		before = cpu.Sample()
		unaudited, start, err := gatePatches(ctx, c, opc, "bench-unaudited", workers, duration)
		if err != nil {
			return err
		}
		unauditedRate := float64(unaudited) / time.Since(start).Seconds()
		fmt.Printf("RouteGate changes, not audited (the operator's identity; its controller still writes status): %7.1f /s (%.2f of plain)\n",
			unauditedRate, unauditedRate/patches)
		fmt.Printf("  %s\n", cpu.Since(before, unaudited).Format(time.Millisecond, "ms"))
		if reqs, err = printRequests(ctx, cp, reqs, unaudited); err != nil {
			return err
		}

		before = cpu.Sample()
		audited, changes, lost, err := auditedRate(ctx, c, workers, duration)
		profiling.Wait()
		if err != nil {
			return err
		}
		fmt.Printf("  %s\n", cpu.Since(before, changes).Format(time.Millisecond, "ms"))
		if _, err := printRequests(ctx, cp, reqs, changes); err != nil {
			return err
		}
		fmt.Printf("audited changes sustained (to entry written): %7.1f /s   %.2f of plain custom-resource patches (target >= 0.33), %.2f of unaudited RouteGate changes, %.2f of ConfigMap updates, lost %d\n",
			audited, audited/patches, audited/unauditedRate, audited/raw, lost)
	}
	if phases["latency"] {
		p50, p99, n, lost2, err := latency(ctx, cp, 20, 15*time.Second)
		if err != nil {
			return err
		}
		fmt.Printf("change accepted -> AuditEntry exists at 20/s: p50 %s  p99 %s (target <= 250ms) over %d changes, lost %d\n",
			p50.Round(time.Millisecond), p99.Round(time.Millisecond), n, lost2)
	}
	if phases["memory"] || phases["log"] || phases["dashboard"] {
		if err := fill(ctx, cp, gates, entries); err != nil {
			return err
		}
	}
	if phases["memory"] {
		// Let the operator settle (reconciles, a retention pass) before reading.
		time.Sleep(20 * time.Second)
		rss, hwm, err := procMemory(op.Pid)
		if err != nil {
			return err
		}
		fmt.Printf("operator memory with %d RouteGates and %d AuditEntries: RSS %d MiB, peak %d MiB (target <= 150 MiB)\n",
			gates, entries, rss>>20, hwm>>20)
	}
	if phases["log"] {
		if err := readLog(ctx, cp, dir, entries); err != nil {
			return err
		}
	}
	if phases["dashboard"] {
		return dashboardTimes(ctx, cp, dir, gates, entries)
	}
	return nil
}

// cpuProfiles writes CPU profiles of the API server and the operator over
// d into dir.
func cpuProfiles(ctx context.Context, cp *controlplane.ControlPlane, operatorPprof, dir string, d time.Duration) {
	secs := strconv.Itoa(int(d.Seconds()) - 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		rc, err := rest.HTTPClientFor(cp.Admin)
		if err == nil {
			err = fetch(ctx, rc, strings.TrimSuffix(cp.Admin.Host, "/")+"/debug/pprof/profile?seconds="+secs, filepath.Join(dir, "apiserver.pprof"))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "profiling the API server:", err)
		}
	})
	wg.Go(func() {
		if err := fetch(ctx, http.DefaultClient, "http://"+operatorPprof+"/debug/pprof/profile?seconds="+secs, filepath.Join(dir, "operator.pprof")); err != nil {
			fmt.Fprintln(os.Stderr, "profiling the operator:", err)
		}
	})
	wg.Wait()
}

func fetch(ctx context.Context, c *http.Client, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = io.Copy(f, resp.Body)
	return err
}

// rawRate is the rate of plain ConfigMap updates workers sustain: the ceiling.
func rawRate(ctx context.Context, c client.Client, workers int, d time.Duration) (float64, error) {
	cms := make([]*corev1.ConfigMap, workers)
	for i := range cms {
		cms[i] = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "bench-raw", Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"n": "0"}}
		if err := c.Create(ctx, cms[i]); err != nil {
			return 0, err
		}
	}
	var done atomic.Int64
	err := forEachWorker(ctx, workers, d, func(i, n int) error {
		cms[i].Data["n"] = strconv.Itoa(n)
		if err := c.Update(ctx, cms[i]); err != nil {
			return err
		}
		done.Add(1)
		return nil
	})
	return float64(done.Load()) / d.Seconds(), err
}

// crdRate is the rate of AuditEntry creates (a custom resource, no webhook,
// as the operator writes them): what one of an audited change's writes costs.
func crdRate(ctx context.Context, cp *controlplane.ControlPlane, workers int, d time.Duration) (float64, error) {
	opc, err := client.New(cp.Operator, client.Options{Scheme: controlplane.Scheme})
	if err != nil {
		return 0, err
	}
	var done atomic.Int64
	err = forEachWorker(ctx, workers, d, func(i, n int) error {
		if err := opc.Create(ctx, fillerEntry("bench-raw", fmt.Sprintf("crd-%d-%d", i, n), n)); err != nil {
			return err
		}
		done.Add(1)
		return nil
	})
	return float64(done.Load()) / d.Seconds(), err
}

// plainCRD installs the benchmark's own custom resource, Plain: a spec with
// a route and a reason, no webhook, no controller.
func plainCRD(ctx context.Context, cp *controlplane.ControlPlane) error {
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "plains.bench.waygate.dev"},
		"spec": map[string]any{
			"group": "bench.waygate.dev", "scope": "Namespaced",
			"names": map[string]any{"plural": "plains", "singular": "plain", "kind": "Plain", "listKind": "PlainList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true, "schema": map[string]any{
				"openAPIV3Schema": map[string]any{"type": "object", "properties": map[string]any{
					"spec": map[string]any{"type": "object", "properties": map[string]any{
						"route": map[string]any{"type": "string"}, "reason": map[string]any{"type": "string"},
					}},
				}},
			}}},
		},
	}}
	return cp.Client.Create(ctx, crd)
}

// crPatchRate is the rate of merge patches of a spec field, as large as an
// audited change's, to Plain objects named prefix-<worker>.
func crPatchRate(ctx context.Context, cp *controlplane.ControlPlane, prefix string, workers int, d time.Duration) (float64, error) {
	objs := make([]*unstructured.Unstructured, workers)
	for i := range objs {
		objs[i] = &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "bench.waygate.dev/v1", "kind": "Plain",
			"metadata": map[string]any{"name": fmt.Sprintf("%s-%d", prefix, i), "namespace": "bench-raw"},
			"spec":     map[string]any{"route": "GET:/plain", "reason": "start"},
		}}
		// A new kind or webhook is in effect a moment after it is created.
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			return cp.Client.Create(ctx, objs[i]) == nil, nil
		}); err != nil {
			return 0, fmt.Errorf("creating %s: %w", objs[i].GetName(), err)
		}
	}
	var done atomic.Int64
	err := forEachWorker(ctx, workers, d, func(i, n int) error {
		patch := fmt.Sprintf(`{"spec":{"reason":"user-%d change %d"}}`, i, n)
		if err := cp.Client.Patch(ctx, objs[i], client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			return err
		}
		done.Add(1)
		return nil
	})
	return float64(done.Load()) / d.Seconds(), err
}

// allowingWebhook serves, from this process, a mutating webhook for Plains
// that allows every request unchanged (controller-runtime's admission
// handling, as the operator's), and registers it with the API server: the
// cost of calling a webhook at all.
func allowingWebhook(ctx context.Context, cp *controlplane.ControlPlane) error {
	cert, err := tls.LoadX509KeyPair(filepath.Join(cp.Webhook.LocalServingCertDir, "tls.crt"), filepath.Join(cp.Webhook.LocalServingCertDir, "tls.key"))
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", net.JoinHostPort(cp.Webhook.LocalServingHost, "0"), &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	allow := &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})}
	srv := &http.Server{Handler: allow, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	url := "https://" + ln.Addr().String() + "/allow"
	none := admissionregistrationv1.SideEffectClassNone
	return cp.Client.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-allow"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "allow.bench.waygate.dev",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: cp.Webhook.LocalServingCAData},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"bench.waygate.dev"}, APIVersions: []string{"v1"}, Resources: []string{"plains"}}}},
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		}},
	})
}

// fillerEntry is an entry as the operator would write it (named by its
// time), about gate-<i>.
func fillerEntry(ns, name string, i int) *waygatev1.AuditEntry {
	now := metav1.NowMicro()
	return &waygatev1.AuditEntry{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: audit.EntryName(now.Time, name, "bench", name)},
		Spec: waygatev1.AuditEntrySpec{
			Path: fmt.Sprintf("GET:/items/%d", i), Action: "maintenance_on", Actor: "bench", Platform: waygatev1.PlatformAPI,
			OldStatus: "active", NewStatus: "maintenance", Reason: "benchmark", Timestamp: now,
			Target: waygatev1.AuditTarget{Kind: "RouteGate", Name: fmt.Sprintf("gate-%d", i), Namespace: ns},
		},
	}
}

// gatePatches creates workers RouteGates in ns (as c), waits for the entries
// of their creation, and changes their reason as patcher as fast as workers
// can for d. It returns the changes made and when the first began.
func gatePatches(ctx context.Context, c, patcher client.Client, ns string, workers int, d time.Duration) (changes int64, start time.Time, err error) {
	rgs := make([]*waygatev1.RouteGate, workers)
	for i := range rgs {
		rgs[i] = benchGate(ns, fmt.Sprintf("rate-%d", i))
		if err := c.Create(ctx, rgs[i]); err != nil {
			return 0, start, err
		}
	}
	if err := waitCount(ctx, c, ns, workers, time.Minute); err != nil {
		return 0, start, err
	}
	var accepted atomic.Int64
	start = time.Now()
	err = forEachWorker(ctx, workers, d, func(i, n int) error {
		if err := setReason(ctx, patcher, rgs[i], fmt.Sprintf("w%d-%d", i, n)); err != nil {
			return err
		}
		accepted.Add(1)
		return nil
	})
	return accepted.Load(), start, err
}

// auditedRate changes RouteGates as fast as workers can for d, then waits
// for every change's entry; the rate counts until the last entry exists.
func auditedRate(ctx context.Context, c client.Client, workers int, d time.Duration) (rate float64, changes int64, lost int, err error) {
	const ns = "bench-rate"
	changes, start, err := gatePatches(ctx, c, c, ns, workers, d)
	if err != nil {
		return 0, 0, 0, err
	}
	want := workers + int(changes)
	took := time.Since(start)
	err = waitCount(ctx, c, ns, want, 2*time.Minute)
	elapsed := time.Since(start)
	fmt.Printf("  %d changes accepted in %s (%.1f/s); their entries all written after %s\n",
		changes, took.Round(time.Millisecond), float64(changes)/took.Seconds(), elapsed.Round(time.Millisecond))
	got, cerr := count(ctx, c, ns)
	if cerr != nil {
		return 0, 0, 0, cerr
	}
	if err != nil && got < want {
		return float64(got-workers) / elapsed.Seconds(), changes, want - got, nil
	}
	return float64(changes) / elapsed.Seconds(), changes, 0, nil
}

// latency makes rate changes a second for d and measures, for each, the time
// from its acceptance to its AuditEntry appearing on a watch.
func latency(ctx context.Context, cp *controlplane.ControlPlane, rate int, d time.Duration) (p50, p99 time.Duration, n, lost int, err error) {
	const ns = "bench-latency"
	c := cp.Client
	wc, err := client.NewWithWatch(cp.Admin, client.Options{Scheme: controlplane.Scheme})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	rgs := make([]*waygatev1.RouteGate, rate)
	for i := range rgs {
		rgs[i] = benchGate(ns, fmt.Sprintf("lat-%d", i))
		if err := c.Create(ctx, rgs[i]); err != nil {
			return 0, 0, 0, 0, err
		}
	}
	if err := waitCount(ctx, c, ns, rate, time.Minute); err != nil {
		return 0, 0, 0, 0, err
	}
	w, err := wc.Watch(ctx, &waygatev1.AuditEntryList{}, client.InNamespace(ns))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer w.Stop()
	var mu sync.Mutex
	seen := map[string]time.Time{}
	go func() {
		for ev := range w.ResultChan() {
			if e, ok := ev.Object.(*waygatev1.AuditEntry); ok && ev.Type == watch.Added {
				mu.Lock()
				seen[e.Spec.Reason] = time.Now()
				mu.Unlock()
			}
		}
	}()

	accepted := map[string]time.Time{}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; i < int(d.Seconds())*rate; i++ {
		<-tick.C
		reason := fmt.Sprintf("lat-%d", i)
		if err := setReason(ctx, c, rgs[i%rate], reason); err != nil {
			return 0, 0, 0, 0, err
		}
		accepted[reason] = time.Now()
	}
	deadline := time.Now().Add(30 * time.Second)
	var lat []time.Duration
	for {
		mu.Lock()
		lat, lost = lat[:0], 0
		for reason, at := range accepted {
			if s, ok := seen[reason]; ok {
				lat = append(lat, max(s.Sub(at), 0))
			} else {
				lost++
			}
		}
		mu.Unlock()
		if lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		return 0, 0, 0, lost, errors.New("no entries seen")
	}
	return lat[len(lat)/2], lat[len(lat)*99/100], len(accepted), lost, nil
}

// memory fills the cluster with gates (which the operator reconciles and
// audits) and entries, then reads the operator's resident memory.
// memoryNamespace holds gates RouteGates, audited, and AuditEntries up to
// entries, for the memory and log phases.
const memoryNamespace = "bench-memory"

// fill creates gates RouteGates, waits for their entries, and adds entries
// up to entries.
func fill(ctx context.Context, cp *controlplane.ControlPlane, gates, entries int) error {
	const ns = memoryNamespace
	c := cp.Client
	cfg := rest.CopyConfig(cp.Operator)
	cfg.QPS, cfg.Burst = 1000, 2000
	opc, err := client.New(cfg, client.Options{Scheme: controlplane.Scheme})
	if err != nil {
		return err
	}
	start := time.Now()
	if err := parallel(ctx, 16, gates, func(i int) error {
		return c.Create(ctx, benchGate(ns, fmt.Sprintf("gate-%d", i)))
	}); err != nil {
		return err
	}
	if err := waitCount(ctx, c, ns, gates, 10*time.Minute); err != nil {
		return err
	}
	fmt.Printf("  %d RouteGates created and audited in %s\n", gates, time.Since(start).Round(time.Second))
	start = time.Now()
	extra := entries - gates
	if err := parallel(ctx, 16, extra, func(i int) error {
		return opc.Create(ctx, fillerEntry(ns, fmt.Sprintf("filler-%d", i), i%gates))
	}); err != nil {
		return err
	}
	fmt.Printf("  %d more AuditEntries created in %s\n", extra, time.Since(start).Round(time.Second))
	return nil
}

// readLog times reading the newest entries of memoryNamespace, which holds
// entries of them: `waygate audit --limit 20` (the process, start to end),
// and pages of 20 read on by continue token.
func readLog(ctx context.Context, cp *controlplane.ControlPlane, dir string, entries int) error {
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if err := controlplane.WriteKubeconfig(cp.Admin, kubeconfig); err != nil {
		return err
	}
	cli := func(args ...string) (time.Duration, error) {
		start := time.Now()
		out, err := exec.CommandContext(ctx, waygateBin, append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("waygate %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		if n := strings.Count(string(out), "\n"); n != 21 {
			return 0, fmt.Errorf("waygate %s printed %d lines, want a header and 20 entries:\n%s", strings.Join(args, " "), n, out)
		}
		return time.Since(start), nil
	}
	var runs []time.Duration
	for i := range 6 {
		d, err := cli("audit", "-n", memoryNamespace, "--limit", "20")
		if err != nil {
			return err
		}
		if i > 0 { // the first warms the page cache
			runs = append(runs, d)
		}
	}
	slices.Sort(runs)
	fmt.Printf("waygate audit --limit 20 with %d entries in the namespace: median %s, max %s over %d runs (target <= 150ms)\n",
		entries, runs[len(runs)/2].Round(time.Millisecond), runs[len(runs)-1].Round(time.Millisecond), len(runs))

	q := audit.Query{Namespace: memoryNamespace, Limit: 20}
	var pages []string
	var last *waygatev1.AuditEntry
	for range 6 {
		start := time.Now()
		page, err := q.Run(ctx, cp.Client)
		if err != nil {
			return err
		}
		took := time.Since(start)
		if len(page.Entries) != 20 || page.Continue == "" {
			return fmt.Errorf("a page of %d entries, continue %q", len(page.Entries), page.Continue)
		}
		if last != nil && page.Entries[0].Spec.Timestamp.After(last.Spec.Timestamp.Time) {
			return fmt.Errorf("page %d starts newer than the page before ended", len(pages)+1)
		}
		last = &page.Entries[len(page.Entries)-1]
		pages = append(pages, took.Round(100*time.Microsecond).String())
		q.Continue = page.Continue
	}
	fmt.Printf("  pages of 20, the newest then older by continue token: %s\n", strings.Join(pages, ", "))
	d, err := cli("audit", "-A", "--limit", "20")
	if err != nil {
		return err
	}
	fmt.Printf("  for comparison, waygate audit -A --limit 20 (every namespace, so every entry is read): %s\n", d.Round(time.Millisecond))
	return nil
}

// procMemory reads VmRSS and VmHWM of pid, in bytes.
func procMemory(pid int) (rss, peak int64, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak, nil
}

func benchGate(ns, name string) *waygatev1.RouteGate {
	return &waygatev1.RouteGate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       waygatev1.RouteGateSpec{Route: waygatev1.RouteKey("GET:/" + name), State: waygatev1.RouteMaintenance, Reason: "start"},
	}
}

// setReason changes rg's reason with a merge patch, as kubectl patch and
// GitOps tools do: the API server applies it to the latest object, so the
// operator's own writes in between cause no conflicts.
func setReason(ctx context.Context, c client.Client, rg *waygatev1.RouteGate, reason string) error {
	patch := fmt.Sprintf(`{"spec":{"reason":%q}}`, reason)
	return c.Patch(ctx, rg, client.RawPatch(types.MergePatchType, []byte(patch)))
}

// forEachWorker runs f(worker, iteration) in workers goroutines for d.
func forEachWorker(ctx context.Context, workers int, d time.Duration, f func(i, n int) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				if err := f(i, n); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// parallel runs f(0..n-1) on workers goroutines.
func parallel(ctx context.Context, workers, n int, f func(int) error) error {
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil && len(errs) == 0; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

// count counts the AuditEntries in ns, a page at a time.
func count(ctx context.Context, c client.Client, ns string) (int, error) {
	n := 0
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(waygatev1.GroupVersion.WithKind("AuditEntryList"))
	for cont := ""; ; {
		if err := c.List(ctx, &list, client.InNamespace(ns), client.Limit(1000), client.Continue(cont)); err != nil {
			return 0, err
		}
		n += len(list.Items)
		if cont = list.Continue; cont == "" {
			return n, nil
		}
	}
}

// waitCount waits until ns holds at least want AuditEntries.
func waitCount(ctx context.Context, c client.Client, ns string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got, err := count(ctx, c, ns)
		if err != nil {
			return err
		}
		if got >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d audit entries after %s, want %d", ns, got, timeout, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// requests counts the API server's requests to Waygate's kinds so far, by
// "VERB resource[/subresource]", and its calls of the audit webhook, from
// its metrics.
func requests(ctx context.Context, cp *controlplane.ControlPlane) (map[string]float64, error) {
	rc, err := rest.HTTPClientFor(cp.Admin)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cp.Admin.Host, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := rc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	counts := map[string]float64{}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, m := range families["apiserver_request_total"].GetMetric() {
		if label(m, "group") != waygatev1.GroupVersion.Group {
			continue
		}
		what := label(m, "resource")
		if sub := label(m, "subresource"); sub != "" {
			what += "/" + sub
		}
		counts[label(m, "verb")+" "+what] += m.GetCounter().GetValue()
	}
	for _, m := range families["apiserver_admission_webhook_admission_duration_seconds"].GetMetric() {
		if label(m, "name") == "audit.waygate.dev" {
			counts["audit webhook calls"] += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return counts, nil
}

// printRequests prints the requests made since before, per change, and
// returns the counts now.
func printRequests(ctx context.Context, cp *controlplane.ControlPlane, before map[string]float64, changes int64) (map[string]float64, error) {
	after, err := requests(ctx, cp)
	if err != nil {
		return nil, err
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if n := after[k] - before[k]; n >= 0.005*float64(changes) {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, n/float64(changes)))
		}
	}
	fmt.Printf("  API requests per change: %s\n", strings.Join(parts, ", "))
	return after, nil
}
