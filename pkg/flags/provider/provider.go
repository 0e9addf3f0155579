// Package provider is an OpenFeature provider for Go services
// (github.com/open-feature/go-sdk) that evaluates Waygate flags in-process
// with the flag engine of package flags: no network hop per evaluation. It
// loads a namespace's flags and segments from the gate (New: polling its
// definitions endpoint with ETag) or, in the cluster, from the API server
// (NewFromCluster: watching FeatureFlags and Segments), and keeps serving
// the last good snapshot while its source cannot be reached.
//
//	p := provider.New(provider.Options{BaseURL: "http://waygate-gate.waygate-system:8080/ns/shop", APIKey: key})
//	_ = openfeature.SetProviderAndWait(p)
//	on, _ := openfeature.NewDefaultClient().BooleanValue(ctx, "new-checkout", false, openfeature.NewEvaluationContext("alice", nil))
//
// It emits PROVIDER_READY once loaded, PROVIDER_CONFIGURATION_CHANGED when
// the flags change, PROVIDER_STALE when its source stops answering (and
// PROVIDER_READY when it answers again), and PROVIDER_ERROR when the first
// load fails.
package provider

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/waygate-dev/waygate/pkg/flags"
)

// Provider evaluates flags with the last snapshot its source loaded. Its
// zero value is not usable: call New or NewFromCluster.
type Provider struct {
	src    source
	snap   atomic.Pointer[flags.Snapshot]
	events chan of.Event

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	stale  bool
}

// source gives a provider its snapshots.
type source interface {
	// first loads the first snapshot.
	first(ctx context.Context) (*flags.Snapshot, error)
	// next waits for the next look at the flags: a new snapshot when they
	// changed, nil when they did not, or why they cannot be seen now.
	next(ctx context.Context) (*flags.Snapshot, error)
	// where names the source in messages.
	where() string
}

func newProvider(src source) *Provider {
	return &Provider{src: src, events: make(chan of.Event, 16)}
}

// Metadata names the provider.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: "waygate"} }

// Hooks: none.
func (p *Provider) Hooks() []of.Hook { return nil }

// EventChannel carries the provider's events to the SDK.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

// Init loads the flags (the SDK reports an error, and PROVIDER_ERROR, if it
// cannot) and starts following their changes.
func (p *Provider) Init(of.EvaluationContext) error {
	ctx, cancel := context.WithCancel(context.Background())
	snap, err := p.src.first(ctx)
	if err != nil {
		cancel()
		return fmt.Errorf("loading flags from %s: %w", p.src.where(), err)
	}
	p.snap.Store(snap)
	p.mu.Lock()
	p.cancel, p.done = cancel, make(chan struct{})
	p.mu.Unlock()
	go p.follow(ctx)
	return nil
}

// Shutdown stops following changes.
func (p *Provider) Shutdown() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (p *Provider) follow(ctx context.Context) {
	defer close(p.done)
	for {
		snap, err := p.src.next(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !p.stale {
				p.stale = true
				p.emit(of.ProviderStale, p.src.where()+" does not answer; serving the flags last loaded: "+err.Error())
			}
			continue
		}
		if p.stale {
			p.stale = false
			p.emit(of.ProviderReady, p.src.where()+" answers again")
		}
		if snap != nil {
			p.snap.Store(snap)
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
