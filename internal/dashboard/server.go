// Package dashboard is Waygate's admin dashboard: server-rendered pages over
// the Kubernetes API, acting as the signed-in user and never with rights of
// its own. `waygate dashboard` serves it locally with the caller's
// kubeconfig identity; cmd/dashboard serves it in a cluster, where users
// sign in with a bearer token the API server accepts. Every change is made
// as the user with field manager waygate-dashboard, so the audit trail
// records platform dashboard.
package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/edit"
	"github.com/waygate-dev/waygate/internal/kube"
	"github.com/waygate-dev/waygate/internal/scheme"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a Server.
type Options struct {
	// Local serves one user, whose connection is Local (the caller's
	// kubeconfig identity): they sign in with the one-time secret of
	// LoginURL. Otherwise users sign in with a bearer token, sent to
	// the API server at Cluster (host and CA; no credentials).
	Local   *rest.Config
	Cluster *rest.Config
	// Namespace is the namespace pages open on.
	Namespace string
	// SessionTTL is how long a session lasts without use (default 8h).
	SessionTTL time.Duration
	// ExternalTLS says that browsers reach the dashboard over HTTPS though
	// it serves plain HTTP (a TLS-terminating ingress): its cookies are then
	// Secure, as they are when it serves TLS itself.
	ExternalTLS bool
}

// Server serves the dashboard.
type Server struct {
	o     Options
	pages *template.Template
	mux   *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*session
	// oneTime is the local mode's login secret, "" once used; it is good
	// until oneTimeExpires.
	oneTime        string
	oneTimeExpires time.Time
}

// loginLinkTTL is how long the local mode's sign-in link works: long enough
// to open it, short enough that one found later in a terminal's history
// or a browser's is worth nothing.
const loginLinkTTL = 5 * time.Minute

// session is one signed-in user: their connection to the API server, held
// here, never sent to the browser.
type session struct {
	user    string
	csrf    string
	client  client.WithWatch
	writer  *edit.Writer // writes with client, as the dashboard
	expires time.Time
	// notice says what the last change did, until a page shows it.
	notice string
}

// The cookies' names. Over HTTPS they carry the prefixes browsers enforce:
// __Host- (Secure, this host only, path /) and __Secure- (Secure).
const (
	sessionCookie = "waygate_session"
	loginCookie   = "waygate_login"
)

// secure tells whether the browser reached r over HTTPS.
func (s *Server) secure(r *http.Request) bool { return r.TLS != nil || s.o.ExternalTLS }

// cookie is a cookie of the dashboard's, named and flagged for how the
// browser reached r.
func (s *Server) cookie(r *http.Request, name, value, path string) *http.Cookie {
	return &http.Cookie{Name: s.cookieName(r, name), Value: value, Path: path, HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode}
}

func (s *Server) cookieName(r *http.Request, name string) string {
	switch {
	case !s.secure(r):
		return name
	case name == sessionCookie:
		return "__Host-" + name
	default:
		return "__Secure-" + name
	}
}

// New prepares a server.
func New(o Options) (*Server, error) {
	if (o.Local == nil) == (o.Cluster == nil) {
		return nil, errors.New("the dashboard serves either one local user (Local) or the users of a cluster (Cluster)")
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	pages, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, pages: pages, sessions: map[string]*session{}}
	if o.Local != nil {
		s.oneTime, s.oneTimeExpires = randomToken(), time.Now().Add(loginLinkTTL)
	}
	static, _ := fs.Sub(staticFS, "static")
	s.mux = http.NewServeMux()
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.signedIn(s.logout))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/audit", http.StatusSeeOther) })
	s.mux.HandleFunc("GET /audit", s.signedIn(s.audit))
	s.mux.HandleFunc("GET /audit/rows", s.signedIn(s.auditRows))
	s.mux.HandleFunc("GET /audit/events", s.signedIn(s.auditEvents))
	s.mux.HandleFunc("GET /routes", s.signedIn(s.show("routes", "Routes", loadRoutes)))
	s.mux.HandleFunc("POST /routes", s.signedIn(s.changeWith("routes", "Routes", loadRoutes, changeRoute)))
	s.mux.HandleFunc("POST /routes/new", s.signedIn(s.changeWith("routes", "Routes", loadRoutes, createRoute)))
	s.mux.HandleFunc("GET /flags", s.signedIn(s.show("flags", "Flags", loadFlags)))
	s.mux.HandleFunc("POST /flags", s.signedIn(s.changeWith("flags", "Flags", loadFlags, switchFlag)))
	s.mux.HandleFunc("GET /segments", s.signedIn(s.show("segments", "Segments", loadSegments)))
	s.mux.HandleFunc("GET /ratelimits", s.signedIn(s.show("ratelimits", "Rate limits", loadRateLimits)))
	s.mux.HandleFunc("POST /ratelimits", s.signedIn(s.changeWith("ratelimits", "Rate limits", loadRateLimits, changeRateLimit)))
	return s, nil
}

// LoginURL is the local mode's sign-in link for a server at base
// (http://127.0.0.1:port): it works once.
func (s *Server) LoginURL(base string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return base + "/login?secret=" + s.oneTime
}

// ServeHTTP serves a request with the headers every answer carries.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No inline script or style; nothing framed; the login secret in a URL
	// is not sent on.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if s.secure(r) {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if s.o.Local != nil && !loopbackHost(r.Host) {
		// A page of another site whose name it made resolve to 127.0.0.1
		// (DNS rebinding) would otherwise be this same origin's.
		http.Error(w, "the local dashboard answers only to 127.0.0.1, [::1] or localhost: open the link `waygate dashboard` printed", http.StatusMisdirectedRequest)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// loopbackHost tells whether a Host header names this machine by a
// loopback address or localhost.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// signedIn runs h for a request of a signed-in user; state-changing
// requests must carry the session's CSRF token.
func (s *Server) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.session(r)
		if sess == nil {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" && r.URL.Path != "/audit/rows" {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in: sign in at /login", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && subtle.ConstantTimeCompare([]byte(r.FormValue("csrf")), []byte(sess.csrf)) != 1 {
			http.Error(w, "this form is stale or did not come from the dashboard (no valid CSRF token): reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r, sess)
	}
}

// session is the request's live session, extending it, or nil.
func (s *Server) session(r *http.Request) *session {
	c, err := r.Cookie(s.cookieName(r, sessionCookie))
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[c.Value]
	if sess == nil {
		return nil
	}
	if time.Now().After(sess.expires) {
		delete(s.sessions, c.Value)
		return nil
	}
	sess.expires = time.Now().Add(s.o.SessionTTL)
	return sess
}

// start creates a session for user with cfg and sets its cookie.
func (s *Server) start(w http.ResponseWriter, r *http.Request, user string, cfg *rest.Config) error {
	// client-go's default of 5 requests a second would make a person wait
	// on their own clicks; the API server's priority and fairness still
	// applies per user.
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 50, 100
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		return err
	}
	id := randomToken()
	s.mu.Lock()
	for k, old := range s.sessions {
		if time.Now().After(old.expires) {
			delete(s.sessions, k)
		}
	}
	s.sessions[id] = &session{user: user, csrf: randomToken(), client: c, writer: edit.New(c, audit.DashboardFieldManager), expires: time.Now().Add(s.o.SessionTTL)}
	s.mu.Unlock()
	http.SetCookie(w, s.cookie(r, sessionCookie, id, "/"))
	return nil
}

// loginPage signs the local user in with the one-time secret, or shows
// the token form.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.o.Local != nil {
		s.mu.Lock()
		ok := s.oneTime != "" && subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("secret")), []byte(s.oneTime)) == 1
		if ok {
			s.oneTime = ""
		}
		expired := time.Now().After(s.oneTimeExpires)
		s.mu.Unlock()
		if !ok || expired {
			w.WriteHeader(http.StatusForbidden)
			s.render(w, "login", page{Title: "Sign in", Error: "This sign-in link is not valid, was used already or is more than " +
				loginLinkTTL.String() + " old: run `waygate dashboard` again for a new one."})
			return
		}
		user, err := kube.Whoami(r.Context(), s.o.Local)
		if err == nil {
			err = s.start(w, r, user, s.o.Local)
		}
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			s.render(w, "login", page{Title: "Sign in", Error: err.Error()})
			return
		}
		http.Redirect(w, r, "/audit", http.StatusSeeOther)
		return
	}
	// The token form, with a token of its own against cross-site logins.
	token := randomToken()
	http.SetCookie(w, s.cookie(r, loginCookie, token, "/login"))
	s.render(w, "login", page{Title: "Sign in", CSRF: token, TokenForm: true})
}

// login signs a cluster user in with their bearer token.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(s.cookieName(r, loginCookie))
	if s.o.Cluster == nil || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.FormValue("csrf"))) != 1 {
		http.Error(w, "sign in from the dashboard's own sign-in page (/login)", http.StatusForbidden)
		return
	}
	cfg := rest.AnonymousClientConfig(s.o.Cluster)
	cfg.BearerToken = r.FormValue("token")
	user, err := kube.Whoami(r.Context(), cfg)
	if err == nil {
		err = s.start(w, r, user, cfg)
	}
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, "login", page{Title: "Sign in", TokenForm: true, CSRF: c.Value, Error: "The API server did not accept this token: " + err.Error()})
		return
	}
	http.Redirect(w, r, "/audit", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	if c, err := r.Cookie(s.cookieName(r, sessionCookie)); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	gone := s.cookie(r, sessionCookie, "", "/")
	gone.MaxAge = -1
	http.SetCookie(w, gone)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
