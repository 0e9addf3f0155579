package shipped

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/waygate-dev/waygate/controllers"
)

// objects are the objects of a kind among objs, decoded into T.
func objects[T any](t *testing.T, objs []*unstructured.Unstructured, kind string) []*T {
	t.Helper()
	var out []*T
	for _, u := range objs {
		if u.GetKind() != kind {
			continue
		}
		obj := new(T)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
			t.Fatalf("%s %s: %v", kind, u.GetName(), err)
		}
		out = append(out, obj)
	}
	return out
}

// component is the binary a Deployment's image holds: waygate-<component>.
func component(dep *appsv1.Deployment) string {
	repo, _, _ := strings.Cut(path.Base(dep.Spec.Template.Spec.Containers[0].Image), ":")
	repo, _, _ = strings.Cut(repo, "@")
	return strings.TrimPrefix(repo, "waygate-")
}

// runDeployment runs the Deployment name of objs through the stand-in.
func runDeployment(t *testing.T, objs []*unstructured.Unstructured, name string) (*pod, *appsv1.Deployment) {
	t.Helper()
	for _, dep := range objects[appsv1.Deployment](t, objs, "Deployment") {
		if dep.Name != name {
			continue
		}
		bin, ok := bins[component(dep)]
		if !ok {
			t.Fatalf("%s: image %s holds no binary this repository builds", name, dep.Spec.Template.Spec.Containers[0].Image)
		}
		var sa *corev1.ServiceAccount
		for _, s := range objects[corev1.ServiceAccount](t, installed, "ServiceAccount") {
			if s.Name == dep.Spec.Template.Spec.ServiceAccountName && s.Namespace == dep.Namespace {
				sa = s
			}
		}
		if sa == nil {
			t.Fatalf("%s runs as service account %q, which the manifests do not create", name, dep.Spec.Template.Spec.ServiceAccountName)
		}
		return run(t, dep, sa, bin), dep
	}
	t.Fatalf("the manifests have no Deployment %s", name)
	return nil, nil
}

// serviceAddr is where the pod serves port (by name) of the Service svc:
// the Service must select the pod and its targetPort be a container port.
func serviceAddr(t *testing.T, p *pod, dep *appsv1.Deployment, svc, port string) string {
	t.Helper()
	for _, s := range objects[corev1.Service](t, installed, "Service") {
		if s.Name != svc || s.Namespace != dep.Namespace {
			continue
		}
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
			t.Fatalf("Service %s selects %v, which the pods of %s (%v) do not have", svc, s.Spec.Selector, dep.Name, dep.Spec.Template.Labels)
		}
		for _, sp := range s.Spec.Ports {
			if sp.Name != port {
				continue
			}
			target := sp.TargetPort
			if target.IntVal == 0 && target.StrVal == "" {
				target = intstr.FromInt32(sp.Port)
			}
			addr, err := p.address(target)
			if err != nil {
				t.Fatalf("Service %s port %s: %v", svc, port, err)
			}
			return addr
		}
		t.Fatalf("Service %s has no port %s", svc, port)
	}
	t.Fatalf("the manifests have no Service %s", svc)
	return ""
}

// The operator as shipped: it wins the election, its certificate rotator
// writes the webhook certificate, which reaches the pod through the Secret
// volume, and injects the CA into the webhook configurations; the webhooks
// then answer through their Service, with that CA and the Service's DNS name,
// on the paths the configurations call; the metrics are served over HTTPS
// and refuse an unauthenticated scrape.
func TestOperatorAsShipped(t *testing.T) {
	p, dep := runDeployment(t, installed, "waygate-manager")
	ctx := context.Background()
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := env.Client.Get(ctx, types.NamespacedName{Name: controllers.ValidatingWebhooks}, &vwc); err != nil {
		t.Fatal(err)
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := env.Client.Get(ctx, types.NamespacedName{Name: controllers.MutatingWebhooks}, &mwc); err != nil {
		t.Fatal(err)
	}
	var calls []admissionregistrationv1.WebhookClientConfig
	for _, w := range vwc.Webhooks {
		calls = append(calls, w.ClientConfig)
	}
	for _, w := range mwc.Webhooks {
		calls = append(calls, w.ClientConfig)
	}
	for _, cc := range calls {
		callWebhook(t, p, dep, cc, cc.CABundle)
	}
	if len(calls) < 3 {
		t.Errorf("the webhook configurations call %d webhooks, want the audit, validation and defaulting ones", len(calls))
	}

	metrics := serviceAddr(t, p, dep, "waygate-metrics", "metrics")
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the scrape's authentication is under test, not the certificate
	resp, err := hc.Get("https://" + metrics + "/metrics")
	if err != nil {
		t.Fatalf("metrics over HTTPS: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		t.Errorf("an unauthenticated scrape of the operator's metrics: %s, want 401 or 403", resp.Status)
	}
}

// callWebhook calls the webhook of cc as the API server would: through the
// Service it names, verifying the certificate with ca for the Service's DNS
// name, with an AdmissionReview, which must be answered.
func callWebhook(t *testing.T, p *pod, dep *appsv1.Deployment, cc admissionregistrationv1.WebhookClientConfig, ca []byte) {
	t.Helper()
	if cc.Service == nil || cc.Service.Path == nil {
		t.Fatalf("a webhook calls %+v, want the operator's Service and a path", cc)
	}
	name := fmt.Sprintf("%s.%s.svc", cc.Service.Name, cc.Service.Namespace)
	var port string
	for _, s := range objects[corev1.Service](t, installed, "Service") {
		for _, sp := range s.Spec.Ports {
			if s.Name == cc.Service.Name && (cc.Service.Port == nil || sp.Port == *cc.Service.Port) {
				port = sp.Name
			}
		}
	}
	addr := serviceAddr(t, p, dep, cc.Service.Name, port)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatalf("webhook %s: no CA to verify it with (is the caBundle injected?)", *cc.Service.Path)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}}}
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"shipped"}}`
	resp, err := hc.Post("https://"+addr+*cc.Service.Path, "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatalf("webhook %s as the API server calls it (%s, verified with its CA): %v", *cc.Service.Path, name, err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var got struct {
		Response struct{ UID string } `json:"response"`
	}
	if err := json.Unmarshal(body, &got); resp.StatusCode != http.StatusOK || err != nil || got.Response.UID != "shipped" {
		t.Errorf("webhook %s answered %s %s, want an AdmissionReview response", *cc.Service.Path, resp.Status, body)
	}
}

// With config/certmanager, the operator rotates nothing and serves the
// certificate cert-manager writes into the Secret (here the test plays
// cert-manager, for the Certificate the component creates); the webhook
// configurations ask cert-manager's CA injector for that Certificate's CA.
func TestOperatorWithCertManager(t *testing.T) {
	objs, err := env.RenderObjects(filepath.Join(env.Root, "config", "default-certmanager"))
	if err != nil {
		t.Fatal(err)
	}
	var cert *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Certificate" {
			cert = o
		}
	}
	if cert == nil {
		t.Fatal("config/default-certmanager has no Certificate")
	}
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	issued := issue(t, dnsNames)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: cert.GetNamespace()}}
	if _, err := controllerutil.CreateOrUpdate(context.Background(), env.Client, secret, func() error {
		secret.Data = issued
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	p, dep := runDeployment(t, objs, "waygate-manager")
	var calls []admissionregistrationv1.WebhookClientConfig
	for _, o := range objs {
		if !strings.HasSuffix(o.GetKind(), "WebhookConfiguration") {
			continue
		}
		if from, want := o.GetAnnotations()["cert-manager.io/inject-ca-from"], cert.GetNamespace()+"/"+cert.GetName(); from != want {
			t.Errorf("%s %s: inject-ca-from %q, want the Certificate %s", o.GetKind(), o.GetName(), from, want)
		}
		webhooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
		for _, w := range webhooks {
			var cc admissionregistrationv1.WebhookClientConfig
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(w.(map[string]any)["clientConfig"].(map[string]any), &cc); err != nil {
				t.Fatal(err)
			}
			calls = append(calls, cc)
		}
	}
	for _, cc := range calls {
		callWebhook(t, p, dep, cc, issued["ca.crt"])
	}
	if len(calls) < 3 {
		t.Errorf("the webhook configurations call %d webhooks, want the audit, validation and defaulting ones", len(calls))
	}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(secret), secret); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret.Data["tls.crt"], issued["tls.crt"]) {
		t.Error("the operator replaced cert-manager's certificate: it still rotates")
	}
}

// issue is a self-signed serving certificate for names, as a Secret's data
// the way cert-manager writes it (tls.crt, tls.key, ca.crt).
func issue(t *testing.T, names []string) map[string][]byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return map[string][]byte{"tls.crt": crt, "ca.crt": crt, "tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}
}

// The gate as shipped serves forward-auth, OFREP, ext_authz and metrics on
// the ports its Service names, as its service account.
func TestGateAsShipped(t *testing.T) {
	p, dep := runDeployment(t, installed, "waygate-gate")
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("http://" + serviceAddr(t, p, dep, "waygate-gate", "metrics") + "/metrics"); code != http.StatusOK || !strings.Contains(body, "waygate_gate_") {
		t.Errorf("metrics: %d, with no waygate_gate_ series", code)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+serviceAddr(t, p, dep, "waygate-gate", "http")+"/v1/check/default/shop", nil)
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", "/shipped")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("forward-auth: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("forward-auth of a route no gate names: %s, want 200", resp.Status)
	}
	ofrep := serviceAddr(t, p, dep, "waygate-gate", "ofrep")
	resp, err = http.Post("http://"+ofrep+"/ofrep/v1/evaluate/flags/shipped", "application/json", bytes.NewReader([]byte(`{"context":{"targetingKey":"u"}}`)))
	if err != nil {
		t.Fatalf("OFREP: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("OFREP evaluation of a flag that does not exist: %s, want 404", resp.Status)
	}
	c, err := net.DialTimeout("tcp", serviceAddr(t, p, dep, "waygate-gate", "grpc"), 5*time.Second)
	if err != nil {
		t.Fatalf("ext_authz: %v", err)
	}
	_ = c.Close()
}

// The dashboard as shipped starts without a service account token (it acts
// only with its users' credentials), reading the cluster's CA from the
// kube-root-ca.crt volume, and serves its login page through its Service.
func TestDashboardAsShipped(t *testing.T) {
	p, dep := runDeployment(t, installed, "waygate-dashboard")
	resp, err := http.Get("http://" + serviceAddr(t, p, dep, "waygate-dashboard", "http") + "/login")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("login page: %s", resp.Status)
	}
}

// Every port a NetworkPolicy opens is a port of the pods it selects: a
// misnamed port would close it (a NetworkPolicy allows only what it names).
func TestNetworkPoliciesNameDeclaredPorts(t *testing.T) {
	policies := objects[networkingv1.NetworkPolicy](t, installed, "NetworkPolicy")
	if len(policies) == 0 {
		t.Fatal("the manifests have no NetworkPolicy")
	}
	deps := objects[appsv1.Deployment](t, installed, "Deployment")
	for _, np := range policies {
		selector, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			t.Fatal(err)
		}
		selected := 0
		for _, dep := range deps {
			if dep.Namespace != np.Namespace || !selector.Matches(labels.Set(dep.Spec.Template.Labels)) {
				continue
			}
			selected++
			ports := map[string]bool{}
			for _, c := range dep.Spec.Template.Spec.Containers {
				for _, cp := range c.Ports {
					ports[cp.Name] = true
					ports[fmt.Sprint(cp.ContainerPort)] = true
				}
			}
			for _, rule := range np.Spec.Ingress {
				for _, port := range rule.Ports {
					if port.Port != nil && !ports[port.Port.String()] {
						t.Errorf("NetworkPolicy %s opens port %s, which %s does not declare", np.Name, port.Port.String(), dep.Name)
					}
				}
			}
		}
		if selected == 0 {
			t.Errorf("NetworkPolicy %s selects no pod of the manifests", np.Name)
		}
	}
}
