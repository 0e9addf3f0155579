package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/controlplane"
	auditlog "github.com/waygate-dev/waygate/pkg/audit"
)

// fillerEntry is an entry as the operator would write it (named by its
// time), about gate-<i>.
func fillerEntry(ns, name string, i int) *waygatev1.AuditEntry {
	return auditlog.NewEntry(ns, name, "bench", name, waygatev1.AuditEntrySpec{
		Path: fmt.Sprintf("GET:/items/%d", i), Action: "maintenance_on", Actor: "bench", Platform: waygatev1.PlatformAPI,
		OldStatus: "active", NewStatus: "maintenance", Reason: "benchmark", Timestamp: metav1.NowMicro(),
		Target: waygatev1.AuditTarget{Kind: "RouteGate", Name: fmt.Sprintf("gate-%d", i), Namespace: ns},
	})
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

	q := auditlog.Query{Namespace: memoryNamespace, Limit: 20}
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
