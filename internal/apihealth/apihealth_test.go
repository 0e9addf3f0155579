package apihealth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/rest"
)

// What the API server answers decides whether the view is current: a
// refusal is no answer to a watch, whatever its status class.
func TestStaleAfter(t *testing.T) {
	for _, tc := range []struct {
		status int
		stale  bool
	}{
		{http.StatusOK, false},
		{http.StatusNotFound, false}, // an answer: the kind is simply not there
		{http.StatusUnauthorized, true},
		{http.StatusForbidden, true},
		{http.StatusInternalServerError, true},
		{http.StatusServiceUnavailable, true},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tc.status) }))
			defer srv.Close()
			cfg, h := Watch(&rest.Config{Host: srv.URL})
			rt, err := rest.TransportFor(cfg)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/apis/waygate.dev/v1alpha1/routegates?watch=true", nil)
			resp, err := (&http.Client{Transport: rt}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if got := h.Stale() > 0; got != tc.stale {
				t.Errorf("after a %d the view is stale: %v, want %v", tc.status, got, tc.stale)
			}
		})
	}
}
