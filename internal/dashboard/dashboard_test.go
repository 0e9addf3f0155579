package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/internal/controlplane"
	"github.com/waygate-dev/waygate/internal/dashboard"
	auditlog "github.com/waygate-dev/waygate/pkg/audit"
)

var eventually = operatortest.Eventually

// signIn signs name in through the login form.
func signIn(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(site.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), tokens[name]),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(`table#audit, p.empty`)),
	)
}

// gate creates a RouteGate for route in shop and waits for its state.
func gate(t *testing.T, name, route string) *waygatev1.RouteGate {
	t.Helper()
	rg := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: name},
		Spec: waygatev1.RouteGateSpec{Route: waygatev1.RouteKey(route), State: waygatev1.RouteActive}}
	if err := k8s.Create(context.Background(), rg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rg), rg); err != nil {
			return err
		}
		if rg.Status.State == "" {
			return fmt.Errorf("%s has no state yet", name)
		}
		return nil
	})
	return rg
}

// text is the text of the element sel.
func text(ctx context.Context, t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

// submit runs steps that fill in and send a form, and returns the notice
// (or the error) the page answers with.
func submit(ctx context.Context, t *testing.T, steps ...chromedp.Action[chromedp.Void]) string {
	t.Helper()
	if err := chromedp.Do(ctx, append(steps, chromedp.WaitVisible(chromedp.CSS("p.notice, p.error")))...); err != nil {
		t.Fatal(err)
	}
	return text(ctx, t, "p.notice, p.error")
}

// screenshot saves the page as docs/<name>.png.
func screenshot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cp.Root, "docs", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Alice puts GET:/payments into maintenance from the Routes page; the page
// shows it, and the Audit tab shows her change as the dashboard's.
func TestMaintenanceFromTheRoutesPage(t *testing.T) {
	gate(t, "get-payments", "GET:/payments")
	ctx := tab(t)
	if err := chromedp.Do(ctx, signIn("alice"),
		chromedp.Navigate(site.URL+"/routes?ns="+shop),
		chromedp.WaitVisible(chromedp.ID("state-get-payments")),
		chromedp.SetValue(chromedp.ID("state-get-payments"), "maintenance"),
		chromedp.SendKeys(chromedp.ID("reason-get-payments"), "Database migration"),
		chromedp.Submit(chromedp.ID("reason-get-payments")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	); err != nil {
		t.Fatal(err)
	}
	if n := text(ctx, t, "p.notice"); n != "RouteGate get-payments: maintenance" {
		t.Errorf("notice %q", n)
	}
	// The state in effect, once the operator has computed it.
	eventually(t, 10*time.Second, func() error {
		if err := chromedp.Do(ctx, chromedp.Navigate(site.URL+"/routes?ns="+shop), chromedp.WaitVisible(chromedp.CSS("table"))); err != nil {
			return err
		}
		if row := text(ctx, t, "tbody tr"); !strings.Contains(row, "maintenance") || !strings.Contains(row, "Database migration") {
			return fmt.Errorf("routes row: %q", row)
		}
		return nil
	})
	screenshot(ctx, t, "dashboard-routes")

	want := []string{user("alice"), "dashboard", "maintenance_on", "GET:/payments", "active → maintenance", "Database migration"}
	eventually(t, 10*time.Second, func() error {
		if err := chromedp.Do(ctx, chromedp.Navigate(site.URL+"/audit?ns="+shop+"&path=GET:/payments"), chromedp.WaitVisible(chromedp.CSS("table#audit"))); err != nil {
			return err
		}
		row := text(ctx, t, "table#audit tbody tr")
		for _, w := range want {
			if !strings.Contains(row, w) {
				return fmt.Errorf("newest audit row %q lacks %q", row, w)
			}
		}
		return nil
	})
	screenshot(ctx, t, "dashboard-audit")
}

// entries writes n entries about path into ns, as the operator does, one a
// millisecond apart (the oldest first), and returns their reasons.
func entries(t *testing.T, ns, path string, n int, start time.Time) {
	t.Helper()
	opc, err := client.New(cp.Operator, client.Options{Scheme: controlplane.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		at := metav1.NewMicroTime(start.Add(time.Duration(i) * time.Millisecond))
		id := fmt.Sprintf("%s-%d", path, i)
		e := auditlog.NewEntry(ns, "history", "uid", id, waygatev1.AuditEntrySpec{Path: path, Action: "maintenance_on", Actor: "seeder", Platform: waygatev1.PlatformAPI,
			OldStatus: "active", NewStatus: "maintenance", Reason: fmt.Sprintf("entry %d of %s", i, path), Timestamp: at,
			Target: waygatev1.AuditTarget{Kind: "RouteGate", Name: "history", Namespace: ns}})
		if err := opc.Create(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func rows(ctx context.Context, t *testing.T) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("table#audit tbody tr:not(.more)").length`))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// With 300 entries, the Audit tab shows the newest page, loads older pages
// as it is scrolled to the end until the first entry shows, and the path
// filter narrows it to one route.
func TestAuditScrollAndFilter(t *testing.T) {
	const ns = "history"
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(context.Background(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-waygate-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "waygate-view"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: shop, Name: "alice"}},
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	entries(t, ns, "GET:/a", 150, start)
	entries(t, ns, "GET:/b", 150, start.Add(time.Second))
	ctx := tab(t)
	if err := chromedp.Do(ctx, signIn("alice"), chromedp.Navigate(site.URL+"/audit?ns="+ns), chromedp.WaitVisible(chromedp.CSS("table#audit"))); err != nil {
		t.Fatal(err)
	}
	if n := rows(ctx, t); n != 50 {
		t.Fatalf("first page: %d rows, want 50", n)
	}
	if first := text(ctx, t, "table#audit tbody tr"); !strings.Contains(first, "entry 149 of GET:/b") {
		t.Fatalf("the first row is %q, want the newest entry", first)
	}
	eventually(t, 30*time.Second, func() error {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`window.scrollTo(0, document.body.scrollHeight)`)); err != nil {
			return err
		}
		if n := rows(ctx, t); n != 300 {
			return fmt.Errorf("%d rows after scrolling, want 300", n)
		}
		return nil
	})
	if last := text(ctx, t, "table#audit tbody tr:last-child"); !strings.Contains(last, "entry 0 of GET:/a") {
		t.Errorf("the last row is %q, want the first entry written", last)
	}

	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("path"), "GET:/a"), chromedp.Submit(chromedp.ID("path")),
		chromedp.WaitVisible(chromedp.CSS(`table#audit`)),
	); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		paths, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("table#audit tbody tr:not(.more) td:nth-child(5)")).map(td => td.textContent)`))
		if err != nil {
			return err
		}
		if len(paths) != 50 {
			return fmt.Errorf("%d filtered rows, want a page of 50", len(paths))
		}
		for _, p := range paths {
			if p != "GET:/a" {
				return fmt.Errorf("a row of %s in the GET:/a filter", p)
			}
		}
		return nil
	})
}

// A change bob makes with kubectl while the Audit tab is open appears
// within 2 seconds, without a reload.
func TestAuditLiveRow(t *testing.T) {
	rg := gate(t, "get-orders", "GET:/orders")
	ctx := tab(t)
	if err := chromedp.Do(ctx, signIn("alice"), chromedp.Navigate(site.URL+"/audit?ns="+shop), chromedp.WaitVisible(chromedp.CSS("table#audit"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.marker = "same page"`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the event stream connects
	bob, err := cp.As(user("bob"), "system:serviceaccounts", "system:serviceaccounts:"+shop)
	if err != nil {
		t.Fatal(err)
	}
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"state":"disabled","reason":"Moved to v2"}}`))
	if err := bob.Patch(context.Background(), rg, patch, client.FieldOwner("kubectl-patch")); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	deadline := changed.Add(2 * time.Second)
	for {
		first := text(ctx, t, "table#audit tbody tr")
		marker, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.marker || ""`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(first, user("bob")) && strings.Contains(first, "Moved to v2") {
			if marker != "same page" {
				t.Fatal("the page was reloaded")
			}
			t.Logf("bob's change showed %s after the patch", time.Since(changed).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("2s after bob's patch the newest row is %q", first)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Carol may only view: the dashboard shows the API's refusal, and nothing
// changes.
func TestForbiddenShowsTheAPIsMessage(t *testing.T) {
	rg := gate(t, "get-carts", "GET:/carts")
	ctx := tab(t)
	if err := chromedp.Do(ctx, signIn("carol"),
		chromedp.Navigate(site.URL+"/routes?ns="+shop),
		chromedp.WaitVisible(chromedp.ID("state-get-carts")),
		chromedp.SetValue(chromedp.ID("state-get-carts"), "disabled"),
		chromedp.Submit(chromedp.ID("reason-get-carts")),
		chromedp.WaitVisible(chromedp.CSS("p.error")),
	); err != nil {
		t.Fatal(err)
	}
	msg := text(ctx, t, "p.error")
	if !regexp.MustCompile(`routegates.waygate.dev "get-carts" is forbidden: User "` + regexp.QuoteMeta(user("carol")) + `" cannot update`).MatchString(msg) {
		t.Errorf("error shown: %q", msg)
	}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rg), rg); err != nil || rg.Spec.State != waygatev1.RouteActive {
		t.Errorf("after carol's refused change: %v, state %s", err, rg.Spec.State)
	}
	// A namespace carol cannot read: the message, not a blank page.
	if err := chromedp.Do(ctx, chromedp.Navigate(site.URL+"/audit?ns=kube-system"), chromedp.WaitVisible(chromedp.CSS("p.error"))); err != nil {
		t.Fatal(err)
	}
	if msg := text(ctx, t, "p.error"); !strings.Contains(msg, "cannot list resource \"auditentries\"") {
		t.Errorf("audit of kube-system as carol: %q", msg)
	}
}

// Someone who may read every namespace's audit log (dana) is offered it
// on the Audit tab, and sees the newest entries of all namespaces, in time
// order, with their namespace; someone who may not (carol) is not offered
// it, and asking anyway says why.
func TestAuditAllNamespaces(t *testing.T) {
	base := time.Now().Add(30 * time.Minute) // newer than every other entry
	for i, ns := range []string{"all-one", "all-two"} {
		if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		entries(t, ns, "GET:/"+ns, 3, base.Add(time.Duration(i)*500*time.Microsecond))
	}
	carol, _ := signedInClient(t, "carol")
	if body := get(t, carol, "/audit?ns="+shop); strings.Contains(body, `name="all"`) {
		t.Error("carol, who may not list entries cluster-wide, is offered all namespaces")
	}
	if body := get(t, carol, "/audit?ns="+shop+"&all=1"); !strings.Contains(body, `cannot list resource &#34;auditentries&#34; in API group &#34;waygate.dev&#34; at the cluster scope`) {
		t.Errorf("carol asking for all namespaces: no message saying she may not:\n%s", body)
	}
	dana, _ := signedInClient(t, "dana")
	if body := get(t, dana, "/audit?ns="+shop); !strings.Contains(body, `name="all"`) {
		t.Error("dana, who may list entries cluster-wide, is not offered all namespaces")
	}
	body := get(t, dana, "/audit?ns="+shop+"&all=1")
	var order []int
	for _, want := range []string{"entry 2 of GET:/all-two", "entry 2 of GET:/all-one", "entry 1 of GET:/all-two", "entry 1 of GET:/all-one", "entry 0 of GET:/all-two", "entry 0 of GET:/all-one"} {
		order = append(order, strings.Index(body, want))
	}
	if slices.Contains(order, -1) || !slices.IsSorted(order) {
		t.Errorf("all namespaces: the six entries are not all there newest first (at %v):\n%s", order, body)
	}
	for _, ns := range []string{"<td>all-one</td>", "<td>all-two</td>", `<th scope="col">Namespace</th>`} {
		if !strings.Contains(body, ns) {
			t.Errorf("all namespaces: no %s", ns)
		}
	}
}

// signedInClient signs name in over plain HTTP and returns the client
// (with the session cookie) and the session's CSRF token.
func signedInClient(t *testing.T, name string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	body := get(t, c, "/login")
	m := csrf.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in the login form: %s", body)
	}
	resp, err := c.PostForm(site.URL+"/login", url.Values{"token": {tokens[name]}, "csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %s", resp.Status)
	}
	m = csrf.FindStringSubmatch(get(t, c, "/routes?ns="+shop))
	if m == nil {
		t.Fatal("no CSRF token on the Routes page")
	}
	return c, m[1]
}

func get(t *testing.T, c *http.Client, path string) string {
	t.Helper()
	resp, err := c.Get(site.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// State-changing requests need the session's CSRF token; pages need a
// session; every answer forbids inline script.
func TestCSRFAndSessions(t *testing.T) {
	rg := gate(t, "get-users", "GET:/users")
	c, csrf := signedInClient(t, "alice")
	change := url.Values{"ns": {shop}, "name": {"get-users"}, "state": {"disabled"}, "reason": {"x"}}
	for name, form := range map[string]url.Values{"no token": change, "another token": with(change, "csrf", "forged")} {
		resp, err := c.PostForm(site.URL+"/routes", form)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST with %s: %s, want 403", name, resp.Status)
		}
	}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rg), rg); err != nil || rg.Spec.State != waygatev1.RouteActive {
		t.Fatalf("after refused POSTs: %v, state %s", err, rg.Spec.State)
	}
	resp, err := c.PostForm(site.URL+"/routes", with(change, "csrf", csrf))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("POST with the token: %s, want 303", resp.Status)
	}
	// The change's notice is shown once, from the session; a link cannot
	// make the dashboard say something.
	if body := get(t, c, "/routes?ns="+shop); !strings.Contains(body, "RouteGate get-users: disabled") {
		t.Errorf("no notice after the change:\n%.2000s", body)
	}
	if body := get(t, c, "/routes?ns="+shop+"&notice=Your+session+expired,+call+555-0100"); strings.Contains(body, "555-0100") || strings.Contains(body, "get-users: disabled") {
		t.Errorf("a notice from the URL, or the old one again:\n%.2000s", body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}

	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = anon.Get(site.URL + "/routes?ns=" + shop)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("a page without a session: %s to %q, want a redirect to /login", resp.Status, resp.Header.Get("Location"))
	}
	resp, err = anon.PostForm(site.URL+"/routes", with(change, "csrf", csrf))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a POST without a session: %s, want 401", resp.Status)
	}
	// Signing out ends the session.
	resp, err = c.PostForm(site.URL+"/logout", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp, err = c.Get(site.URL + "/routes"); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("after signing out: %s, want a redirect to /login", resp.Status)
		}
	}
}

func with(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for key, vals := range v {
		out[key] = vals
	}
	out.Set(k, val)
	return out
}

// The local mode's sign-in link works once.
func TestLocalSignInWorksOnce(t *testing.T) {
	srv, err := dashboard.New(dashboard.Options{Local: cp.Admin, Namespace: shop})
	if err != nil {
		t.Fatal(err)
	}
	local := httptest.NewServer(srv)
	defer local.Close()
	link := srv.LoginURL(local.URL)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "table") && !strings.Contains(string(body), "No audit entries") {
		t.Fatalf("the link: %s\n%s", resp.Status, body)
	}
	again := &http.Client{}
	resp, err = again.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "used already") {
		t.Errorf("the link a second time: %s\n%s", resp.Status, body)
	}
}

// Alice enables a flag, changes a rate limit and resets its counters from
// the dashboard; each is audited as hers, platform dashboard. The flag,
// segment and rate limit pages are photographed for the docs.
func TestFlagsAndRateLimits(t *testing.T) {
	ctx := context.Background()
	boolean := func(v bool) apiextensionsv1.JSON { return apiextensionsv1.JSON{Raw: []byte(fmt.Sprint(v))} }
	for _, obj := range []client.Object{
		&waygatev1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "beta-users"},
			Spec: waygatev1.SegmentSpec{Description: "People who try things first", Included: []string{"bob", "dave"},
				Rules: []waygatev1.SegmentRule{{Clauses: []waygatev1.Clause{{Attribute: "email", Operator: waygatev1.OperatorEndsWith, Values: []string{"@beta.example.com"}}}}}}},
		&waygatev1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "new-checkout"}, Spec: waygatev1.FeatureFlagSpec{
			Name: "New checkout", Type: waygatev1.FlagBoolean, OffVariation: "off",
			Variations:  []waygatev1.Variation{{Name: "on", Value: boolean(true)}, {Name: "off", Value: boolean(false)}},
			Fallthrough: waygatev1.Serve{Rollout: waygatev1.Rollout{{Variation: "on", Weight: 25000}, {Variation: "off", Weight: 75000}}},
			Targets:     []waygatev1.Target{{Variation: "on", Keys: []string{"alice"}}},
			Rules:       []waygatev1.FlagRule{{ID: "beta", Variation: "on", Clauses: []waygatev1.Clause{{Attribute: "key", Operator: waygatev1.OperatorInSegment, Values: []string{"beta-users"}}}}},
		}},
		&waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "search"}, Spec: waygatev1.RateLimitPolicySpec{
			Route: "GET:/search", Limit: "100/minute", Algorithm: waygatev1.FixedWindow, KeyStrategy: waygatev1.KeyByIP, Enabled: true}},
	} {
		if err := k8s.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	tb := tab(t)
	evaluate := site.URL + "/flags?ns=" + shop + "&eval=new-checkout&context=key%3Dbob"
	if err := chromedp.Do(tb, signIn("alice"), chromedp.Navigate(evaluate), chromedp.WaitVisible(chromedp.ID("eval-result"))); err != nil {
		t.Fatal(err)
	}
	if n := text(tb, t, "#eval-result"); !strings.Contains(n, "new-checkout:") || !strings.Contains(n, "DISABLED") {
		t.Errorf("evaluating the disabled flag for bob: %q", n)
	}
	if err := chromedp.Do(tb, chromedp.Navigate(site.URL+"/flags?ns="+shop), chromedp.WaitVisible(chromedp.ID("switch-new-checkout")),
		chromedp.Click(chromedp.ID("switch-new-checkout")), chromedp.WaitVisible(chromedp.CSS("p.notice"))); err != nil {
		t.Fatal(err)
	}
	if n := text(tb, t, "p.notice"); n != "FeatureFlag new-checkout: enabled" {
		t.Errorf("notice %q", n)
	}
	if err := chromedp.Do(tb, chromedp.Navigate(evaluate), chromedp.WaitVisible(chromedp.ID("eval-result"))); err != nil {
		t.Fatal(err)
	}
	if n := text(tb, t, "#eval-result"); !strings.Contains(n, "true") || !strings.Contains(n, "TARGETING_MATCH") {
		t.Errorf("evaluating the enabled flag for bob (in beta-users): %q", n)
	}
	screenshot(tb, t, "dashboard-flags")

	if err := chromedp.Do(tb, chromedp.Navigate(site.URL+"/ratelimits?ns="+shop),
		chromedp.WaitVisible(chromedp.ID("limit-search")),
		chromedp.SetValue(chromedp.ID("limit-search"), "20/minute"),
		chromedp.SetValue(chromedp.ID("algorithm-search"), "token_bucket"),
		chromedp.Submit(chromedp.ID("limit-search")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	); err != nil {
		t.Fatal(err)
	}
	if n := text(tb, t, "p.notice"); n != "RateLimitPolicy search: 20/minute (token_bucket)" {
		t.Errorf("notice %q", n)
	}
	if err := chromedp.Do(tb, chromedp.Navigate(site.URL+"/ratelimits?ns="+shop), chromedp.WaitVisible(chromedp.ID("reset-search")),
		chromedp.Click(chromedp.ID("reset-search")), chromedp.WaitVisible(chromedp.CSS("p.notice"))); err != nil {
		t.Fatal(err)
	}
	if n := text(tb, t, "p.notice"); n != "RateLimitPolicy search: counters reset" {
		t.Errorf("notice %q", n)
	}
	screenshot(tb, t, "dashboard-ratelimits")
	if err := chromedp.Do(tb, chromedp.Navigate(site.URL+"/segments?ns="+shop), chromedp.WaitVisible(chromedp.CSS("table"))); err != nil {
		t.Fatal(err)
	}
	screenshot(tb, t, "dashboard-segments")

	// Every change is in the log as alice's, from the dashboard.
	for path, action := range map[string]string{"flag:new-checkout": "flag_enabled", "GET:/search": "rl_reset"} {
		eventually(t, 10*time.Second, func() error {
			page, err := auditlog.Query{Namespace: shop, Path: path, Action: action, Limit: 1}.Run(ctx, k8s)
			if err != nil {
				return err
			}
			if len(page.Entries) != 1 {
				return fmt.Errorf("no %s entry for %s", action, path)
			}
			if e := page.Entries[0].Spec; e.Actor != user("alice") || e.Platform != waygatev1.PlatformDashboard {
				return fmt.Errorf("%s of %s by %s from %s", action, path, e.Actor, e.Platform)
			}
			return nil
		})
	}
}

// From the Routes page alice puts a whole service into maintenance but one
// route, gates a route to staging, disables a route with no gate yet until
// a time, and schedules a window on a gate.
func TestRoutesGatedAndScheduled(t *testing.T) {
	ctx := context.Background()
	gate(t, "get-reports", "GET:/reports")
	tb := tab(t)
	create := func(route, service, state, reason, exempt, envs, until string) string {
		t.Helper()
		return submit(tb, t, chromedp.Navigate(site.URL+"/routes?ns="+shop),
			chromedp.Click(chromedp.CSS("details.new summary")),
			chromedp.WaitVisible(chromedp.ID("new-route")),
			chromedp.SendKeys(chromedp.ID("new-route"), route),
			chromedp.SendKeys(chromedp.ID("new-service"), service),
			chromedp.SetValue(chromedp.ID("new-state"), state),
			chromedp.SendKeys(chromedp.ID("new-reason"), reason),
			chromedp.SendKeys(chromedp.ID("new-exempt"), exempt),
			chromedp.SendKeys(chromedp.ID("new-envs"), envs),
			chromedp.SetValue(chromedp.ID("new-until"), until),
			chromedp.Click(chromedp.ID("new-submit")),
		)
	}
	if err := chromedp.Do(tb, signIn("alice")); err != nil {
		t.Fatal(err)
	}
	if n := create("*", "api", "maintenance", "Upgrade", "GET:/health", "", ""); n != "RouteGate api-all-routes created: * maintenance" {
		t.Fatalf("service-wide maintenance: %q", n)
	}
	var rg waygatev1.RouteGate
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: shop, Name: "api-all-routes"}, &rg); err != nil {
		t.Fatal(err)
	}
	if rg.Spec.Route != waygatev1.AllRoutes || rg.Spec.Service != "api" || rg.Spec.State != waygatev1.RouteMaintenance ||
		len(rg.Spec.Exempt) != 1 || rg.Spec.Exempt[0] != "GET:/health" || rg.Spec.Reason != "Upgrade" {
		t.Errorf("service-wide gate %+v", rg.Spec)
	}
	if n := create("get:beta", "", "env_gated", "", "", "staging", ""); n != "RouteGate get-beta created: GET:/beta env_gated" {
		t.Fatalf("environments only: %q", n)
	}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: shop, Name: "get-beta"}, &rg); err != nil || len(rg.Spec.AllowedEnvs) != 1 || rg.Spec.AllowedEnvs[0] != "staging" {
		t.Errorf("environment-gated route: %v %+v", err, rg.Spec)
	}
	if n := create("GET:/gamma", "", "env_gated", "", "", "", ""); !strings.Contains(n, "name the environments") {
		t.Errorf("environments only without environments: %q", n)
	}
	until := time.Now().UTC().Add(time.Hour).Truncate(time.Minute)
	if n := create("GET:/imports", "", "disabled", "", "", "", until.Format("2006-01-02T15:04")); n != "RouteGate get-imports created: GET:/imports disabled" {
		t.Fatalf("disabled until a time: %q", n)
	}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: shop, Name: "get-imports"}, &rg); err != nil || rg.Spec.Until == nil || !rg.Spec.Until.Time.Equal(until) {
		t.Errorf("gate disabled until a time: %v %+v, want until %s", err, rg.Spec, until)
	}

	start := time.Now().UTC().Add(time.Hour).Truncate(time.Minute)
	end := start.Add(time.Hour)
	if n := submit(tb, t, chromedp.Navigate(site.URL+"/routes?ns="+shop),
		chromedp.WaitVisible(chromedp.ID("state-get-reports")),
		chromedp.SetValue(chromedp.ID("state-get-reports"), "active"),
		chromedp.Click(chromedp.CSS(`#state-get-reports ~ details.more summary`)),
		chromedp.SetValue(chromedp.ID("start-get-reports"), start.Format("2006-01-02T15:04")),
		chromedp.SetValue(chromedp.ID("end-get-reports"), end.Format("2006-01-02T15:04")),
		chromedp.Submit(chromedp.ID("reason-get-reports")),
	); n != "RouteGate get-reports: active" {
		t.Fatalf("scheduling a window: %q", n)
	}
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: shop, Name: "get-reports"}, &rg); err != nil {
			return err
		}
		if w := rg.Spec.Window; w == nil || !w.Start.Time.Equal(start) || !w.End.Time.Equal(end) {
			return fmt.Errorf("window %+v, want %s to %s", rg.Spec.Window, start, end)
		}
		if rg.Status.NextTransition == nil || !rg.Status.NextTransition.Time.Equal(start) {
			return fmt.Errorf("next transition %v, want the window's start", rg.Status.NextTransition)
		}
		return nil
	})
}

// From the Routes page alice disables a route until a time, after which
// it is served again by itself; until goes with Disable only, and in the
// future.
func TestDisableUntilFromTheRoutesPage(t *testing.T) {
	ctx := context.Background()
	gate(t, "get-exports", "GET:/exports")
	tb := tab(t)
	if err := chromedp.Do(tb, signIn("alice")); err != nil {
		t.Fatal(err)
	}
	change := func(state, until string) string {
		t.Helper()
		return submit(tb, t, chromedp.Navigate(site.URL+"/routes?ns="+shop),
			chromedp.WaitVisible(chromedp.ID("state-get-exports")),
			chromedp.SetValue(chromedp.ID("state-get-exports"), state),
			chromedp.Click(chromedp.CSS(`#state-get-exports ~ details.more summary`)),
			chromedp.SetValue(chromedp.ID("until-get-exports"), until),
			chromedp.Submit(chromedp.ID("reason-get-exports")),
		)
	}
	until := time.Now().UTC().Add(time.Hour).Truncate(time.Minute)
	if n := change("active", until.Format("2006-01-02T15:04")); !strings.Contains(n, "until ends a disable: choose Disable, or leave until empty") {
		t.Errorf("enable with an until: %q", n)
	}
	if n := change("disabled", until.Add(-2*time.Hour).Format("2006-01-02T15:04")); !strings.Contains(n, "is not in the future: give a later time") {
		t.Errorf("disable until a past time: %q", n)
	}
	if n := change("disabled", until.Format("2006-01-02T15:04")); n != "RouteGate get-exports: disabled" {
		t.Fatalf("disable until a time: %q", n)
	}
	var rg waygatev1.RouteGate
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: shop, Name: "get-exports"}, &rg); err != nil {
			return err
		}
		if rg.Spec.State != waygatev1.RouteDisabled || rg.Spec.Until == nil || !rg.Spec.Until.Time.Equal(until) {
			return fmt.Errorf("spec %+v, want disabled until %s", rg.Spec, until)
		}
		if rg.Status.State != waygatev1.RouteDisabled || rg.Status.NextTransition == nil || !rg.Status.NextTransition.Time.Equal(until) {
			return fmt.Errorf("status %+v, want disabled with the until next", rg.Status)
		}
		return nil
	})
}

// A gate that Helm manages changes only with "change anyway" ticked: the
// next sync would revert it.
func TestGitOpsNeedsConfirmation(t *testing.T) {
	rg := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "get-invoices", Labels: map[string]string{"app.kubernetes.io/managed-by": "Helm"}},
		Spec: waygatev1.RouteGateSpec{Route: "GET:/invoices", State: waygatev1.RouteActive}}
	if err := k8s.Create(context.Background(), rg); err != nil {
		t.Fatal(err)
	}
	c, csrf := signedInClient(t, "alice")
	change := url.Values{"csrf": {csrf}, "ns": {shop}, "name": {"get-invoices"}, "state": {"maintenance"}, "reason": {"Audit"}}
	resp, err := c.PostForm(site.URL+"/routes", change)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "managed by Helm (label app.kubernetes.io/managed-by)") {
		t.Fatalf("changing a Helm-managed gate: %s\n%.3000s", resp.Status, body)
	}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rg), rg); err != nil || rg.Spec.State != waygatev1.RouteActive {
		t.Fatalf("after the refusal: %v, state %s", err, rg.Spec.State)
	}
	resp, err = c.PostForm(site.URL+"/routes", with(change, "confirm", "yes"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rg), rg); resp.StatusCode != http.StatusSeeOther || err != nil || rg.Spec.State != waygatev1.RouteMaintenance {
		t.Errorf("confirmed: %s, %v, state %s", resp.Status, err, rg.Spec.State)
	}
}

// config/dashboard applies (a server-side dry run) and gives the dashboard
// nothing of its own: no token mounted, no binding of its ServiceAccount.
func TestManifests(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(cp.Root, "config", "dashboard")
	if err := cp.Apply(ctx, dir, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	docs, err := cp.Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	manifest := string(docs)
	if strings.Count(manifest, "automountServiceAccountToken: false") != 2 {
		t.Errorf("config/dashboard should mount no token (ServiceAccount and Pod):\n%s", manifest)
	}
	for _, kind := range []string{"kind: Role", "kind: ClusterRole", "kind: RoleBinding", "kind: ClusterRoleBinding"} {
		if strings.Contains(manifest, kind+"\n") {
			t.Errorf("config/dashboard grants the dashboard rights of its own (%s)", kind)
		}
	}
}
