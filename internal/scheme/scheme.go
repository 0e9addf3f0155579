// Package scheme is the runtime.Scheme every Waygate program shares: the
// built-in kinds and Waygate's.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// Scheme knows the built-in kinds and Waygate's.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := waygatev1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()
