package cli

import (
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/scheme"
)

// checkGitOps refuses to change what GitOps manages, unless forced: the
// next sync would silently undo the change.
func checkGitOps(obj client.Object, force bool) error {
	tool, mark := audit.ManagedBy(obj)
	if tool == "" || force {
		return nil
	}
	return fmt.Errorf("%s %s/%s is managed by %s (%s): the next sync reverts a change made here; change it in Git, or pass --force to change it anyway",
		kindOf(obj), obj.GetNamespace(), obj.GetName(), tool, mark)
}

// kindOf is the lower-case kind of obj: routegate, featureflag, ...
func kindOf(obj client.Object) string {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return "object"
	}
	return strings.ToLower(gvks[0].Kind)
}
