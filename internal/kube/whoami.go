// Package kube holds small helpers over the Kubernetes API that several of
// Waygate's programs share.
package kube

import (
	"context"
	"errors"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Whoami asks the API server who cfg authenticates as (a SelfSubjectReview):
// the operator, to tell its own requests from people's; the dashboard, to
// name who signed in.
func Whoami(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	if review.Status.UserInfo.Username == "" {
		return "", errors.New("the API server does not say who this is")
	}
	return review.Status.UserInfo.Username, nil
}
