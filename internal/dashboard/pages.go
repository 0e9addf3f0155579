package dashboard

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/pkg/flags"
)

// page is what every template gets.
type page struct {
	Title, Tab      string
	User, Namespace string
	CSRF            string
	Error, Notice   string
	TokenForm       bool
	Data            any
}

// auditPageSize is how many entries a page of the Audit tab shows.
const auditPageSize = 50

var funcs = template.FuncMap{
	"when": func(t metav1.MicroTime) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"join": func(s []string) string { return strings.Join(s, ", ") },
	"next": func(t *metav1.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 MST")
	},
	"gitops": func(obj client.Object) string { tool, _ := audit.ManagedBy(obj); return tool },
	"raw":    func(b []byte) string { return string(b) },
}

func (s *Server) render(w http.ResponseWriter, name string, p page) {
	var b bytes.Buffer
	if err := s.pages.ExecuteTemplate(&b, name, p); err != nil {
		http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// pageFor starts the page of tab for sess, in the request's namespace.
func (s *Server) pageFor(r *http.Request, sess *session, tab, title string) page {
	return page{Title: title, Tab: tab, User: sess.user, Namespace: s.namespace(r), CSRF: sess.csrf, Notice: r.URL.Query().Get("notice")}
}

// namespace is the namespace the request names (?ns=), or the default.
func (s *Server) namespace(r *http.Request) string {
	if ns := r.FormValue("ns"); ns != "" {
		return ns
	}
	return s.o.Namespace
}

// apiError is what the page says of an API error: its message, which names
// the user and what they may not do.
func apiError(err error) string {
	if status, ok := err.(apierrors.APIStatus); ok {
		return status.Status().Message
	}
	return err.Error()
}

// --- Audit

// auditFilter is the Audit tab's filter, from the request.
type auditFilter struct{ Path, Actor, Action string }

func filterOf(r *http.Request) auditFilter {
	q := r.URL.Query()
	return auditFilter{Path: strings.TrimSpace(q.Get("path")), Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action"))}
}

// auditData is the Audit tab's table: a page of entries, newest first.
type auditData struct {
	Filter   auditFilter
	Entries  []waygatev1.AuditEntry
	More     string // the URL of the next, older rows; "" at the end
	Events   string // the URL of the live rows
	Filtered bool
}

func (s *Server) auditPage(r *http.Request, sess *session) (auditData, error) {
	ns, f := s.namespace(r), filterOf(r)
	p, err := audit.Query{Namespace: ns, Path: f.Path, Actor: f.Actor, Action: f.Action, Limit: auditPageSize, Continue: r.URL.Query().Get("continue")}.
		Run(r.Context(), sess.client)
	if err != nil {
		return auditData{}, err
	}
	v := url.Values{"ns": {ns}}
	for k, val := range map[string]string{"path": f.Path, "actor": f.Actor, "action": f.Action} {
		if val != "" {
			v.Set(k, val)
		}
	}
	d := auditData{Filter: f, Entries: p.Entries, Filtered: f != auditFilter{}}
	if p.Continue != "" {
		more := url.Values{"continue": {p.Continue}}
		for k, val := range v {
			more[k] = val
		}
		d.More = "/audit/rows?" + more.Encode()
	}
	if r.URL.Query().Get("continue") == "" {
		v.Set("rv", p.ResourceVersion)
		d.Events = "/audit/events?" + v.Encode()
	}
	return d, nil
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request, sess *session) {
	p := s.pageFor(r, sess, "audit", "Audit")
	d, err := s.auditPage(r, sess)
	if err != nil {
		p.Error = apiError(err)
	}
	p.Data = d
	s.render(w, "audit", p)
}

// auditRows is the next, older rows of the Audit tab, for scrolling.
func (s *Server) auditRows(w http.ResponseWriter, r *http.Request, sess *session) {
	d, err := s.auditPage(r, sess)
	if err != nil {
		http.Error(w, apiError(err), http.StatusBadGateway)
		return
	}
	s.render(w, "audit-rows", page{Data: d})
}

// auditEvents streams, as server-sent events, the rows of entries written
// after the page was read: a watch from its resource version, as the user,
// resumed from the last version seen when the API server ends it.
func (s *Server) auditEvents(w http.ResponseWriter, r *http.Request, sess *session) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	f := filterOf(r)
	fields := audit.Query{Path: f.Path, Actor: f.Actor, Action: f.Action}.Fields()
	ns, rv := s.namespace(r), r.URL.Query().Get("rv")
	ctx := r.Context()
	watchFrom := func(rv string) (watch.Interface, error) {
		opts := &client.ListOptions{Namespace: ns, Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}}
		if len(fields) > 0 {
			fields.ApplyToList(opts)
		}
		return sess.client.Watch(ctx, &waygatev1.AuditEntryList{}, opts)
	}
	wi, err := watchFrom(rv)
	if err != nil {
		http.Error(w, apiError(err), http.StatusBadGateway)
		return
	}
	defer func() { wi.Stop() }()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	flusher.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keepalive.C:
			_, _ = fmt.Fprint(w, ": keepalive\n\n")
		case ev, open := <-wi.ResultChan():
			if !open {
				wi.Stop()
				if wi, err = watchFrom(rv); err != nil {
					// Too old to resume: the page reloads itself.
					_, _ = fmt.Fprint(w, "event: reload\ndata: \n\n")
					flusher.Flush()
					return
				}
				continue
			}
			e, isEntry := ev.Object.(*waygatev1.AuditEntry)
			if !isEntry {
				continue
			}
			rv = e.ResourceVersion
			if ev.Type != watch.Added {
				continue
			}
			var b bytes.Buffer
			if err := s.pages.ExecuteTemplate(&b, "audit-row", e); err != nil {
				return
			}
			_, _ = fmt.Fprintf(w, "event: entry\ndata: %s\n\n", strings.ReplaceAll(b.String(), "\n", ""))
		}
		flusher.Flush()
	}
}

// --- Routes

// routeAction is a change the Routes page offers.
type routeAction struct{ Value, Label string }

var routeActions = []routeAction{
	{string(waygatev1.RouteMaintenance), "Maintenance"},
	{string(waygatev1.RouteDisabled), "Disable"},
	{string(waygatev1.RouteActive), "Enable"},
}

type routesData struct {
	Gates   []waygatev1.RouteGate
	Actions []routeAction
	// Next is the URL of the next page of gates; "" on the last.
	Next string
}

// routesPageSize is how many RouteGates a page of the Routes tab shows.
const routesPageSize = 100

// routesOf reads a page of the namespace's RouteGates, from the request's
// continue token.
func (s *Server) routesOf(r *http.Request, sess *session, ns string) (routesData, error) {
	var l waygatev1.RouteGateList
	err := sess.client.List(r.Context(), &l, client.InNamespace(ns), client.Limit(routesPageSize), client.Continue(r.URL.Query().Get("continue")))
	d := routesData{Gates: l.Items, Actions: routeActions}
	if l.Continue != "" {
		d.Next = "/routes?" + url.Values{"ns": {ns}, "continue": {l.Continue}}.Encode()
	}
	return d, err
}

func (s *Server) routes(w http.ResponseWriter, r *http.Request, sess *session) {
	p := s.pageFor(r, sess, "routes", "Routes")
	d, err := s.routesOf(r, sess, p.Namespace)
	if err != nil {
		p.Error = apiError(err)
	}
	p.Data = d
	s.render(w, "routes", p)
}

// changeRoute puts a route into maintenance, disables or enables it, as the
// user; a GitOps-managed gate needs the "change anyway" box.
func (s *Server) changeRoute(w http.ResponseWriter, r *http.Request, sess *session) {
	ns, name, state, reason := s.namespace(r), r.FormValue("name"), waygatev1.RouteState(r.FormValue("state")), strings.TrimSpace(r.FormValue("reason"))
	fail := func(msg string) {
		p := s.pageFor(r, sess, "routes", "Routes")
		p.Error = msg
		p.Data, _ = s.routesOf(r, sess, ns)
		w.WriteHeader(http.StatusUnprocessableEntity)
		s.render(w, "routes", p)
	}
	if state != waygatev1.RouteMaintenance && state != waygatev1.RouteDisabled && state != waygatev1.RouteActive {
		fail(fmt.Sprintf("%q is not a change the dashboard makes: choose maintenance, disable or enable", state))
		return
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var rg waygatev1.RouteGate
		if err := sess.client.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, &rg); err != nil {
			return err
		}
		if tool, mark := audit.ManagedBy(&rg); tool != "" && r.FormValue("confirm") != "yes" {
			return fmt.Errorf("RouteGate %s is managed by %s (%s): the next sync reverts a change made here. Change it in Git, or tick \"change anyway\"", name, tool, mark)
		}
		rg.Spec.State = state
		if reason != "" || state == waygatev1.RouteActive {
			rg.Spec.Reason = reason
		}
		return sess.client.Update(r.Context(), &rg, client.FieldOwner(audit.DashboardFieldManager))
	})
	if err != nil {
		fail(apiError(err))
		return
	}
	http.Redirect(w, r, "/routes?"+url.Values{"ns": {ns}, "notice": {fmt.Sprintf("RouteGate %s: %s", name, state)}}.Encode(), http.StatusSeeOther)
}

// --- Flags, segments, rate limits

type flagsData struct {
	Flags    []waygatev1.FeatureFlag
	Eval     string
	Context  string
	Result   *flags.Result
	Segments []waygatev1.Segment
}

func (s *Server) flags(w http.ResponseWriter, r *http.Request, sess *session) {
	p := s.pageFor(r, sess, "flags", "Flags")
	var ffs waygatev1.FeatureFlagList
	var segs waygatev1.SegmentList
	d := flagsData{Eval: r.URL.Query().Get("eval"), Context: r.URL.Query().Get("context")}
	if err := sess.client.List(r.Context(), &ffs, client.InNamespace(p.Namespace)); err != nil {
		p.Error = apiError(err)
	} else if err := sess.client.List(r.Context(), &segs, client.InNamespace(p.Namespace)); err != nil {
		p.Error = apiError(err)
	}
	d.Flags = ffs.Items
	if d.Eval != "" && p.Error == "" {
		var pairs []string
		if strings.TrimSpace(d.Context) != "" {
			pairs = strings.Split(d.Context, ",")
		}
		if values, err := flags.ParseContext(pairs); err != nil {
			p.Error = "context " + err.Error()
		} else {
			res := flags.Compile(ffs.Items, segs.Items).Evaluate(d.Eval, flags.NewContext(values))
			d.Result = &res
		}
	}
	p.Data = d
	s.render(w, "flags", p)
}

func (s *Server) segments(w http.ResponseWriter, r *http.Request, sess *session) {
	p := s.pageFor(r, sess, "segments", "Segments")
	var l waygatev1.SegmentList
	if err := sess.client.List(r.Context(), &l, client.InNamespace(p.Namespace)); err != nil {
		p.Error = apiError(err)
	}
	p.Data = l.Items
	s.render(w, "segments", p)
}

func (s *Server) rateLimits(w http.ResponseWriter, r *http.Request, sess *session) {
	p := s.pageFor(r, sess, "ratelimits", "Rate limits")
	var l waygatev1.RateLimitPolicyList
	if err := sess.client.List(r.Context(), &l, client.InNamespace(p.Namespace)); err != nil {
		p.Error = apiError(err)
	}
	p.Data = l.Items
	s.render(w, "ratelimits", p)
}
