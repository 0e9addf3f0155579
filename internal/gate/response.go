package gate

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Status is the HTTP status of the decision's response.
func (d *Decision) Status() int {
	switch d.Verdict {
	case Maintenance, Disabled, LimiterDown, NotReady:
		return http.StatusServiceUnavailable
	case EnvGated:
		return http.StatusForbidden
	case AmbiguousPath:
		return http.StatusBadRequest
	case RateLimited:
		return http.StatusTooManyRequests
	default:
		return http.StatusOK
	}
}

// Body is the JSON body of a refused request's response, as Waygate's
// reference library answers: {"error": {"code": ..., "message": ..., ...}};
// nil when the request is allowed.
func (d *Decision) Body() []byte {
	type common struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Path    string `json:"path"`
	}
	var detail any
	switch d.Verdict {
	case Maintenance:
		var retry *string
		if !d.RetryAt.IsZero() {
			s := d.RetryAt.UTC().Format(time.RFC3339)
			retry = &s
		}
		detail = struct {
			common
			Reason     string  `json:"reason"`
			RetryAfter *string `json:"retry_after"`
		}{common{"MAINTENANCE_MODE", "This endpoint is temporarily unavailable for maintenance", d.Path}, d.Reason, retry}
	case Disabled:
		detail = struct {
			common
			Reason string `json:"reason"`
		}{common{"ROUTE_DISABLED", "This endpoint has been disabled", d.Path}, d.Reason}
	case EnvGated:
		detail = struct {
			common
			CurrentEnv  string   `json:"current_env"`
			AllowedEnvs []string `json:"allowed_envs"`
		}{common{"ENV_GATED", "This endpoint is not available in this environment", d.Path}, d.Environment, d.AllowedEnvs}
	case RateLimited:
		detail = struct {
			common
			Limit             string `json:"limit"`
			RetryAfterSeconds int64  `json:"retry_after_seconds"`
			ResetAt           string `json:"reset_at"`
		}{common{"RATE_LIMIT_EXCEEDED", "Rate limit exceeded: " + d.Limit.Text, d.Path},
			d.Limit.Text, retrySeconds(d.RetryAt, d.At), d.Limit.Reset.UTC().Format(time.RFC3339)}
	case LimiterDown:
		detail = common{"RATE_LIMITER_UNAVAILABLE", "The rate limiter is unavailable; try again shortly", d.Path}
	case AmbiguousPath:
		detail = common{"AMBIGUOUS_PATH", "The request's path mixes an encoded slash with dot segments, or holds a raw \"#\": servers route such paths differently, so it is refused", d.Path}
	case NotReady:
		detail = common{"GATE_NOT_READY", "The gate has not yet read what is in effect from the API server; try again shortly", d.Path}
	default:
		return nil
	}
	b, _ := json.Marshal(map[string]any{"error": detail})
	return b
}

// Headers calls set with each header the client should see: Retry-After
// and X-RateLimit-* on refusals, rate-limit and deprecation headers on
// allowed requests.
func (d *Decision) Headers(set func(name, value string)) {
	if !d.RetryAt.IsZero() || d.Verdict == RateLimited {
		set("Retry-After", strconv.FormatInt(retrySeconds(d.RetryAt, d.At), 10))
	}
	if d.Limit.Text != "" {
		set("X-RateLimit-Limit", strconv.FormatInt(d.Limit.Count, 10))
		set("X-RateLimit-Remaining", strconv.FormatInt(d.Limit.Remaining, 10))
		set("X-RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(d.Limit.Reset.UnixNano())/1e9)), 10))
	}
	if dep := d.Deprecation; dep != nil {
		set("Deprecation", "true")
		if dep.Sunset != nil {
			set("Sunset", dep.Sunset.UTC().Format(http.TimeFormat))
		}
		if dep.Successor != "" {
			set("Link", "<"+dep.Successor+`>; rel="successor-version"`)
		}
	}
}

// retrySeconds is Retry-After: whole seconds until at, at least 1 (0 would
// invite an immediate retry that fails again).
func retrySeconds(at, now time.Time) int64 {
	return max(int64(math.Ceil(at.Sub(now).Seconds())), 1)
}
