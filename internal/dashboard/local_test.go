package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// The local dashboard answers only to loopback names (a page of another
// site made to resolve to 127.0.0.1 is refused), and its sign-in link is
// good for a few minutes only.
func TestLocalMode(t *testing.T) {
	s, err := New(Options{Local: &rest.Config{Host: "https://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	for host, served := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true, "LOCALHOST": true, "127.0.0.2:80": true,
		"evil.example:8080": false, "evil.example": false, "10.0.0.1:8080": false, "": false, "127.0.0.1.evil.example": false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/login?secret=wrong", nil)
		r.Host = host
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if got := w.Code != http.StatusMisdirectedRequest; got != served {
			t.Errorf("Host %q: %d, served %v, want %v", host, w.Code, got, served)
		}
	}

	// An expired link signs no one in, though its secret is right.
	s.mu.Lock()
	secret := s.oneTime
	s.oneTimeExpires = time.Now().Add(-time.Second)
	s.mu.Unlock()
	r := httptest.NewRequest(http.MethodGet, "/login?secret="+secret, nil)
	r.Host = "127.0.0.1:8080"
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "old") || len(w.Result().Cookies()) != 0 {
		t.Errorf("an expired link: %d %v %s", w.Code, w.Result().Cookies(), w.Body)
	}
}
