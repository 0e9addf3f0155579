package audit

import (
	"strings"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

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
