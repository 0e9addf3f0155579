package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

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
		if err := opc.Create(ctx, fillerEntry("bench-raw", fmt.Sprintf("crd-%d-%d", i, n), n, time.Now())); err != nil {
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
