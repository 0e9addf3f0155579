package controllers

import waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"

// ScopeBucket is the index bucket of route (of no service), for tests that
// need two route keys of one bucket.
func ScopeBucket(route waygatev1.RouteKey) string { return scopeBucket("", route) }
