package cli

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/waygate-dev/waygate/internal/edit"
)

// explain turns an API error, or a refusal to change what GitOps manages,
// into one line that says what is wrong and how to fix it; other errors
// pass as they are.
func explain(err error) error {
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("this cluster has no Waygate API (waygate.dev/v1alpha1): install Waygate (make deploy), or pick another cluster with --context")
	}
	if managed := (*edit.ManagedError)(nil); errors.As(err, &managed) {
		return fmt.Errorf("%s %s/%s is managed by %s (%s): the next sync reverts a change made here; change it in Git, or pass --force to change it anyway",
			strings.ToLower(managed.Kind), managed.Namespace, managed.Name, managed.Tool, managed.Mark)
	}
	var status apierrors.APIStatus
	if err == nil || !errors.As(err, &status) {
		return err
	}
	s := status.Status()
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s; ask your cluster admin for it (in a namespace, the built-in view role or waygate-view lets you read Waygate resources, edit or waygate-view plus waygate-edit change them)", s.Message)
	case apierrors.IsInvalid(err) && s.Details != nil && len(s.Details.Causes) > 0:
		var causes []string
		for _, c := range s.Details.Causes {
			causes = append(causes, cause(c))
		}
		return fmt.Errorf("the API server refused the change: %s", strings.Join(causes, "; "))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: your kubeconfig's credentials were not accepted; log in again or check --context", s.Message)
	}
	return err
}

// cause is one validation failure as "field: message", without the
// "Invalid value" and the value the API server puts first.
func cause(c metav1.StatusCause) string {
	msg := strings.TrimPrefix(c.Message, "Invalid value: ")
	if msg != c.Message && strings.HasPrefix(msg, `"`) {
		if i := strings.Index(msg, `": `); i > 0 {
			msg = msg[i+3:]
		}
	}
	if c.Field == "" {
		return msg
	}
	return c.Field + ": " + msg
}
