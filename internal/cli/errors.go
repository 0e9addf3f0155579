package cli

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// explain turns an API error into one line that says what is wrong and how
// to fix it; other errors pass as they are.
func explain(err error) error {
	var status apierrors.APIStatus
	if err == nil || !errors.As(err, &status) {
		return err
	}
	s := status.Status()
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s; ask your cluster admin for the permission (the waygate-edit role grants changes to Waygate resources, waygate-view reading them)", s.Message)
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

// cause is one validation failure as "field: message", without the value
// the API server repeats.
func cause(c metav1.StatusCause) string {
	msg := c.Message
	// "Invalid value: \"object\": <message>" → "<message>"
	if strings.HasPrefix(msg, "Invalid value: ") {
		if i := strings.Index(msg, ": "); i >= 0 {
			rest := msg[i+2:]
			if j := strings.Index(rest, ": "); j >= 0 && strings.HasPrefix(rest, `"`) {
				msg = rest[j+2:]
			}
		}
	}
	if c.Field == "" {
		return msg
	}
	return c.Field + ": " + msg
}
