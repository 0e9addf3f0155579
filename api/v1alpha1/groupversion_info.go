// Package v1alpha1 contains the Waygate API: route gates, feature flags,
// segments, rate limit policies and the audit entries that record every change
// to them.
//
// +kubebuilder:object:generate=true
// +groupName=waygate.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of every Waygate kind.
var GroupVersion = schema.GroupVersion{Group: "waygate.dev", Version: "v1alpha1"}

// knownTypes are the kinds and lists of this version; each kind's file adds
// its own in init.
var knownTypes []runtime.Object

// AddToScheme adds the Waygate kinds to a runtime.Scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, knownTypes...)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
