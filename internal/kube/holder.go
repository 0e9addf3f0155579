package kube

import (
	"iter"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Claim is an object, or what a reader keeps of one, that may claim a key
// other objects claim too.
type Claim interface {
	GetName() string
	GetCreationTimestamp() metav1.Time
}

// Holder returns the object that holds a key several objects claim: the
// oldest, then the lowest name, so that the operator, the data plane and the
// CLI agree on it.
func Holder[T any, P interface {
	*T
	Claim
}](items []T) P {
	return oldest(func(yield func(P) bool) {
		for i := range items {
			if !yield(&items[i]) {
				return
			}
		}
	})
}

// HolderOf is Holder of claims held by pointer.
func HolderOf[P Claim](claims []P) P { return oldest(slices.Values(claims)) }

func oldest[P Claim](claims iter.Seq[P]) P {
	var best P
	found := false
	for p := range claims {
		if !found || createdBefore(p, best) {
			best, found = p, true
		}
	}
	return best
}

func createdBefore(a, b Claim) bool {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.GetName() < b.GetName()
}
