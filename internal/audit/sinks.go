package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// JSONLines writes each entry as one line of JSON (the AuditEntry as the
// API server returns it), for a log shipper (Fluent Bit, Vector) that
// collects the operator's stdout; the operator logs to stderr.
type JSONLines struct {
	W io.Writer
}

// Export writes the entries.
func (j JSONLines) Export(_ context.Context, entries []waygatev1.AuditEntry) error {
	var b []byte
	for _, e := range entries {
		e.ManagedFields = nil
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		b = append(append(b, line...), '\n')
	}
	_, err := j.W.Write(b)
	return err
}

// Shutdown does nothing: every line is written when Export returns.
func (JSONLines) Shutdown(context.Context) error { return nil }

// OTLP sends entries as OpenTelemetry log records to a collector, over
// OTLP/HTTP or gRPC, configured as OpenTelemetry exporters are: by the
// OTEL_EXPORTER_OTLP_* (or OTEL_EXPORTER_OTLP_LOGS_*) environment
// variables: ENDPOINT, PROTOCOL (http/protobuf, the default, or grpc),
// HEADERS, CERTIFICATE, CLIENT_CERTIFICATE, CLIENT_KEY, INSECURE, TIMEOUT.
// Each record is one entry: its time, a one-line body, and the entry's
// fields as attributes (waygate.audit.*), with waygate.audit.id
// (<namespace>/<name>) the same every time an entry is sent, for a store
// to deduplicate.
type OTLP struct {
	exporter sdklog.Exporter
	logger   otellog.Logger
	provider *sdklog.LoggerProvider
	taken    *taker
}

// NewOTLP connects to the collector the environment names; version is the
// operator's, for the records' resource.
func NewOTLP(ctx context.Context, version string) (*OTLP, error) {
	var exporter sdklog.Exporter
	var err error
	switch protocol := otlpProtocol(); protocol {
	case "http/protobuf":
		// Retries are the Exporter's, which never gives up on a batch.
		exporter, err = otlploghttp.New(ctx, otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}))
	case "grpc":
		exporter, err = otlploggrpc.New(ctx, otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}))
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: use http/protobuf or grpc (http/json is not supported)", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("the OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName("waygate-operator"), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, err
	}
	// Records are emitted through the SDK (which stamps the resource and
	// scope) and taken, unbatched, into the batch Export sends, so that a
	// batch is delivered or fails as a whole.
	t := &taker{}
	provider := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(t))
	return &OTLP{exporter: exporter, provider: provider, taken: t, logger: provider.Logger("github.com/waygate-dev/waygate/audit")}, nil
}

// otlpProtocol is the protocol the environment asks for.
func otlpProtocol() string {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(os.Getenv(v)); p != "" {
			return p
		}
	}
	return "http/protobuf"
}

// Export sends entries as one request.
func (o *OTLP) Export(ctx context.Context, entries []waygatev1.AuditEntry) error {
	o.taken.mu.Lock()
	defer o.taken.mu.Unlock()
	o.taken.records = o.taken.records[:0]
	now := time.Now()
	for i := range entries {
		o.logger.Emit(ctx, logRecord(&entries[i], now))
	}
	return o.exporter.Export(ctx, o.taken.records)
}

// Shutdown closes the connection.
func (o *OTLP) Shutdown(ctx context.Context) error {
	_ = o.provider.Shutdown(ctx)
	return o.exporter.Shutdown(ctx)
}

// logRecord is e as a log record.
func logRecord(e *waygatev1.AuditEntry, observed time.Time) otellog.Record {
	s := e.Spec
	var r otellog.Record
	r.SetEventName("waygate.audit." + s.Action)
	r.SetTimestamp(s.Timestamp.Time)
	r.SetObservedTimestamp(observed)
	r.SetSeverity(otellog.SeverityInfo)
	r.SetSeverityText("INFO")
	body := fmt.Sprintf("%s %s %s", s.Actor, s.Action, s.Path)
	if s.OldStatus != "" || s.NewStatus != "" {
		body += fmt.Sprintf(": %s → %s", s.OldStatus, s.NewStatus)
	}
	if s.Reason != "" {
		body += fmt.Sprintf(" (%s)", s.Reason)
	}
	r.SetBody(attribute.StringValue(body))
	attrs := []attribute.KeyValue{
		attribute.String("waygate.audit.id", e.Namespace+"/"+e.Name),
		attribute.String("waygate.audit.path", s.Path),
		attribute.String("waygate.audit.action", s.Action),
		attribute.String("waygate.audit.actor", s.Actor),
		attribute.String("waygate.audit.platform", string(s.Platform)),
		attribute.String("waygate.audit.old_status", s.OldStatus),
		attribute.String("waygate.audit.new_status", s.NewStatus),
		attribute.String("waygate.audit.reason", s.Reason),
		attribute.String("waygate.audit.target.kind", s.Target.Kind),
		attribute.String("waygate.audit.target.name", s.Target.Name),
		attribute.String("waygate.audit.target.uid", s.Target.UID),
		attribute.Int64("waygate.audit.target.generation", s.Target.Generation),
		attribute.String("k8s.namespace.name", e.Namespace),
	}
	if len(s.Changes) > 0 {
		attrs = append(attrs, attribute.StringSlice("waygate.audit.changes", s.Changes))
	}
	r.AddAttributes(attrs...)
	return r
}

// taker is a log processor that keeps the records emitted, for Export to
// send (the SDK's processors batch or send on their own, and report no
// failure to the emitter).
type taker struct {
	mu      sync.Mutex
	records []sdklog.Record
}

func (t *taker) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }

// OnEmit runs in Export's Emit, which holds mu.
func (t *taker) OnEmit(_ context.Context, r *sdklog.Record) error {
	t.records = append(t.records, r.Clone())
	return nil
}

func (t *taker) Shutdown(context.Context) error   { return nil }
func (t *taker) ForceFlush(context.Context) error { return nil }
