package cli

import (
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/scheme"
)

// gitopsMarks are the labels and annotations GitOps tools put on what they
// manage, and the tool each names.
var gitopsMarks = []struct {
	annotation, label, value, tool string
}{
	{annotation: "argocd.argoproj.io/tracking-id", tool: "Argo CD"},
	{label: "kustomize.toolkit.fluxcd.io/name", tool: "Flux"},
	{label: "helm.toolkit.fluxcd.io/name", tool: "Flux (HelmRelease)"},
	{label: "app.kubernetes.io/managed-by", value: "Helm", tool: "Helm"},
}

// managedBy names the GitOps tool that manages obj, and the mark that says
// so, or "" when none does.
func managedBy(obj client.Object) (tool, mark string) {
	for _, m := range gitopsMarks {
		if m.annotation != "" {
			if _, ok := obj.GetAnnotations()[m.annotation]; ok {
				return m.tool, "annotation " + m.annotation
			}
			continue
		}
		if v, ok := obj.GetLabels()[m.label]; ok && (m.value == "" || v == m.value) {
			return m.tool, "label " + m.label
		}
	}
	// The field managers the audit trail counts as GitOps.
	for _, f := range obj.GetManagedFields() {
		if audit.PlatformOf(f.Manager, "") == waygatev1.PlatformGitOps {
			return "a GitOps tool", "field manager " + f.Manager
		}
	}
	return "", ""
}

// checkGitOps refuses to change what GitOps manages, unless forced: the
// next sync would silently undo the change.
func checkGitOps(obj client.Object, force bool) error {
	tool, mark := managedBy(obj)
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
