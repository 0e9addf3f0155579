package cli

import (
	"context"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// operatorNamespace is where config/default installs the operator.
const operatorNamespace = "waygate-system"

func versionCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the version of this client and of the operator in the cluster",
		Args:  cobra.NoArgs,
		RunE: o.run(func(ctx context.Context, _ []string) error {
			o.printf("client:   %s\n", o.Version)
			o.printf("operator: %s\n", o.operatorVersion(ctx))
			return nil
		}),
	}
}

// operatorVersion is the image of the operator's Deployment, or why it is
// not known.
func (o *Options) operatorVersion(ctx context.Context) string {
	var list appsv1.DeploymentList
	err := o.client.List(ctx, &list, client.InNamespace(operatorNamespace),
		client.MatchingLabels{"app.kubernetes.io/name": "waygate", "app.kubernetes.io/component": "manager"})
	switch {
	case apierrors.IsForbidden(err):
		return "unknown: you may not read the Deployments in " + operatorNamespace + ", where the operator runs"
	case err != nil:
		return "unknown (" + explain(err).Error() + ")"
	case len(list.Items) == 0:
		return "unknown: no waygate Deployment in namespace " + operatorNamespace + " (running outside the cluster, e.g. make run?)"
	}
	for _, c := range list.Items[0].Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return c.Image
		}
	}
	return "unknown: the waygate Deployment has no manager container"
}
