package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/hack/internal/parallel"
	"github.com/waygate-dev/waygate/internal/controlplane"
	auditlog "github.com/waygate-dev/waygate/pkg/audit"
)

// fillerEntry is an entry as the operator would write it at at (named and
// labelled by its time), about gate-<i>.
func fillerEntry(ns, name string, i int, at time.Time) *waygatev1.AuditEntry {
	return auditlog.NewEntry(ns, name, "bench", name, waygatev1.AuditEntrySpec{
		Path: fmt.Sprintf("GET:/items/%d", i), Action: "maintenance_on", Actor: "bench", Platform: waygatev1.PlatformAPI,
		OldStatus: "active", NewStatus: "maintenance", Reason: "benchmark", Timestamp: metav1.NewMicroTime(at),
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
	if err := parallel.Do(ctx, 16, gates, func(i int) error {
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
	if err := parallel.Do(ctx, 16, extra, func(i int) error {
		return opc.Create(ctx, fillerEntry(ns, fmt.Sprintf("filler-%d", i), i%gates, time.Now()))
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
	// times runs the CLI with args six times and gives the median and the
	// slowest of the last five (the first warms the page cache).
	times := func(args ...string) (median, slowest time.Duration, err error) {
		var runs []time.Duration
		for i := range 6 {
			d, err := cli(args...)
			if err != nil {
				return 0, 0, err
			}
			if i > 0 {
				runs = append(runs, d)
			}
		}
		slices.Sort(runs)
		return runs[len(runs)/2].Round(time.Millisecond), runs[len(runs)-1].Round(time.Millisecond), nil
	}
	median, slowest, err := times("audit", "-n", memoryNamespace, "--limit", "20")
	if err != nil {
		return err
	}
	fmt.Printf("waygate audit --limit 20 with %d entries in the namespace: median %s, max %s over 5 runs (target <= 150ms)\n", entries, median, slowest)

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
	if median, slowest, err = times("audit", "-A", "--limit", "20"); err != nil {
		return err
	}
	fmt.Printf("waygate audit -A --limit 20, the newest across every namespace: median %s, max %s over 5 runs (target <= 150ms)\n", median, slowest)
	if median, slowest, err = times("audit", "-A", "--limit", "20", "--actor", "bench"); err != nil {
		return err
	}
	fmt.Printf("  with --actor: median %s, max %s\n", median, slowest)
	// Many namespaces, their entries days old: the newest hours hold none
	// of them, so they cost nothing.
	opc, err := client.New(cp.Operator, client.Options{Scheme: controlplane.Scheme})
	if err != nil {
		return err
	}
	const spread, each = 200, 5
	for n := range spread {
		if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("bench-tenant-", n)}}); err != nil {
			return err
		}
	}
	if err := parallel.Do(ctx, 16, spread*each, func(i int) error {
		at := time.Now().Add(-time.Duration(2+i%30) * 24 * time.Hour)
		return opc.Create(ctx, fillerEntry(fmt.Sprint("bench-tenant-", i/each), fmt.Sprint("old-", i), i, at))
	}); err != nil {
		return err
	}
	if median, slowest, err = times("audit", "-A", "--limit", "20"); err != nil {
		return err
	}
	fmt.Printf("  with %d more namespaces of %d entries each, 2 to 31 days old: median %s, max %s\n", spread, each, median, slowest)
	return nil
}
