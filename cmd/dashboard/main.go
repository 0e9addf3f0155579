// Command dashboard serves Waygate's admin dashboard in a cluster. Users
// sign in with a bearer token the API server accepts; every request is made
// with their token. The dashboard has no credentials of its own: it needs
// only the API server's address and CA (config/dashboard mounts the
// cluster's kube-root-ca.crt and no ServiceAccount token).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"github.com/waygate-dev/waygate/internal/dashboard"
)

func main() {
	addr := flag.String("bind-address", ":8443", "Address to serve on.")
	apiServer := flag.String("api-server", "https://kubernetes.default.svc", "The API server users' requests go to.")
	caFile := flag.String("api-ca-file", "/etc/waygate/kube-ca/ca.crt", "CA bundle of the API server's certificate.")
	certFile := flag.String("tls-cert-file", "", "Serve HTTPS with this certificate (and --tls-key-file); without them plain HTTP, for a TLS-terminating ingress.")
	keyFile := flag.String("tls-key-file", "", "Key of --tls-cert-file.")
	namespace := flag.String("namespace", "default", "The namespace pages open on.")
	ttl := flag.Duration("session-ttl", 8*time.Hour, "How long a session lasts without use.")
	externalTLS := flag.Bool("external-tls", false, "Browsers reach the dashboard over HTTPS through a TLS-terminating ingress: cookies are Secure (and __Host- prefixed) and HSTS is sent, as when it serves TLS itself.")
	flag.Parse()

	o := dashboard.Options{Namespace: *namespace, SessionTTL: *ttl, ExternalTLS: *externalTLS}
	if err := run(*addr, *apiServer, *caFile, *certFile, *keyFile, o); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}

func run(addr, apiServer, caFile, certFile, keyFile string, o dashboard.Options) error {
	if _, err := os.Stat(caFile); err != nil {
		return fmt.Errorf("--api-ca-file: %w", err)
	}
	o.Cluster = &rest.Config{Host: apiServer, TLSClientConfig: rest.TLSClientConfig{CAFile: caFile}, UserAgent: "waygate-dashboard"}
	srv, err := dashboard.New(o)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{Addr: addr, Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown)
	}()
	fmt.Fprintln(os.Stderr, "dashboard: serving on", addr)
	if certFile != "" {
		err = hs.ListenAndServeTLS(certFile, keyFile)
	} else {
		err = hs.ListenAndServe()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
