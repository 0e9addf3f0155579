package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/waygate-dev/waygate/pkg/flags"
)

// Options configure a Provider that reads from the gate.
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

// New returns a provider that loads the flags from the gate; the SDK starts
// it (Init) when it is set.
func New(o Options) *Provider {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	o.BaseURL = strings.TrimSuffix(o.BaseURL, "/")
	return newProvider(&gateSource{o: o})
}

// gateSource polls the gate's definitions endpoint.
type gateSource struct {
	o    Options
	etag string
}

func (g *gateSource) where() string { return g.o.BaseURL }

func (g *gateSource) first(ctx context.Context) (*flags.Snapshot, error) { return g.load(ctx) }

func (g *gateSource) next(ctx context.Context) (*flags.Snapshot, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(g.o.Interval):
	}
	return g.load(ctx)
}

// load asks the gate for the definitions, and compiles them when they
// changed (nil when they did not).
func (g *gateSource) load(ctx context.Context) (*flags.Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.o.BaseURL+"/waygate/v1/flags", nil)
	if err != nil {
		return nil, err
	}
	if g.o.APIKey != "" {
		req.Header.Set("X-API-Key", g.o.APIKey)
	}
	if g.etag != "" {
		req.Header.Set("If-None-Match", g.etag)
	}
	resp, err := g.o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, nil
	case http.StatusOK:
	default:
		var e struct {
			ErrorDetails string `json:"errorDetails"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("the gate answered %s: %s", resp.Status, e.ErrorDetails)
	}
	var defs flags.Definitions
	if err := json.Unmarshal(body, &defs); err != nil {
		return nil, fmt.Errorf("reading the flags: %w", err)
	}
	g.etag = resp.Header.Get("ETag")
	return flags.Compile(defs.Flags, defs.Segments), nil
}
