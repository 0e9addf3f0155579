package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RateLimitAlgorithm is how requests are counted.
// +kubebuilder:validation:Enum=fixed_window;sliding_window;token_bucket
type RateLimitAlgorithm string

// The rate limit algorithms.
const (
	FixedWindow   RateLimitAlgorithm = "fixed_window"
	SlidingWindow RateLimitAlgorithm = "sliding_window"
	TokenBucket   RateLimitAlgorithm = "token_bucket"
)

// KeyStrategy is what a caller's requests are counted by.
// +kubebuilder:validation:Enum=ip;user;api_key;header;global
type KeyStrategy string

// The key strategies.
const (
	KeyByIP     KeyStrategy = "ip"
	KeyByUser   KeyStrategy = "user"
	KeyByAPIKey KeyStrategy = "api_key"
	KeyByHeader KeyStrategy = "header"
	KeyGlobal   KeyStrategy = "global"
)

// OnMissingKey is what happens to a request without the key its policy
// counts by.
// +kubebuilder:validation:Enum=exempt;fallback_ip;block
type OnMissingKey string

// The on-missing-key behaviours.
const (
	MissingKeyExempt     OnMissingKey = "exempt"
	MissingKeyFallbackIP OnMissingKey = "fallback_ip"
	MissingKeyBlock      OnMissingKey = "block"
)

// ResetAnnotation on a RateLimitPolicy asks the data plane to reset its
// counters; its value is when the reset was asked for (RFC 3339). The
// counters of a policy start from zero whenever it changes.
const ResetAnnotation = "waygate.dev/reset-at"

// RateLimitPolicySpec limits how often callers may use a route, a service or
// every route in the namespace.
// +kubebuilder:validation:XValidation:rule="self.keyStrategy != 'header' || (has(self.keyHeader) && size(self.keyHeader) > 0)",message="spec.keyHeader is required when keyStrategy is header: name the request header to count by, e.g. X-Tenant-ID",fieldPath=".keyHeader"
// +kubebuilder:validation:XValidation:rule="!has(self.keyHeader) || size(self.keyHeader) == 0 || self.keyStrategy == 'header'",message="spec.keyHeader is only used with keyStrategy header; remove it or set keyStrategy: header",fieldPath=".keyHeader"
// +kubebuilder:validation:XValidation:rule="!has(self.tiers) || size(self.tiers) == 0 || (has(self.tierHeader) && size(self.tierHeader) > 0) || (has(self.tierClaim) && size(self.tierClaim) > 0)",message="spec.tierClaim or spec.tierHeader is required with tiers: name the token claim (e.g. plan) or the request header (e.g. X-Plan) that carries the caller's tier",fieldPath=".tierClaim"
type RateLimitPolicySpec struct {
	// route is the route key the policy applies to: "METHOD:/path",
	// "/path" for every method, or "*" for every route of spec.service (every
	// route in the namespace when service is empty).
	Route RouteKey `json:"route"`

	// service scopes the policy to one service's routes.
	// +optional
	Service ServiceName `json:"service,omitempty"`

	// caseSensitive matches the route's path letter case and all, as
	// RouteGate's caseSensitive does; by default case is ignored, so /Search
	// is counted by a limit on /search.
	// +optional
	CaseSensitive bool `json:"caseSensitive,omitempty"`

	// limit is the number of requests allowed per period: "<count>/<unit>",
	// unit one of second, minute, hour, day, month, year; e.g. 100/minute.
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[1-9][0-9]{0,9}/(second|minute|hour|day|month|year)$')",messageExpression="'spec.limit \"' + self + '\" is not a limit: write <count>/<unit>, e.g. 100/minute, with unit one of second, minute, hour, day, month, year'"
	Limit string `json:"limit"`

	// algorithm is how requests are counted: fixed_window resets at each
	// period boundary, sliding_window weighs the previous period in, and
	// token_bucket refills continuously and allows bursts of up to
	// limit + burst requests.
	// +kubebuilder:default=fixed_window
	// +optional
	Algorithm RateLimitAlgorithm `json:"algorithm,omitempty"`

	// keyStrategy is what requests are counted by: the client's network
	// (ip: the X-Forwarded-For entry the gateway appended, the last one,
	// stepping left over the gate's --trusted-hops and --trusted-proxies;
	// Envoy's source address for ext_authz; one IPv4 address or one IPv6
	// /64 by default), the authenticated user, the API key, a request header
	// (keyHeader), or one global counter. user and api_key come from the
	// bearer token the gate verifies (--jwt-*), or from identity headers
	// only when the gate's --trusted-headers lists them (its gateway
	// overwrites them); a client's own headers never count.
	// +kubebuilder:default=ip
	// +optional
	KeyStrategy KeyStrategy `json:"keyStrategy,omitempty"`

	// keyHeader is the request header counted by when keyStrategy is header.
	// The gate reads it only when its --trusted-headers lists it: the
	// gateway must set it on every request, or a client picks its own
	// counter.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	KeyHeader string `json:"keyHeader,omitempty"`

	// onMissingKey is what happens to a request without the key: exempt lets
	// it through uncounted, fallback_ip counts it by client ip, block answers
	// 429.
	// +kubebuilder:default=exempt
	// +optional
	OnMissingKey OnMissingKey `json:"onMissingKey,omitempty"`

	// burst is how many requests above the limit a caller may make at once
	// (enforced by every algorithm).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	Burst int32 `json:"burst,omitempty"`

	// tiers give callers on named plans their own limit; a caller whose
	// tier (tierClaim or tierHeader) names no tier gets spec.limit.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	// +optional
	Tiers []RateLimitTier `json:"tiers,omitempty"`

	// tierClaim is the claim of the caller's verified bearer token that
	// names its tier (the gate verifies tokens when run with --jwt-*).
	// +kubebuilder:validation:MaxLength=128
	// +optional
	TierClaim string `json:"tierClaim,omitempty"`

	// tierHeader is the request header that names the caller's tier, read
	// only when the gate's --trusted-headers lists it (the gateway
	// overwrites it on every request): a client sending its own would pick
	// its own limit. Without a verified tierClaim or a trusted header the
	// caller gets spec.limit.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	TierHeader string `json:"tierHeader,omitempty"`

	// exemptCIDRs are client address ranges never limited, e.g. 10.0.0.0/8.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",messageExpression="'spec.exemptCIDRs: \"' + self + '\" is not a CIDR; write an address range such as 10.0.0.0/8 or 2001:db8::/32'"
	// +listType=set
	// +optional
	ExemptCIDRs []string `json:"exemptCIDRs,omitempty"`

	// exemptRoles are caller roles never limited: the roles claim of a
	// verified bearer token, or the roles header when the gate's
	// --trusted-headers lists it.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=set
	// +optional
	ExemptRoles []string `json:"exemptRoles,omitempty"`

	// enabled turns the policy on; a disabled policy limits nothing.
	// +kubebuilder:default=true
	// +optional
	Enabled bool `json:"enabled"`
}

// RateLimitTier is the limit of callers on one plan.
type RateLimitTier struct {
	// name is the tier's name as the tier header carries it, e.g. free, pro.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// limit is the tier's limit, "<count>/<unit>" or "unlimited".
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self == 'unlimited' || self.matches('^[1-9][0-9]{0,9}/(second|minute|hour|day|month|year)$')",messageExpression="'tier limit \"' + self + '\" is not a limit: write <count>/<unit>, e.g. 1000/hour, with unit one of second, minute, hour, day, month, year, or unlimited'"
	Limit string `json:"limit"`
}

// RateLimitPolicyStatus is the observed state of a rate limit policy.
type RateLimitPolicyStatus struct {
	CommonStatus `json:",inline"`

	// scope is what the policy applies to: route, service or namespace.
	// +optional
	Scope string `json:"scope,omitempty"`
}

// RateLimitPolicy limits request rates for a route, a service or every route
// in the namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rlp,categories=waygate
// +kubebuilder:printcolumn:name="Route",type=string,JSONPath=`.spec.route`
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.service`
// +kubebuilder:printcolumn:name="Limit",type=string,JSONPath=`.spec.limit`
// +kubebuilder:printcolumn:name="Algorithm",type=string,JSONPath=`.spec.algorithm`
// +kubebuilder:printcolumn:name="Key",type=string,JSONPath=`.spec.keyStrategy`
// +kubebuilder:printcolumn:name="Enabled",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RateLimitPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the limit and how it is applied.
	Spec RateLimitPolicySpec `json:"spec"`

	// status is computed by the operator.
	// +optional
	Status RateLimitPolicyStatus `json:"status,omitempty"`
}

// Common returns the status fields every kind shares.
func (p *RateLimitPolicy) Common() *CommonStatus { return &p.Status.CommonStatus }

// RateLimitPolicyList is a list of RateLimitPolicies.
// +kubebuilder:object:root=true
type RateLimitPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RateLimitPolicy `json:"items"`
}

func init() {
	knownTypes = append(knownTypes, &RateLimitPolicy{}, &RateLimitPolicyList{})
}
