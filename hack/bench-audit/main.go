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
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/waygate-dev/waygate/hack/internal/cputime"
	"github.com/waygate-dev/waygate/hack/internal/procmem"
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
	phaseList := flag.String("phases", "export,throughput,latency,memory,log,dashboard", "The phases to run, comma-separated: export (the lag of --audit-export=otlp to a real collector), throughput, latency, memory, log (reading the log with that many entries present), dashboard (its pages with as many present).")
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
	if phases["export"] {
		l, err := exportLag(ctx, cp, manager, dir, 20, 15*time.Second)
		if err != nil {
			return err
		}
		fmt.Printf("change accepted -> record at the OpenTelemetry Collector at 20/s (--audit-export=otlp, OTLP/HTTP): %s\n", l)
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
		l, err := latency(ctx, cp, "bench-latency", 20, 15*time.Second, entriesOf(cp, "bench-latency"))
		if err != nil {
			return err
		}
		fmt.Printf("change accepted -> AuditEntry exists at 20/s: %s (target p99 <= 250ms)\n", l)
	}
	if phases["memory"] || phases["log"] || phases["dashboard"] {
		if err := fill(ctx, cp, gates, entries); err != nil {
			return err
		}
	}
	if phases["memory"] {
		// Let the operator settle (reconciles, a retention pass) before reading.
		time.Sleep(20 * time.Second)
		rss, hwm, err := procmem.Read(op.Pid)
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
