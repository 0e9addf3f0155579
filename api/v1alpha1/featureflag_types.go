package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FlagType is the type of every variation value of a flag.
// +kubebuilder:validation:Enum=boolean;string;integer;float;json
type FlagType string

// The flag types, as OpenFeature resolves them.
const (
	FlagBoolean FlagType = "boolean"
	FlagString  FlagType = "string"
	FlagInteger FlagType = "integer"
	FlagFloat   FlagType = "float"
	FlagJSON    FlagType = "json"
)

// FeatureFlagSpec is a feature flag and its targeting.
// +kubebuilder:validation:XValidation:rule="self.variations.exists(v, v.name == self.offVariation)",messageExpression="'spec.offVariation \"' + self.offVariation + '\" is not a variation of this flag: use the name of one of spec.variations'",fieldPath=".offVariation"
// +kubebuilder:validation:XValidation:rule="!has(self.fallthrough.variation) || self.variations.exists(v, v.name == self.fallthrough.variation)",messageExpression="'spec.fallthrough.variation \"' + self.fallthrough.variation + '\" is not a variation of this flag: use the name of one of spec.variations'",fieldPath=".fallthrough.variation"
// +kubebuilder:validation:XValidation:rule="!has(self.fallthrough.rollout) || self.fallthrough.rollout.all(w, self.variations.exists(v, v.name == w.variation))",message="every spec.fallthrough.rollout[].variation must name one of spec.variations",fieldPath=".fallthrough.rollout"
// +kubebuilder:validation:XValidation:rule="!has(self.targets) || self.targets.all(t, self.variations.exists(v, v.name == t.variation))",message="every spec.targets[].variation must name one of spec.variations",fieldPath=".targets"
// +kubebuilder:validation:XValidation:rule="!has(self.rules) || self.rules.all(r, (!has(r.variation) || self.variations.exists(v, v.name == r.variation)) && (!has(r.rollout) || r.rollout.all(w, self.variations.exists(v, v.name == w.variation))))",message="every spec.rules[].variation and spec.rules[].rollout[].variation must name one of spec.variations",fieldPath=".rules"
type FeatureFlagSpec struct {
	// key identifies the flag to SDKs and in prerequisites (OpenFeature flag
	// key). Defaults to metadata.name; status.key shows the key in effect.
	// +optional
	Key Key `json:"key,omitempty"`

	// name is a human-readable name shown by the CLI and dashboard.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Name string `json:"name,omitempty"`

	// description says what the flag is for.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Description string `json:"description,omitempty"`

	// type is the type of every variation value.
	// +kubebuilder:default=boolean
	// +optional
	Type FlagType `json:"type,omitempty"`

	// variations are the values the flag can serve, each with a unique name.
	// Every value must be of the flag's type.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=50
	// +listType=map
	// +listMapKey=name
	Variations []Variation `json:"variations"`

	// offVariation is served when the flag is disabled or a prerequisite fails.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	OffVariation string `json:"offVariation"`

	// fallthrough is served when the flag is enabled and no target or rule
	// matches.
	Fallthrough Serve `json:"fallthrough"`

	// enabled turns targeting on. A disabled flag serves offVariation to
	// everyone.
	// +kubebuilder:default=true
	// +optional
	Enabled bool `json:"enabled"`

	// prerequisites are flags that must serve a given variation for this flag's
	// targeting to apply; otherwise it serves offVariation. Prerequisite flags
	// are looked up by key in the same namespace; cycles are reported in the
	// Ready condition.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	Prerequisites []Prerequisite `json:"prerequisites,omitempty"`

	// targets serve a variation to listed context keys, before any rule.
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	// +optional
	Targets []Target `json:"targets,omitempty"`

	// rules are evaluated in order after targets; the first rule whose clauses
	// all match serves its variation or rollout.
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:XValidation:rule="self.all(r, !has(r.id) || self.exists_one(o, has(o.id) && o.id == r.id))",message="spec.rules: rule ids must be unique"
	// +listType=atomic
	// +optional
	Rules []FlagRule `json:"rules,omitempty"`

	// tags group flags in the CLI and dashboard.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	// +optional
	Tags []string `json:"tags,omitempty"`

	// maintainer is the person or team who owns the flag.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Maintainer string `json:"maintainer,omitempty"`

	// temporary marks a flag meant to be removed once rolled out.
	// +optional
	Temporary bool `json:"temporary,omitempty"`
}

// Variation is one value a flag can serve.
type Variation struct {
	// name identifies the variation in offVariation, fallthrough, targets and
	// rules, e.g. "on", "off", "blue".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Name string `json:"name"`

	// value is the value served, of the flag's type: true/false, a string, a
	// number, or any JSON for json flags.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	Value apiextensionsv1.JSON `json:"value"`

	// description says what the variation means.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Description string `json:"description,omitempty"`
}

// Serve is what a rule or the fallthrough serves: one variation, or a rollout.
// +kubebuilder:validation:XValidation:rule="has(self.variation) != has(self.rollout)",message="set exactly one of variation or rollout"
type Serve struct {
	// variation is the name of the variation to serve.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Variation string `json:"variation,omitempty"`

	// rollout splits contexts between variations by weight.
	// +optional
	Rollout Rollout `json:"rollout,omitempty"`
}

// Prerequisite is a flag that must serve a given variation.
type Prerequisite struct {
	// flag is the key of the prerequisite flag, in the same namespace.
	Flag Key `json:"flag"`

	// variation is the variation the prerequisite flag must serve.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Variation string `json:"variation"`
}

// Target serves a variation to individual contexts.
type Target struct {
	// variation is the name of the variation served to these contexts.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Variation string `json:"variation"`

	// contextKind is the kind of context the keys belong to.
	// +kubebuilder:default=user
	// +kubebuilder:validation:MaxLength=63
	// +optional
	ContextKind string `json:"contextKind,omitempty"`

	// keys are the context keys (OpenFeature targetingKey) that get the
	// variation.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10000
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	Keys []string `json:"keys"`
}

// FlagRule serves a variation or a rollout to contexts that match all its
// clauses.
// +kubebuilder:validation:XValidation:rule="has(self.variation) != has(self.rollout)",message="a rule serves exactly one of variation or rollout"
type FlagRule struct {
	// id identifies the rule for the CLI (remove-rule) and evaluation reasons.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	ID string `json:"id,omitempty"`

	// description says what the rule is for.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Description string `json:"description,omitempty"`

	// clauses must all match for the rule to apply.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	Clauses []Clause `json:"clauses"`

	// variation is the name of the variation served.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Variation string `json:"variation,omitempty"`

	// rollout splits matching contexts between variations by weight.
	// +optional
	Rollout Rollout `json:"rollout,omitempty"`
}

// FeatureFlagStatus is the observed state of a flag.
type FeatureFlagStatus struct {
	CommonStatus `json:",inline"`

	// key is the flag key in effect (spec.key, or metadata.name when unset).
	// +optional
	Key string `json:"key,omitempty"`
}

// FeatureFlag is a feature flag with variations, targeting rules, individual
// targets, prerequisites and percentage rollouts, evaluated with OpenFeature
// semantics.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ff,categories=waygate
// +kubebuilder:printcolumn:name="Key",type=string,JSONPath=`.status.key`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Enabled",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FeatureFlag struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the flag and its targeting.
	Spec FeatureFlagSpec `json:"spec"`

	// status is computed by the operator.
	// +optional
	Status FeatureFlagStatus `json:"status,omitempty"`
}

// Key returns the flag key in effect: spec.key, or the object's name.
func (f *FeatureFlag) Key() string {
	if f.Spec.Key != "" {
		return string(f.Spec.Key)
	}
	return f.Name
}

// RuleClauses returns the clauses of each rule, in rule order.
func (f *FeatureFlag) RuleClauses() [][]Clause {
	out := make([][]Clause, len(f.Spec.Rules))
	for i, r := range f.Spec.Rules {
		out[i] = r.Clauses
	}
	return out
}

// Common returns the status fields every kind shares.
func (f *FeatureFlag) Common() *CommonStatus { return &f.Status.CommonStatus }

// FeatureFlagList is a list of FeatureFlags.
// +kubebuilder:object:root=true
type FeatureFlagList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FeatureFlag `json:"items"`
}

func init() {
	knownTypes = append(knownTypes, &FeatureFlag{}, &FeatureFlagList{})
}
