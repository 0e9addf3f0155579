package audit

import (
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// PlatformAnnotation says where the next DELETE of an object comes from. A
// DELETE request carries no field manager, so our clients set it on the
// object just before they delete it. Like a field manager it is the
// client's word; the webhook keeps it only on writes whose own platform is
// the one it names.
const PlatformAnnotation = "waygate.dev/platform"

// Field managers of our own clients.
const (
	CLIFieldManager       = "waygate-cli"
	DashboardFieldManager = "waygate-dashboard"
)

// gitopsManagers are the field managers of GitOps controllers: Argo CD,
// Flux's kustomize and helm controllers, and Helm.
var gitopsManagers = []string{"argocd", "kustomize-controller", "helm-controller", "flux", "helm"}

// gitopsAccounts are the service accounts GitOps controllers run as, for
// requests (deletions) that carry no field manager.
var gitopsAccounts = []string{
	"system:serviceaccount:argocd:",
	"system:serviceaccount:flux-system:",
}

// PlatformOf tells where a change came from, from the request's field manager
// and, when it has none, the user.
func PlatformOf(fieldManager, username string) waygatev1.Platform {
	fm := strings.ToLower(fieldManager)
	switch {
	case fm == CLIFieldManager:
		return waygatev1.PlatformCLI
	case fm == DashboardFieldManager:
		return waygatev1.PlatformDashboard
	case fm == "kubectl" || strings.HasPrefix(fm, "kubectl-"):
		return waygatev1.PlatformKubectl
	}
	for _, m := range gitopsManagers {
		if strings.HasPrefix(fm, m) {
			return waygatev1.PlatformGitOps
		}
	}
	for _, a := range gitopsAccounts {
		if strings.HasPrefix(username, a) {
			return waygatev1.PlatformGitOps
		}
	}
	return waygatev1.PlatformAPI
}

// DeletePlatform tells where a DELETE of obj by username comes from: the
// platform obj's PlatformAnnotation names, if a client may claim it, else
// what the user tells.
func DeletePlatform(obj client.Object, username string) waygatev1.Platform {
	switch p := waygatev1.Platform(obj.GetAnnotations()[PlatformAnnotation]); p {
	case waygatev1.PlatformCLI, waygatev1.PlatformDashboard, waygatev1.PlatformKubectl, waygatev1.PlatformGitOps:
		return p
	}
	return PlatformOf("", username)
}

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

// ManagedBy names the GitOps tool that manages obj, and the mark that says
// so, or "" when none does.
func ManagedBy(obj client.Object) (tool, mark string) {
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
		if PlatformOf(f.Manager, "") == waygatev1.PlatformGitOps {
			return "a GitOps tool", "field manager " + f.Manager
		}
	}
	return "", ""
}
