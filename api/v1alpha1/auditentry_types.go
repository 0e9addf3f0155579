package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Platform is where a change came from.
// +kubebuilder:validation:Enum=kubectl;gitops;cli;dashboard;api;system
type Platform string

// The platforms a change can come from.
const (
	PlatformKubectl   Platform = "kubectl"
	PlatformGitOps    Platform = "gitops"
	PlatformCLI       Platform = "cli"
	PlatformDashboard Platform = "dashboard"
	PlatformAPI       Platform = "api"
	PlatformSystem    Platform = "system"
)

// AuditEntrySpec is one recorded change. It is immutable once written.
type AuditEntrySpec struct {
	// path is what changed: a route key (GET:/payments), "__global__" for
	// namespace-wide maintenance, a service's key for service-wide maintenance,
	// "flag:<key>" or "segment:<key>".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Path string `json:"path"`

	// action is what happened, e.g. maintenance_on, maintenance_off, enable,
	// disable, env_gate, deprecate, global_maintenance_on,
	// global_maintenance_off, rl_policy_created, rl_policy_updated,
	// rl_policy_deleted, rl_reset, flag_created, flag_updated, flag_enabled,
	// flag_disabled, flag_deleted, segment_created, segment_updated,
	// segment_deleted, route_created, route_updated, route_deleted,
	// maintenance_scheduled; audit_tampered for a journal record the audit
	// webhook did not write, audit_gap for changes written past the audit
	// webhook (a generation or journal records missing), audit_pruned for a
	// retention run that deleted entries.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Action string `json:"action"`

	// actor is who made the change: the Kubernetes username of the request,
	// system:scheduler for changes a maintenance window or a disable's until
	// made, system:retention for audit_pruned, or unknown when nobody can
	// tell (a deletion the webhook did not see, audit_tampered, audit_gap).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Actor string `json:"actor"`

	// platform is where the change came from: kubectl, gitops (Argo CD, Flux,
	// Helm), cli (waygate), dashboard, api (any other client), or system.
	Platform Platform `json:"platform"`

	// oldStatus is the state before the change, e.g. active.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	OldStatus string `json:"oldStatus,omitempty"`

	// newStatus is the state after the change, e.g. maintenance.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	NewStatus string `json:"newStatus,omitempty"`

	// reason is the reason given with the change, if any.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`

	// timestamp is when the change was made (UTC, microseconds).
	Timestamp metav1.MicroTime `json:"timestamp"`

	// target is the object that changed.
	Target AuditTarget `json:"target"`

	// changes summarises what changed, one short line per field, e.g.
	// "spec.limit: 100/minute → 200/minute".
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	// +optional
	Changes []string `json:"changes,omitempty"`
}

// AuditTarget identifies the object an audit entry is about.
type AuditTarget struct {
	// kind is the kind of the object, e.g. RouteGate; AuditEntry for the
	// entries retention pruned (action audit_pruned).
	// +kubebuilder:validation:Enum=RouteGate;FeatureFlag;Segment;RateLimitPolicy;AuditEntry
	Kind string `json:"kind"`

	// name is the object's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// namespace is the object's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// uid is the object's UID, telling apart objects that reused a name.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	UID string `json:"uid,omitempty"`

	// generation is the object's metadata.generation after the change.
	// +optional
	Generation int64 `json:"generation,omitempty"`
}

// AuditEntry records one change to a Waygate resource: who made it, when,
// from where, what it affected and the state before and after. Entries are
// append-only: the spec cannot be changed, and only the operator may delete
// entries (retention). An entry has no status: it is complete when written.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=ae,categories=waygate
// +kubebuilder:selectablefield:JSONPath=`.spec.path`
// +kubebuilder:selectablefield:JSONPath=`.spec.actor`
// +kubebuilder:selectablefield:JSONPath=`.spec.action`
// +kubebuilder:selectablefield:JSONPath=`.spec.target.kind`
// +kubebuilder:selectablefield:JSONPath=`.spec.target.name`
// +kubebuilder:printcolumn:name="Time",type=date,JSONPath=`.spec.timestamp`
// +kubebuilder:printcolumn:name="Actor",type=string,JSONPath=`.spec.actor`
// +kubebuilder:printcolumn:name="Platform",type=string,JSONPath=`.spec.platform`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.spec.path`
// +kubebuilder:printcolumn:name="Old",type=string,JSONPath=`.spec.oldStatus`
// +kubebuilder:printcolumn:name="New",type=string,JSONPath=`.spec.newStatus`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.target.name`,priority=1
type AuditEntry struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the recorded change; it cannot be modified.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="audit entries are append-only: spec cannot be changed"
	Spec AuditEntrySpec `json:"spec"`
}

// AuditEntryList is a list of AuditEntries.
// +kubebuilder:object:root=true
type AuditEntryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuditEntry `json:"items"`
}

func init() {
	knownTypes = append(knownTypes, &AuditEntry{}, &AuditEntryList{})
}
