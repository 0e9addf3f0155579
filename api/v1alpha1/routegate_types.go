package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RouteState is the state of a route.
// +kubebuilder:validation:Enum=active;maintenance;disabled;env_gated;deprecated
type RouteState string

// The route states. A request to a route in maintenance or disabled gets a 503,
// to an env_gated route outside its environments a 403; deprecated routes are
// served with Deprecation, Sunset and Link headers.
const (
	RouteActive      RouteState = "active"
	RouteMaintenance RouteState = "maintenance"
	RouteDisabled    RouteState = "disabled"
	RouteEnvGated    RouteState = "env_gated"
	RouteDeprecated  RouteState = "deprecated"
)

// AllRoutes is the route key of a service-wide gate: it applies to every
// route of spec.service (every route in the namespace when service is empty).
const AllRoutes = "*"

// RouteGateSpec is the desired state of one route.
// +kubebuilder:validation:XValidation:rule="self.state != 'env_gated' || (has(self.allowedEnvs) && size(self.allowedEnvs) > 0)",message="spec.allowedEnvs is required when state is env_gated: list the environments that may serve the route, e.g. [staging]",fieldPath=".allowedEnvs"
// +kubebuilder:validation:XValidation:rule="!has(self.exempt) || size(self.exempt) == 0 || self.route == '*'",message="spec.exempt is only allowed when route is \"*\" (a service-wide gate); remove it or set route to \"*\"",fieldPath=".exempt"
// +kubebuilder:validation:XValidation:rule="self.route != '*' || self.state in ['active', 'maintenance']",message="a service-wide gate (route \"*\") can only be active or maintenance; gate single routes to disable or env-gate them",fieldPath=".state"
// +kubebuilder:validation:XValidation:rule="!has(self.window) || self.state in ['active', 'maintenance']",message="spec.window schedules maintenance and needs state active or maintenance; remove the window or change the state",fieldPath=".window"
// +kubebuilder:validation:XValidation:rule="!has(self.until) || self.state == 'disabled'",message="spec.until ends a disable and needs state disabled; remove until, or set state disabled (for maintenance that ends by itself, use spec.window)",fieldPath=".until"
// +kubebuilder:validation:XValidation:rule="!has(self.forceActive) || !self.forceActive || (self.state == 'active' && !has(self.window) && self.route != '*')",message="spec.forceActive keeps a single route active: it needs state active, no window and a route other than \"*\"",fieldPath=".forceActive"
// +kubebuilder:validation:XValidation:rule="!has(self.includeForceActive) || !self.includeForceActive || self.route == '*'",message="spec.includeForceActive only applies to a service-wide gate (route \"*\")",fieldPath=".includeForceActive"
// +kubebuilder:validation:XValidation:rule="self.state != 'deprecated' || has(self.deprecation)",message="spec.deprecation is required when state is deprecated: give at least a sunset time or a successor",fieldPath=".deprecation"
type RouteGateSpec struct {
	// route is the route key: "METHOD:/path" (GET:/payments) for one method,
	// "/path" for every method of the path, or "*" for every route of
	// spec.service (service-wide maintenance). Path templates such as
	// /items/{item_id} are keys as written.
	Route RouteKey `json:"route"`

	// service is the name of the service the route belongs to. A service-wide
	// gate (route "*") with a service applies to the routes of that service; with
	// no service it applies to every route in the namespace.
	// +optional
	Service ServiceName `json:"service,omitempty"`

	// state is the desired state of the route. With a window, maintenance is in
	// effect only between window.start and window.end; with until, a disable
	// is in effect only until then.
	// +kubebuilder:default=active
	// +optional
	State RouteState `json:"state,omitempty"`

	// reason tells callers and the audit log why the route is in its state;
	// it is returned in the 503 body of maintenance and disabled responses.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`

	// allowedEnvs are the environments that serve the route when state is
	// env_gated; elsewhere it answers 403 ENV_GATED.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	// +optional
	AllowedEnvs []string `json:"allowedEnvs,omitempty"`

	// window schedules maintenance: the route keeps its state until start, is in
	// maintenance from start, and returns at end. Responses in the window carry
	// Retry-After until end.
	// +optional
	Window *MaintenanceWindow `json:"window,omitempty"`

	// until ends a disable by itself (state disabled only): the route is
	// disabled until this time (RFC 3339, e.g. 2026-06-01T05:00:00Z) and
	// active from it, with no further write; the operator records the end
	// in the audit log as system:scheduler's enable. Disabled responses
	// carry Retry-After until then.
	// +optional
	Until *metav1.Time `json:"until,omitempty"`

	// exempt lists route keys that stay served during a service-wide gate's
	// maintenance (route "*" only), e.g. GET:/health.
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +optional
	Exempt []RouteKey `json:"exempt,omitempty"`

	// caseSensitive matches the route's path (and, for route "*", the
	// exempt keys' paths) letter case and all. By default case is ignored:
	// Express, ASP.NET and IIS route /Payments/42 to /payments/{id}, and a
	// gate that told them apart would let it through. Set it only when the
	// upstream serves different routes under paths that differ in case.
	// Template segments match anything either way.
	// +optional
	CaseSensitive bool `json:"caseSensitive,omitempty"`

	// forceActive keeps the route served whatever a service-wide gate says,
	// unless that gate sets includeForceActive.
	// +optional
	ForceActive bool `json:"forceActive,omitempty"`

	// includeForceActive makes a service-wide gate's maintenance apply to
	// forceActive routes too (route "*" only).
	// +optional
	IncludeForceActive bool `json:"includeForceActive,omitempty"`

	// deprecation describes a deprecated route (state deprecated): it is still
	// served, with Deprecation, Sunset and Link headers.
	// +optional
	Deprecation *Deprecation `json:"deprecation,omitempty"`
}

// MaintenanceWindow is a scheduled maintenance period.
// +kubebuilder:validation:XValidation:rule="self.end > self.start",message="window.end must be after window.start"
type MaintenanceWindow struct {
	// start is when maintenance begins (RFC 3339, e.g. 2026-06-01T03:00:00Z).
	Start metav1.Time `json:"start"`

	// end is when maintenance ends and the route returns to its state.
	End metav1.Time `json:"end"`
}

// Deprecation describes how a deprecated route is announced to callers.
// +kubebuilder:validation:XValidation:rule="has(self.sunset) || has(self.successor)",message="spec.deprecation needs a sunset time, a successor, or both"
type Deprecation struct {
	// sunset is when the route will stop being served; sent in the Sunset header.
	// +optional
	Sunset *metav1.Time `json:"sunset,omitempty"`

	// successor is the path or URL that replaces the route; sent as
	// Link: <successor>; rel="successor-version".
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Successor string `json:"successor,omitempty"`
}

// RouteGateStatus is the observed state of a route.
type RouteGateStatus struct {
	CommonStatus `json:",inline"`

	// state is the state in effect now: the spec's state, maintenance inside a
	// window, active once a disable's until has passed, or maintenance
	// imposed by a service-wide gate.
	// +optional
	State RouteState `json:"state,omitempty"`

	// reason is the reason that goes with the state in effect (none when active).
	// +optional
	Reason string `json:"reason,omitempty"`

	// governedBy names the service-wide RouteGate whose maintenance is in effect
	// for this route, if any.
	// +optional
	GovernedBy string `json:"governedBy,omitempty"`

	// nextTransition is when the state in effect will next change on its own
	// (a window starting or ending, a disable reaching its until).
	// +optional
	NextTransition *metav1.Time `json:"nextTransition,omitempty"`
}

// RouteGate controls one route of an API, or every route of a service:
// maintenance, disable, environment gating, scheduled maintenance windows and
// deprecation.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rg,categories=waygate
// +kubebuilder:printcolumn:name="Route",type=string,JSONPath=`.spec.route`
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.service`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`,description="The state in effect now"
// +kubebuilder:printcolumn:name="Desired",type=string,JSONPath=`.spec.state`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
// +kubebuilder:printcolumn:name="Next",type=string,JSONPath=`.status.nextTransition`,priority=1,description="When the state in effect changes next (a window starting or ending, a disable reaching its until)"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RouteGate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the route.
	Spec RouteGateSpec `json:"spec"`

	// status is the state in effect, computed by the operator.
	// +optional
	Status RouteGateStatus `json:"status,omitempty"`
}

// Common returns the status fields every kind shares.
func (r *RouteGate) Common() *CommonStatus { return &r.Status.CommonStatus }

// RouteGateList is a list of RouteGates.
// +kubebuilder:object:root=true
type RouteGateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RouteGate `json:"items"`
}

func init() {
	knownTypes = append(knownTypes, &RouteGate{}, &RouteGateList{})
}
