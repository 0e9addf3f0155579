package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/waygate-dev/waygate/internal/collector"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// exportLag runs the operator with the audit export to a real
// OpenTelemetry Collector (OTLP/HTTP) and measures, at rate changes a second
// for d, the time from a change's acceptance to its record reaching the
// collector: the export lag a log store sees, the drain included. It runs
// before the other phases, on an empty log, with an operator of its own.
func exportLag(ctx context.Context, cp *controlplane.ControlPlane, manager, dir string, rate int, d time.Duration) (lags, error) {
	dir = filepath.Join(dir, "export")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return lags{}, err
	}
	bin, err := collector.Build(cp.Root)
	if err != nil {
		return lags{}, err
	}
	col, err := collector.Start(bin, dir)
	if err != nil {
		return lags{}, err
	}
	defer col.Stop()
	for k, v := range map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + col.HTTP, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"} {
		if err := os.Setenv(k, v); err != nil {
			return lags{}, err
		}
		defer func() { _ = os.Unsetenv(k) }()
	}
	op, err := cp.StartOperator(ctx, manager, dir, "--audit-max-entries=0", "--audit-export=otlp")
	if err != nil {
		return lags{}, err
	}
	defer op.Stop()
	const ns = "bench-export"
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return lags{}, err
	}
	fmt.Printf("export: operator log %s, collector in %s\n", op.Log, dir)
	return latency(ctx, cp, ns, rate, d, func(ctx context.Context, arrived func(string)) error {
		go func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for ; ctx.Err() == nil; <-tick.C {
				recs, err := col.Received()
				if err != nil {
					continue // read again at the next tick
				}
				for _, r := range recs {
					arrived(r.Attrs["waygate.audit.reason"])
				}
			}
		}()
		return nil
	})
}
