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

// Behind a TLS-terminating ingress the cookies are Secure, prefixed as
// browsers enforce, and HSTS is sent; over plain HTTP they are not.
func TestCookiesBehindTLS(t *testing.T) {
	for _, external := range []bool{false, true} {
		s, err := New(Options{Cluster: &rest.Config{Host: "https://127.0.0.1:1"}, ExternalTLS: external})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/login", nil))
		cookies := w.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("external TLS %v: cookies %v", external, cookies)
		}
		c := cookies[0]
		wantName := map[bool]string{false: loginCookie, true: "__Secure-" + loginCookie}[external]
		if c.Name != wantName || c.Secure != external || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode ||
			(w.Header().Get("Strict-Transport-Security") != "") != external {
			t.Errorf("external TLS %v: cookie %+v, HSTS %q", external, c, w.Header().Get("Strict-Transport-Security"))
		}
		if got := s.cookieName(httptest.NewRequest(http.MethodGet, "/", nil), sessionCookie); external && got != "__Host-"+sessionCookie {
			t.Errorf("the session cookie behind TLS is %s", got)
		}
	}
}
