// Package realservers starts the real servers the gate's tests and
// benchmarks put it between: redis-server, nginx and Caddy from the
// distribution's packages, on free loopback ports, and a small upstream
// that counts the requests that reach it. `make test` and `.ci/run` install
// the packages (hack/test-deps.sh).
package realservers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// T is what the servers need of a test (testing.TB has it); benchmarks
// outside `go test` give their own.
type T interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Server is a process serving on Addr.
type Server struct {
	Addr   string
	name   string
	argv   []string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	env    []string
}

// FreeAddr is a free loopback address.
func FreeAddr(t T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

func lookPath(t T, bin string) string {
	t.Helper()
	for _, p := range []string{bin, "/usr/sbin/" + bin, "/usr/bin/" + bin} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatalf("%s is not installed: run hack/test-deps.sh (make test does), or apt-get install it", bin)
	return ""
}

// Start starts the server, waits until its address accepts connections,
// and stops it when the test ends.
func (s *Server) Start(t T) {
	t.Helper()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir, cmd.Env = s.dir, append(os.Environ(), s.env...)
	log, err := os.Create(filepath.Join(s.dir, s.name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", s.name, err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	s.exited = exited
	t.Cleanup(s.Stop)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", s.Addr); err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-exited:
			s.cmd = nil
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("%s exited (%v); its log:\n%s", s.name, waitErr, out)
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("%s does not accept connections on %s after 20s; its log:\n%s", s.name, s.Addr, out)
		}
	}
}

// Pid is the server's process id (0 when it is not running).
func (s *Server) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop kills the server (as a crash would) and waits until it is gone.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Redis starts a redis-server with no persistence.
func Redis(t T) *Server {
	t.Helper()
	s := &Server{Addr: FreeAddr(t), name: "redis", dir: t.TempDir()}
	_, port, _ := net.SplitHostPort(s.Addr)
	s.argv = []string{lookPath(t, "redis-server"), "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no"}
	s.Start(t)
	return s
}

// RedisCluster starts a Redis Cluster of three masters (no replicas, no
// persistence) and returns the URL a rueidis client takes for it:
// redis://host:port?addr=host2:port2&addr=host3:port3.
func RedisCluster(t T) string {
	t.Helper()
	const masters = 3
	addrs := make([]string, masters)
	for i := range addrs {
		s := &Server{Addr: FreeAddr(t), name: fmt.Sprint("redis-cluster-", i), dir: t.TempDir()}
		_, port, _ := net.SplitHostPort(s.Addr)
		// The cluster bus gets a free port of its own: the default, port +
		// 10000, may be taken.
		_, busPort, _ := net.SplitHostPort(FreeAddr(t))
		s.argv = []string{lookPath(t, "redis-server"), "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-port", busPort, "--cluster-config-file", filepath.Join(s.dir, "nodes.conf")}
		s.Start(t)
		addrs[i] = s.Addr
	}
	cli := lookPath(t, "redis-cli")
	create := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		host, port, _ := net.SplitHostPort(addr)
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			out, err := exec.Command(cli, "-h", host, "-p", port, "cluster", "info").Output()
			if err == nil && strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the Redis Cluster node %s is not ok after 20s: %v\n%s", addr, err, out)
			}
		}
	}
	return "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
}

// Nginx starts nginx with server, the http-level configuration (upstreams
// and server blocks), in a configuration of its own (no root, a temporary
// prefix, one worker).
func Nginx(t T, addr, server string) *Server {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log notice;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, server)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: addr, name: "nginx", dir: dir, argv: []string{lookPath(t, "nginx"), "-p", dir, "-c", path}}
	s.Start(t)
	return s
}

// Caddy starts Caddy with caddyfile, after global options that turn off its
// admin endpoint and automatic HTTPS.
func Caddy(t T, addr, caddyfile string) *Server {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	conf := "{\n\tadmin off\n\tauto_https off\n}\n\n" + caddyfile
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: addr, name: "caddy", dir: dir, argv: []string{lookPath(t, "caddy"), "run", "--config", path, "--adapter", "caddyfile"},
		env: []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}}
	s.Start(t)
	return s
}

// Upstream is an application behind a gateway: it answers 200 "upstream"
// and counts the requests that reach it.
type Upstream struct {
	Addr string
	hits atomic.Int64
}

// NewUpstream serves an upstream until the test ends.
func NewUpstream(t T) *Upstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &Upstream{Addr: l.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		u.hits.Add(1)
		_, _ = w.Write([]byte("upstream"))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return u
}

// Hits is how many requests reached the upstream.
func (u *Upstream) Hits() int64 { return u.hits.Load() }

// Substitute replaces each old string of a configuration with its new one,
// failing the test if one is missing (the documentation changed).
func Substitute(t T, conf string, oldnew ...string) string {
	t.Helper()
	for i := 0; i < len(oldnew); i += 2 {
		if !strings.Contains(conf, oldnew[i]) {
			t.Fatalf("the configuration has no %q to replace:\n%s", oldnew[i], conf)
		}
	}
	return strings.NewReplacer(oldnew...).Replace(conf)
}
