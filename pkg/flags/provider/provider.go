// Package provider is an OpenFeature provider for Go services
// (github.com/open-feature/go-sdk) that evaluates Waygate flags in-process
// with the flag engine of package flags: no network hop per evaluation. It
// loads a namespace's flags and segments from the gate (polling its
// definitions endpoint with ETag), and keeps serving the last good snapshot
// while the gate cannot be reached.
//
//	p := provider.New(provider.Options{BaseURL: "http://waygate-gate.waygate-system:8080/ns/shop", APIKey: key})
//	_ = openfeature.SetProviderAndWait(p)
//	on, _ := openfeature.NewDefaultClient().BooleanValue(ctx, "new-checkout", false, openfeature.NewEvaluationContext("alice", nil))
//
// It emits PROVIDER_READY once loaded, PROVIDER_CONFIGURATION_CHANGED when
// the flags change, PROVIDER_STALE when the gate stops answering (and
// PROVIDER_READY when it answers again), and PROVIDER_ERROR when the first
// load fails.
package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/waygate-dev/waygate/pkg/flags"
)

// Options configure a Provider.
type Options struct {
	// BaseURL is the namespace's base URL on the gate, as OFREP providers
	// are given it: http://<gate>/ns/<namespace>.
	BaseURL string
	// APIKey is one of the namespace's keys (Secret waygate-ofrep-keys):
	// the gate serves flag definitions only to holders of a key.
	APIKey string
	// Interval is how often the gate is asked for changes (default 5s); a
	// poll whose flags are unchanged costs the gate a 304.
	Interval time.Duration
	// Client makes the requests (default: a client with a 10s timeout).
	Client *http.Client
}

// Provider evaluates flags with the last snapshot loaded. Its zero value is
// not usable: call New.
type Provider struct {
	o      Options
	snap   atomic.Pointer[flags.Snapshot]
	events chan of.Event
	etag   string

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	stale  bool
}

// New returns a provider for o; the SDK starts it (Init) when it is set.
func New(o Options) *Provider {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	o.BaseURL = strings.TrimSuffix(o.BaseURL, "/")
	return &Provider{o: o, events: make(chan of.Event, 16)}
}

// Metadata names the provider.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: "waygate"} }

// Hooks: none.
func (p *Provider) Hooks() []of.Hook { return nil }

// EventChannel carries the provider's events to the SDK.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

// Init loads the flags (the SDK reports an error, and PROVIDER_ERROR, if it
// cannot) and starts polling for changes.
func (p *Provider) Init(of.EvaluationContext) error {
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := p.load(ctx); err != nil {
		cancel()
		return fmt.Errorf("loading flags from %s: %w", p.o.BaseURL, err)
	}
	p.mu.Lock()
	p.cancel, p.done = cancel, make(chan struct{})
	p.mu.Unlock()
	go p.poll(ctx)
	return nil
}

// Shutdown stops polling.
func (p *Provider) Shutdown() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (p *Provider) poll(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := p.load(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !p.stale {
				p.stale = true
				p.emit(of.ProviderStale, "the gate does not answer; serving the flags last loaded: "+err.Error())
			}
		case p.stale:
			p.stale = false
			p.emit(of.ProviderReady, "the gate answers again")
			if changed {
				p.emit(of.ProviderConfigChange, "flags changed")
			}
		case changed:
			p.emit(of.ProviderConfigChange, "flags changed")
		}
	}
}

func (p *Provider) emit(t of.EventType, msg string) {
	select {
	case p.events <- of.Event{ProviderName: "waygate", EventType: t, ProviderEventDetails: of.ProviderEventDetails{Message: msg}}:
	default: // nobody listens fast enough; the state is what counts
	}
}

// load asks the gate for the definitions, and compiles them when they
// changed.
func (p *Provider) load(ctx context.Context) (changed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.o.BaseURL+"/waygate/v1/flags", nil)
	if err != nil {
		return false, err
	}
	if p.o.APIKey != "" {
		req.Header.Set("X-API-Key", p.o.APIKey)
	}
	if p.etag != "" {
		req.Header.Set("If-None-Match", p.etag)
	}
	resp, err := p.o.Client.Do(req)
	if err != nil {
		return false, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return false, err
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		return false, nil
	case http.StatusOK:
	default:
		var e struct {
			ErrorDetails string `json:"errorDetails"`
		}
		_ = json.Unmarshal(body, &e)
		return false, fmt.Errorf("the gate answered %s: %s", resp.Status, e.ErrorDetails)
	}
	var defs flags.Definitions
	if err := json.Unmarshal(body, &defs); err != nil {
		return false, fmt.Errorf("reading the flags: %w", err)
	}
	p.snap.Store(flags.Compile(defs.Flags, defs.Segments))
	p.etag = resp.Header.Get("ETag")
	return true, nil
}

// evaluate evaluates flag for the flattened context.
func (p *Provider) evaluate(flag string, fc of.FlattenedContext) (flags.Result, bool) {
	snap := p.snap.Load()
	if snap == nil {
		return flags.Result{}, false
	}
	return snap.Evaluate(flag, flags.NewContext(fc)), true
}

// resolve evaluates flag and converts its value with as; def is served on
// any error.
func resolve[T any](p *Provider, flag string, def T, fc of.FlattenedContext, typ string, as func(any) (T, bool)) of.GenericResolutionDetail[T] {
	r, ok := p.evaluate(flag, fc)
	if !ok {
		return failed(def, of.NewProviderNotReadyResolutionError("the flags are not loaded yet"))
	}
	detail := of.ProviderResolutionDetail{Reason: of.Reason(r.Reason), Variant: r.Variant, FlagMetadata: of.FlagMetadata(r.Metadata)}
	if r.ErrorCode != "" {
		return failed(def, resolutionError(r))
	}
	v, ok := as(r.Value)
	if !ok {
		return failed(def, of.NewTypeMismatchResolutionError(fmt.Sprintf("flag %q is not a %s flag (its value is %T)", flag, typ, r.Value)))
	}
	return of.GenericResolutionDetail[T]{Value: v, ProviderResolutionDetail: detail}
}

func failed[T any](def T, err of.ResolutionError) of.GenericResolutionDetail[T] {
	return of.GenericResolutionDetail[T]{Value: def, ProviderResolutionDetail: of.ProviderResolutionDetail{ResolutionError: err, Reason: of.ErrorReason}}
}

func resolutionError(r flags.Result) of.ResolutionError {
	switch r.ErrorCode {
	case flags.ErrorFlagNotFound:
		return of.NewFlagNotFoundResolutionError(r.ErrorMessage)
	case flags.ErrorTargetingKeyMissing:
		return of.NewTargetingKeyMissingResolutionError(r.ErrorMessage)
	case flags.ErrorParse:
		return of.NewParseErrorResolutionError(r.ErrorMessage)
	}
	return of.NewGeneralResolutionError(r.ErrorMessage)
}

// BooleanEvaluation evaluates a boolean flag.
func (p *Provider) BooleanEvaluation(_ context.Context, flag string, def bool, fc of.FlattenedContext) of.BoolResolutionDetail {
	return resolve(p, flag, def, fc, "boolean", func(v any) (bool, bool) { b, ok := v.(bool); return b, ok })
}

// StringEvaluation evaluates a string flag.
func (p *Provider) StringEvaluation(_ context.Context, flag string, def string, fc of.FlattenedContext) of.StringResolutionDetail {
	return resolve(p, flag, def, fc, "string", func(v any) (string, bool) { s, ok := v.(string); return s, ok })
}

// FloatEvaluation evaluates a float (or integer) flag.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, def float64, fc of.FlattenedContext) of.FloatResolutionDetail {
	return resolve(p, flag, def, fc, "number", func(v any) (float64, bool) {
		switch n := v.(type) {
		case float64:
			return n, true
		case int64:
			return float64(n), true
		}
		return 0, false
	})
}

// IntEvaluation evaluates an integer flag (or a float flag whose value is
// whole).
func (p *Provider) IntEvaluation(_ context.Context, flag string, def int64, fc of.FlattenedContext) of.IntResolutionDetail {
	return resolve(p, flag, def, fc, "integer", func(v any) (int64, bool) {
		switch n := v.(type) {
		case int64:
			return n, true
		case float64:
			return int64(n), n == math.Trunc(n) && math.Abs(n) < 1<<53
		}
		return 0, false
	})
}

// ObjectEvaluation evaluates a json flag (or any flag: its value as Go
// holds it).
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, def any, fc of.FlattenedContext) of.InterfaceResolutionDetail {
	return resolve(p, flag, def, fc, "json", func(v any) (any, bool) { return v, true })
}

var (
	_ of.FeatureProvider = (*Provider)(nil)
	_ of.StateHandler    = (*Provider)(nil)
	_ of.EventHandler    = (*Provider)(nil)
)
