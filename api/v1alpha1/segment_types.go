package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SegmentSpec is a reusable group of contexts.
type SegmentSpec struct {
	// key identifies the segment in in_segment and not_in_segment clauses.
	// Defaults to metadata.name; status.key shows the key in effect.
	// +optional
	Key Key `json:"key,omitempty"`

	// name is a human-readable name shown by the CLI and dashboard.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Name string `json:"name,omitempty"`

	// description says who is in the segment and why.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Description string `json:"description,omitempty"`

	// included context keys are always members (unless excluded).
	// +kubebuilder:validation:MaxItems=10000
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	// +optional
	Included []string `json:"included,omitempty"`

	// excluded context keys are never members; exclusion wins over inclusion
	// and rules.
	// +kubebuilder:validation:MaxItems=10000
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	// +optional
	Excluded []string `json:"excluded,omitempty"`

	// rules make a context a member when any rule matches (a rule matches when
	// all its clauses do).
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:XValidation:rule="self.all(r, !has(r.id) || self.exists_one(o, has(o.id) && o.id == r.id))",message="spec.rules: rule ids must be unique"
	// +listType=atomic
	// +optional
	Rules []SegmentRule `json:"rules,omitempty"`
}

// SegmentRule matches contexts whose attributes satisfy all its clauses.
type SegmentRule struct {
	// id identifies the rule for the CLI (remove-rule).
	// +kubebuilder:validation:MaxLength=64
	// +optional
	ID string `json:"id,omitempty"`

	// description says what the rule is for.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Description string `json:"description,omitempty"`

	// clauses must all match for the rule to match.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	Clauses []Clause `json:"clauses"`
}

// SegmentStatus is the observed state of a segment.
type SegmentStatus struct {
	CommonStatus `json:",inline"`

	// key is the segment key in effect (spec.key, or metadata.name when unset).
	// +optional
	Key string `json:"key,omitempty"`
}

// Segment is a reusable group of contexts that feature flags target with
// in_segment and not_in_segment clauses.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=seg,categories=waygate
// +kubebuilder:printcolumn:name="Key",type=string,JSONPath=`.status.key`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Segment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the segment's membership.
	Spec SegmentSpec `json:"spec"`

	// status is computed by the operator.
	// +optional
	Status SegmentStatus `json:"status,omitempty"`
}

// Key returns the segment key in effect: spec.key, or the object's name.
func (s *Segment) Key() string {
	if s.Spec.Key != "" {
		return string(s.Spec.Key)
	}
	return s.Name
}

// RuleClauses returns the clauses of each rule, in rule order.
func (s *Segment) RuleClauses() [][]Clause {
	out := make([][]Clause, len(s.Spec.Rules))
	for i, r := range s.Spec.Rules {
		out[i] = r.Clauses
	}
	return out
}

// Common returns the status fields every kind shares.
func (s *Segment) Common() *CommonStatus { return &s.Status.CommonStatus }

// SegmentList is a list of Segments.
// +kubebuilder:object:root=true
type SegmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Segment `json:"items"`
}

func init() {
	knownTypes = append(knownTypes, &Segment{}, &SegmentList{})
}
