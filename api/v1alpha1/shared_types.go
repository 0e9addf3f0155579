package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionReady is the condition every Waygate kind reports: True once the
// controller has computed the object's effective state, False with a reason
// and an actionable message when it cannot (a missing reference, a cycle, a
// conflicting object).
const ConditionReady = "Ready"

// CommonStatus is the part of the status every reconciled Waygate kind shares.
type CommonStatus struct {
	// observedGeneration is the metadata.generation the controller last acted on.
	// When it is lower than metadata.generation the status is not yet up to date.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions describe the object's current state. The Ready condition is True
	// when the object is in effect as written, and False with a reason and a
	// message saying what to fix otherwise.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// auditSequence is the sequence number of the last change to this object
	// written to the audit log (as an AuditEntry).
	// +optional
	AuditSequence int64 `json:"auditSequence,omitempty"`

	// auditedGeneration is the metadata.generation up to which every change
	// of the spec is accounted for in the audit log. A generation above it
	// that no journal record describes was written past the audit webhook,
	// and is recorded as an audit_gap entry.
	// +optional
	AuditedGeneration int64 `json:"auditedGeneration,omitempty"`
}

// Operator compares a context attribute with a clause's values.
// +kubebuilder:validation:Enum=is;is_not;contains;not_contains;starts_with;ends_with;matches;not_matches;gt;gte;lt;lte;before;after;in;not_in;in_segment;not_in_segment;semver_eq;semver_lt;semver_gt
type Operator string

// The clause operators, as Waygate users know them.
const (
	OperatorIs           Operator = "is"
	OperatorIsNot        Operator = "is_not"
	OperatorContains     Operator = "contains"
	OperatorNotContains  Operator = "not_contains"
	OperatorStartsWith   Operator = "starts_with"
	OperatorEndsWith     Operator = "ends_with"
	OperatorMatches      Operator = "matches"
	OperatorNotMatches   Operator = "not_matches"
	OperatorGT           Operator = "gt"
	OperatorGTE          Operator = "gte"
	OperatorLT           Operator = "lt"
	OperatorLTE          Operator = "lte"
	OperatorBefore       Operator = "before"
	OperatorAfter        Operator = "after"
	OperatorIn           Operator = "in"
	OperatorNotIn        Operator = "not_in"
	OperatorInSegment    Operator = "in_segment"
	OperatorNotInSegment Operator = "not_in_segment"
	OperatorSemverEq     Operator = "semver_eq"
	OperatorSemverLT     Operator = "semver_lt"
	OperatorSemverGT     Operator = "semver_gt"
)

// Clause is one condition of a targeting rule. A rule's clauses must all match
// (AND); a clause matches when the attribute matches any of its values (OR).
// +kubebuilder:validation:XValidation:rule="!(self.operator in ['in_segment', 'not_in_segment']) || self.attribute == 'key'",message="attribute must be \"key\" for in_segment and not_in_segment: segments match context keys",fieldPath=".attribute"
type Clause struct {
	// attribute is the context attribute the clause reads: "key" (the
	// OpenFeature targetingKey), "kind", or any custom attribute such as
	// "email", "country" or "app_version".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Attribute string `json:"attribute"`

	// operator compares the attribute with the values. Numbers (gt, gte, lt,
	// lte), times (before, after; RFC 3339), versions (semver_*) and regular
	// expressions (matches, not_matches; RE2 syntax) are written as strings.
	// in_segment and not_in_segment take segment keys. A missing attribute makes
	// every operator false except is_not and not_in.
	Operator Operator `json:"operator"`

	// values are compared with the attribute; the clause matches when any value
	// matches.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=500
	// +kubebuilder:validation:items:MaxLength=1024
	// +listType=atomic
	Values []string `json:"values"`

	// negate inverts the result of the clause.
	// +optional
	Negate bool `json:"negate,omitempty"`
}

// WeightedVariation is one slice of a percentage rollout.
type WeightedVariation struct {
	// variation is the name of a variation of this flag.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Variation string `json:"variation"`

	// weight is this variation's share in thousandths of a percent: the
	// weights of a rollout add up to 100000 (100%). 25% is 25000.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	Weight int32 `json:"weight"`
}

// Rollout splits the contexts a rule or the fallthrough serves between
// variations. A context's bucket is a stable hash of flag key, context kind
// and context key, so a context keeps its variation as weights grow.
// +kubebuilder:validation:MinItems=1
// +kubebuilder:validation:MaxItems=20
// +kubebuilder:validation:XValidation:rule="self.map(w, w.weight).sum() == 100000",message="rollout weights must add up to 100000 (100%; 25% is 25000)"
// +listType=atomic
type Rollout []WeightedVariation

// RouteKey names a route: "METHOD:/path" (GET:/payments) for one method,
// "/path" for every method of the path, or "*" for every route of a service.
// +kubebuilder:validation:MaxLength=512
// +kubebuilder:validation:XValidation:rule="self == '*' || self.matches('^((GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE|CONNECT):)?/[^[:space:]?#]*$')",messageExpression="'\"' + self + '\" is not a route key: write METHOD:/path (e.g. GET:/payments, method in upper case), /path for all methods, or * for every route of the service'"
// +kubebuilder:validation:XValidation:rule="self == '*' || !(self.matches('[^/][{]') || self.matches('[}][^/]') || self.matches('[.][.][.][}]/'))",message="a path template is a whole segment, {name} or a last {name...}: write /files/{name}, not /files/{name}.json or /{rest...}/x"
// +kubebuilder:validation:XValidation:rule="self == '*' || !(self.matches('[%;]') || self.matches('//') || self.matches('(^|/|:)[.][.]?(/|$)'))",messageExpression="'\"' + self + '\" is not a route key the gate can match: write its path decoded (no %XX), without ;parameters, \".\" or \"..\" segments or repeated slashes, as requests are matched after they are cleaned'"
type RouteKey string

// ServiceName names the service a route belongs to.
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",messageExpression="'\"' + self + '\" is not a service name: use lower-case letters, digits, \"-\" and \".\", starting and ending with a letter or digit'"
type ServiceName string

// Key identifies a flag or a segment to SDKs, prerequisites and clauses.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9][A-Za-z0-9._-]*$')",messageExpression="'\"' + self + '\" is not a key: use letters, digits, \".\", \"_\" and \"-\", starting with a letter or digit'"
type Key string
