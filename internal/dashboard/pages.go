package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	"github.com/waygate-dev/waygate/internal/edit"
	"github.com/waygate-dev/waygate/internal/routes"
	auditlog "github.com/waygate-dev/waygate/pkg/audit"
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
	// target is the hidden fields of a form that changes the object name
	// of the page's namespace: the session's CSRF token, namespace, name.
	"target": func(p page, name string) template.HTML {
		return template.HTML(`<input type="hidden" name="csrf" value="` + template.HTMLEscapeString(p.CSRF) +
			`"><input type="hidden" name="ns" value="` + template.HTMLEscapeString(p.Namespace) +
			`"><input type="hidden" name="name" value="` + template.HTMLEscapeString(name) + `">`)
	},
	"raw": func(b []byte) string { return string(b) },
	// share writes a rollout weight (thousandths of a percent) as a percentage.
	"share": func(w int32) string { return strconv.FormatFloat(float64(w)/1000, 'f', -1, 64) + "%" },
	// row is an entry as a row of the Audit tab.
	"row": func(e waygatev1.AuditEntry, all bool) auditRow { return auditRow{&e, all} },
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

// pageFor starts the page of tab for sess, in the request's namespace,
// with the notice of the change just made, if any (kept in the session, not
// the URL, so that no link can make the dashboard say anything).
func (s *Server) pageFor(r *http.Request, sess *session, tab, title string) page {
	s.mu.Lock()
	notice := sess.notice
	sess.notice = ""
	s.mu.Unlock()
	return page{Title: title, Tab: tab, User: sess.user, Namespace: s.namespace(r), CSRF: sess.csrf, Notice: notice}
}

// namespace is the namespace the request names (?ns=), or the default.
func (s *Server) namespace(r *http.Request) string {
	if ns := r.FormValue("ns"); ns != "" {
		return ns
	}
	return s.o.Namespace
}

// apiError is what the page says of an error: of an API error its message,
// which names the user and what they may not do; of a refusal to change
// what GitOps manages, how to change it anyway.
func apiError(err error) string {
	if managed := (*edit.ManagedError)(nil); errors.As(err, &managed) {
		return fmt.Sprintf("%s %s is managed by %s (%s): the next sync reverts a change made here. Change it in Git, or tick \"change anyway\"",
			managed.Kind, managed.Name, managed.Tool, managed.Mark)
	}
	if status, ok := err.(apierrors.APIStatus); ok {
		return status.Status().Message
	}
	return err.Error()
}

// --- Audit

// auditFilter is the Audit tab's filter, from the request: All shows every
// namespace's entries.
type auditFilter struct {
	Path, Actor, Action string
	All                 bool
}

func filterOf(r *http.Request) auditFilter {
	q := r.URL.Query()
	return auditFilter{Path: strings.TrimSpace(q.Get("path")), Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		All: q.Get("all") == "1"}
}

// query is the log read f selects in the request's namespace (every
// namespace with All).
func (s *Server) query(r *http.Request, f auditFilter) auditlog.Query {
	q := auditlog.Query{Namespace: s.namespace(r), Path: f.Path, Actor: f.Actor, Action: f.Action}
	if f.All {
		q.Namespace = ""
	}
	return q
}

// auditData is the Audit tab's table: a page of entries, newest first.
type auditData struct {
	Filter  auditFilter
	Entries []waygatev1.AuditEntry
	More    string // the URL of the next, older rows; "" at the end
	Events  string // the URL of the live rows
	// Filtered is set when a path, actor or action narrows the log;
	// ListAll when the user may read every namespace's entries.
	Filtered, ListAll bool
}

// auditRow is one row of the Audit tab; All adds the namespace column.
type auditRow struct {
	*waygatev1.AuditEntry
	All bool
}

func (s *Server) auditPage(r *http.Request, sess *session) (auditData, error) {
	f := filterOf(r)
	q := s.query(r, f)
	q.Limit, q.Continue = auditPageSize, r.URL.Query().Get("continue")
	p, err := q.Run(r.Context(), sess.client)
	if err != nil {
		return auditData{Filter: f}, err
	}
	v := url.Values{"ns": {s.namespace(r)}}
	for k, val := range map[string]string{"path": f.Path, "actor": f.Actor, "action": f.Action} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if f.All {
		v.Set("all", "1")
	}
	d := auditData{Filter: f, Entries: p.Entries, Filtered: f.Path != "" || f.Actor != "" || f.Action != ""}
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
	d.ListAll = d.Filter.All || mayListAll(r.Context(), sess.client)
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
// after the page was read: a watch from its resource version, as the user.
// When that version is too old to watch from, the page reloads itself.
func (s *Server) auditEvents(w http.ResponseWriter, r *http.Request, sess *session) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	f := filterOf(r)
	q := s.query(r, f)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	flusher.Flush()
	var mu sync.Mutex // the keepalives and the rows write to one stream
	send := func(event string) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = fmt.Fprint(w, event)
		flusher.Flush()
	}
	ctx, cancel := context.WithCancel(r.Context())
	var keepalives sync.WaitGroup
	keepalives.Go(func() {
		tick := time.NewTicker(15 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				send(": keepalive\n\n")
			}
		}
	})
	defer keepalives.Wait()
	defer cancel()
	err := q.Watch(ctx, sess.client, r.URL.Query().Get("rv"), func(e *waygatev1.AuditEntry) error {
		var b bytes.Buffer
		if err := s.pages.ExecuteTemplate(&b, "audit-row", auditRow{e, f.All}); err != nil {
			return err
		}
		send(fmt.Sprintf("event: entry\ndata: %s\n\n", sseData(b.String())))
		return nil
	})
	if err != nil && ctx.Err() == nil {
		// Most often the version is too old to resume from: the page
		// reloads itself and starts from now.
		send("event: reload\ndata: \n\n")
	}
}

// mayListAll tells whether the user of c may list audit entries in every
// namespace (a SelfSubjectAccessReview): the Audit tab then offers them all.
func mayListAll(ctx context.Context, c client.Client) bool {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Group: waygatev1.GroupVersion.Group, Resource: "auditentries"},
	}}
	return c.Create(ctx, review) == nil && review.Status.Allowed
}

// sseData is text as one server-sent event's data line: without the line
// breaks (CR, LF or both end an event-stream line) that would let a value
// in it — a reason, say — start a field or an event of its own.
func sseData(text string) string { return sseLineBreaks.Replace(text) }

var sseLineBreaks = strings.NewReplacer("\r\n", "", "\r", "", "\n", "")

// --- Tabs that list objects and change them

// view loads what a tab shows into p (p.Data, or p.Error).
type view func(r *http.Request, sess *session, p *page)

// show serves a tab's page.
func (s *Server) show(tab, title string, load view) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, sess *session) {
		p := s.pageFor(r, sess, tab, title)
		load(r, sess, &p)
		s.render(w, tab, p)
	}
}

// changeWith serves a tab's form: do changes the object the form names,
// as the user; then back to the tab with a notice, or the tab again with
// the API's error.
func (s *Server) changeWith(tab, title string, load view, do func(r *http.Request, sess *session) (notice string, err error)) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, sess *session) {
		notice, err := do(r, sess)
		if err == nil {
			s.mu.Lock()
			sess.notice = notice
			s.mu.Unlock()
			http.Redirect(w, r, "/"+tab+"?"+url.Values{"ns": {s.namespace(r)}}.Encode(), http.StatusSeeOther)
			return
		}
		p := s.pageFor(r, sess, tab, title)
		load(r, sess, &p)
		p.Error, p.Notice = apiError(err), ""
		w.WriteHeader(http.StatusUnprocessableEntity)
		s.render(w, tab, p)
	}
}

// update changes the object the form names (ns, name) as the user, with
// mutate applied to its latest version. An object a GitOps tool manages is
// changed only when forced: when the form confirms it, as the CLI asks for
// --force.
func update[T client.Object](r *http.Request, sess *session, obj T, force bool, mutate func(T) error) error {
	obj.SetNamespace(r.FormValue("ns"))
	obj.SetName(r.FormValue("name"))
	_, err := edit.Update(r.Context(), sess.writer, obj, force, mutate)
	return err
}

// confirmed tells whether the form's "change anyway" box is ticked.
func confirmed(r *http.Request) bool { return r.FormValue("confirm") == "yes" }

// --- Routes

// routeAction is a change the Routes page offers.
type routeAction struct{ Value, Label string }

var routeActions = []routeAction{
	{string(waygatev1.RouteMaintenance), "Maintenance"},
	{string(waygatev1.RouteDisabled), "Disable"},
	{string(waygatev1.RouteEnvGated), "Environments only"},
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

// loadRoutes reads a page of the namespace's RouteGates, from the
// request's continue token.
func loadRoutes(r *http.Request, sess *session, p *page) {
	var l waygatev1.RouteGateList
	err := sess.client.List(r.Context(), &l, client.InNamespace(p.Namespace), client.Limit(routesPageSize), client.Continue(r.URL.Query().Get("continue")))
	d := routesData{Gates: l.Items, Actions: routeActions}
	if l.Continue != "" {
		d.Next = "/routes?" + url.Values{"ns": {p.Namespace}, "continue": {l.Continue}}.Encode()
	}
	if err != nil {
		p.Error = apiError(err)
	}
	p.Data = d
}

// changeRoute puts a route into maintenance, disables it, gates it to
// environments or enables it, and schedules a maintenance window.
func changeRoute(r *http.Request, sess *session) (string, error) {
	var apply func(*waygatev1.RouteGateSpec)
	state, err := routeForm(r, &apply)
	if err != nil {
		return "", err
	}
	return "RouteGate " + r.FormValue("name") + ": " + string(state), update(r, sess, &waygatev1.RouteGate{}, confirmed(r), func(rg *waygatev1.RouteGate) error {
		apply(&rg.Spec)
		return nil
	})
}

// createRoute gates a route (or, with route "*", a whole service or the
// namespace, with exempt routes) that has no RouteGate yet, named as the
// CLI names it.
func createRoute(r *http.Request, sess *session) (string, error) {
	key, err := routes.ParseRouteKey(strings.TrimSpace(r.FormValue("route")))
	if err != nil {
		return "", err
	}
	service := strings.TrimSpace(r.FormValue("service"))
	var apply func(*waygatev1.RouteGateSpec)
	state, err := routeForm(r, &apply)
	if err != nil {
		return "", err
	}
	rg := &waygatev1.RouteGate{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.FormValue("ns")},
		Spec:       waygatev1.RouteGateSpec{Route: waygatev1.RouteKey(key), Service: waygatev1.ServiceName(service)},
	}
	apply(&rg.Spec)
	for _, e := range list(r.FormValue("exempt")) {
		ek, err := routes.ParseRouteKey(e)
		if err != nil {
			return "", fmt.Errorf("exempt routes: %w", err)
		}
		rg.Spec.Exempt = append(rg.Spec.Exempt, waygatev1.RouteKey(ek))
	}
	if err := sess.writer.NameForRoute(r.Context(), rg, service, key); err != nil {
		return "", err
	}
	return "RouteGate " + rg.Name + " created: " + key + " " + string(state), sess.writer.Create(r.Context(), rg)
}

// datetimeLocal is what an <input type="datetime-local"> sends; the
// Routes forms read it as UTC.
const datetimeLocal = "2006-01-02T15:04"

// routeForm reads the state, reason, environments, window and until of a
// route form into apply, which sets them on a spec.
func routeForm(r *http.Request, apply *func(*waygatev1.RouteGateSpec)) (waygatev1.RouteState, error) {
	state, reason := waygatev1.RouteState(r.FormValue("state")), strings.TrimSpace(r.FormValue("reason"))
	if !slices.ContainsFunc(routeActions, func(a routeAction) bool { return a.Value == string(state) }) {
		return "", fmt.Errorf("%q is not a state the dashboard sets: choose maintenance, disable, environments only or enable", state)
	}
	envs := list(r.FormValue("envs"))
	if state == waygatev1.RouteEnvGated && len(envs) == 0 {
		return "", errors.New("name the environments the route stays open in (e.g. staging, dev)")
	}
	var window *waygatev1.MaintenanceWindow
	if start, end := r.FormValue("start"), r.FormValue("end"); start != "" || end != "" {
		s, err1 := time.Parse(datetimeLocal, start)
		e, err2 := time.Parse(datetimeLocal, end)
		if err1 != nil || err2 != nil {
			return "", errors.New("a window needs both its start and its end (UTC)")
		}
		window = &waygatev1.MaintenanceWindow{Start: metav1.NewTime(s), End: metav1.NewTime(e)}
	}
	var until *metav1.Time
	if v := r.FormValue("until"); v != "" {
		u, err := time.Parse(datetimeLocal, v)
		switch {
		case err != nil:
			return "", fmt.Errorf("disable until %q: give a date and time (UTC)", v)
		case state != waygatev1.RouteDisabled:
			return "", errors.New("until ends a disable: choose Disable, or leave until empty")
		case !u.After(time.Now()):
			return "", fmt.Errorf("disable until %s UTC is not in the future: give a later time", u.Format("2006-01-02 15:04"))
		}
		until = &metav1.Time{Time: u}
	}
	*apply = func(spec *waygatev1.RouteGateSpec) {
		spec.State = state
		if reason != "" || state == waygatev1.RouteActive {
			spec.Reason = reason
		}
		spec.AllowedEnvs = nil
		if state == waygatev1.RouteEnvGated {
			spec.AllowedEnvs = envs
		}
		if window != nil {
			spec.Window = window
		}
		// A disable lasts until the given time, or for good.
		spec.Until = until
	}
	return state, nil
}

// list reads a comma-separated list.
func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// --- Flags, segments, rate limits

type flagsData struct {
	Flags   []waygatev1.FeatureFlag
	Eval    string
	Context string
	Result  *flags.Result
}

func loadFlags(r *http.Request, sess *session, p *page) {
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
}

// switchFlag enables or disables a flag.
func switchFlag(r *http.Request, sess *session) (string, error) {
	on := r.FormValue("enabled") == "true"
	notice := "FeatureFlag " + r.FormValue("name") + ": disabled"
	if on {
		notice = "FeatureFlag " + r.FormValue("name") + ": enabled"
	}
	return notice, update(r, sess, &waygatev1.FeatureFlag{}, confirmed(r), func(f *waygatev1.FeatureFlag) error {
		f.Spec.Enabled = on
		return nil
	})
}

func loadSegments(r *http.Request, sess *session, p *page) {
	var l waygatev1.SegmentList
	if err := sess.client.List(r.Context(), &l, client.InNamespace(p.Namespace)); err != nil {
		p.Error = apiError(err)
	}
	p.Data = l.Items
}

type rateLimitsData struct {
	Policies   []waygatev1.RateLimitPolicy
	Algorithms []waygatev1.RateLimitAlgorithm
}

func loadRateLimits(r *http.Request, sess *session, p *page) {
	var l waygatev1.RateLimitPolicyList
	if err := sess.client.List(r.Context(), &l, client.InNamespace(p.Namespace)); err != nil {
		p.Error = apiError(err)
	}
	p.Data = rateLimitsData{Policies: l.Items, Algorithms: []waygatev1.RateLimitAlgorithm{waygatev1.FixedWindow, waygatev1.SlidingWindow, waygatev1.TokenBucket}}
}

// changeRateLimit edits a policy's limit and algorithm, or resets its
// counters (the reset annotation, audited as rl_reset).
func changeRateLimit(r *http.Request, sess *session) (string, error) {
	name := r.FormValue("name")
	if r.FormValue("reset") != "" {
		// A reset changes no spec, so GitOps does not revert it.
		at := time.Now().UTC().Format(time.RFC3339Nano)
		return "RateLimitPolicy " + name + ": counters reset", update(r, sess, &waygatev1.RateLimitPolicy{}, true, edit.SetAnnotation[*waygatev1.RateLimitPolicy](waygatev1.ResetAnnotation, at))
	}
	limit, algorithm := strings.TrimSpace(r.FormValue("limit")), waygatev1.RateLimitAlgorithm(r.FormValue("algorithm"))
	return "RateLimitPolicy " + name + ": " + limit + " (" + string(algorithm) + ")", update(r, sess, &waygatev1.RateLimitPolicy{}, confirmed(r), func(p *waygatev1.RateLimitPolicy) error {
		p.Spec.Limit, p.Spec.Algorithm = limit, algorithm
		return nil
	})
}
