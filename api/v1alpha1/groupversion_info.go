// Package v1alpha1 contains the Waygate API: route gates, feature flags,
// segments, rate limit policies and the audit entries that record every change
// to them.
//
// +kubebuilder:object:generate=true
// +groupName=waygate.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every Waygate kind.
	GroupVersion = schema.GroupVersion{Group: "waygate.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the Waygate kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Waygate kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
