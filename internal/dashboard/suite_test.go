package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waygate-dev/waygate/controllers/operatortest"
	"github.com/waygate-dev/waygate/internal/controlplane"
	"github.com/waygate-dev/waygate/internal/dashboard"
)

// One control plane, operator, dashboard (cluster mode) and headless
// Chromium for the package. The people sign in with ServiceAccount tokens
// of the namespace "shop": alice and bob may edit Waygate's kinds there,
// carol may only view them.
var (
	cp      *controlplane.ControlPlane
	k8s     client.Client
	site    *httptest.Server
	browser context.Context
	tokens  = map[string]string{}
)

const shop = "shop"

func TestMain(m *testing.M) {
	os.Exit(operatortest.Run(operatortest.RunInput{M: m, Setup: setup}))
}

// setup creates the people, and starts the dashboard and Chromium.
func setup(env *operatortest.Env) (func(), error) {
	cp, k8s = env.ControlPlane, env.Client
	if err := people(context.Background()); err != nil {
		return nil, err
	}
	srv, err := dashboard.New(dashboard.Options{Cluster: &rest.Config{Host: cp.Admin.Host, TLSClientConfig: rest.TLSClientConfig{CAData: cp.Admin.CAData}}, Namespace: shop})
	if err != nil {
		return nil, err
	}
	site = httptest.NewServer(srv)
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		return site.Close, errors.New("the dashboard tests drive Chromium: apt-get install chromium (hack/test-deps.sh does)")
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1400, 900))...)
	var cancelBrowser context.CancelFunc
	browser, cancelBrowser = chromedp.NewContext(alloc)
	cleanup := func() { cancelBrowser(); cancelAlloc(); site.Close() }
	if err := chromedp.Do(browser); err != nil {
		return cleanup, fmt.Errorf("starting Chromium: %w", err)
	}
	return cleanup, nil
}

// people creates shop's ServiceAccounts, binds Waygate's roles, and asks
// for each a token.
func people(ctx context.Context) error {
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shop}}); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cp.Admin)
	if err != nil {
		return err
	}
	// dana reads the audit log of every namespace, as a platform admin.
	if err := k8s.Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "audit-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"waygate.dev"}, Resources: []string{"auditentries"}, Verbs: []string{"get", "list", "watch"}}},
	}); err != nil {
		return err
	}
	if err := k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "dana-audit-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "audit-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: shop, Name: "dana"}},
	}); err != nil {
		return err
	}
	for name, roles := range map[string][]string{"alice": {"waygate-edit", "waygate-view"}, "bob": {"waygate-edit", "waygate-view"}, "carol": {"waygate-view"}, "dana": {"waygate-view"}} {
		if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: name}}); err != nil {
			return err
		}
		for _, role := range roles {
			if err := k8s.Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: name + "-" + role},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: shop, Name: name}},
			}); err != nil {
				return err
			}
		}
		tr, err := cs.CoreV1().ServiceAccounts(shop).CreateToken(ctx, name, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("a token for %s: %w", name, err)
		}
		tokens[name] = tr.Status.Token
	}
	return nil
}

// user is the username of one of shop's people.
func user(name string) string { return "system:serviceaccount:" + shop + ":" + name }

// tab opens a tab in a browser context of its own (its own cookies: each
// test signs in).
func tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}
