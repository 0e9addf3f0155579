// Package apihealth tells whether a client's view of the API server is
// current: it sees every request of a rest.Config (lists and watches of
// informers included) and records since when the API server has not
// answered.
package apihealth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// Health records whether the API server answers.
type Health struct {
	mu        sync.Mutex
	downSince time.Time
}

// Watch returns a copy of cfg whose requests h sees.
func Watch(cfg *rest.Config) (*rest.Config, *Health) {
	cfg = rest.CopyConfig(cfg)
	h := &Health{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &transport{next: rt, health: h} })
	return cfg, h
}

// Stale is how long the view may have been behind the API server: zero
// while it answers, else the time since it first failed to.
func (h *Health) Stale() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.downSince.IsZero() {
		return 0
	}
	return time.Since(h.downSince)
}

func (h *Health) up() {
	h.mu.Lock()
	h.downSince = time.Time{}
	h.mu.Unlock()
}

func (h *Health) down() {
	h.mu.Lock()
	if h.downSince.IsZero() {
		h.downSince = time.Now()
	}
	h.mu.Unlock()
}

// transport sees every list and watch: an answer means the view is
// current; a failed request, a refusal (401 or 403: credentials expired or
// rights taken away, so the watches get nothing) or a watch cut off by an
// error means it may not be.
type transport struct {
	next   http.RoundTripper
	health *Health
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode >= http.StatusInternalServerError ||
		resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		t.health.down()
		return resp, err
	}
	t.health.up()
	resp.Body = &body{ReadCloser: resp.Body, health: t.health}
	return resp, nil
}

type body struct {
	io.ReadCloser
	health *Health
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) {
		b.health.down()
	}
	return n, err
}
