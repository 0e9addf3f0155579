package kube

import "sigs.k8s.io/controller-runtime/pkg/client"

// Holder returns the object that holds a key several objects claim: the
// oldest, then the lowest name, so that the operator, the data plane and the
// CLI agree on it.
func Holder[T any, P interface {
	*T
	client.Object
}](items []T) P {
	var best P
	for i := range items {
		p := P(&items[i])
		if best == nil || createdBefore(p, best) {
			best = p
		}
	}
	return best
}

func createdBefore(a, b client.Object) bool {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.GetName() < b.GetName()
}
