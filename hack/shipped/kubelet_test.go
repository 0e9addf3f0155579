package shipped

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"

	"github.com/waygate-dev/waygate/internal/controlplane"
)

// A kubelet stand-in: it runs a Deployment's container as a local process
// the way a kubelet would run it in a pod, taking from the manifest what a
// kubelet takes (arguments, environment, ports, probes, volumes, service
// account), so that a typo in any of them fails here as it would in a
// cluster. Where a pod and a local process must differ, it rewrites only
// what it has to, and says where:
//
//   - a port the container declares is bound, by the flag that binds it in
//     the manifest (or by a flag's default), on a free loopback port
//     instead; a flag that binds a port the container does not declare is an
//     error (the Service and probes could not reach it);
//   - a volume's mount path becomes a temporary directory the stand-in keeps
//     in step with the Secret or ConfigMap, as the kubelet does; flags that
//     name a path under a mount (in the manifest or by default) are pointed
//     at it;
//   - the service account's token becomes a kubeconfig as that service
//     account, found as in-cluster configuration is (KUBECONFIG), and only
//     when the pod mounts a token; https://kubernetes.default.svc becomes
//     the control plane's address.

// pod is a Deployment's container running as a local process.
type pod struct {
	name string
	// addrs maps each declared container port, by name and by number, to
	// the loopback address it is served on.
	addrs map[string]string
	log   string
	spec  corev1.PodSpec
	exit  chan error
	cmd   *exec.Cmd
}

// identities are the service accounts the stand-in can run as: the control
// plane's users for them.
func identities() map[string]*rest.Config {
	return map[string]*rest.Config{
		controlplane.OperatorServiceAccount: env.Operator,
		controlplane.GateServiceAccount:     env.Gate,
	}
}

// run starts dep's one container from the binary bin, as the kubelet would,
// and waits until its readiness probe passes; the test's cleanup stops it
// as the kubelet would (SIGTERM, then the grace period).
func run(t *testing.T, dep *appsv1.Deployment, serviceAccount *corev1.ServiceAccount, bin string) *pod {
	t.Helper()
	spec := dep.Spec.Template.Spec
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		t.Fatalf("%s: the stand-in runs pods of one container, this one has %d (and %d init containers)", dep.Name, len(spec.Containers), len(spec.InitContainers))
	}
	c := spec.Containers[0]
	if len(c.Command) != 0 {
		t.Fatalf("%s: the container overrides the image's entrypoint with %q; the images' entrypoint is the binary, give it args", dep.Name, c.Command)
	}
	dir := t.TempDir()
	p := &pod{name: dep.Name, addrs: map[string]string{}, log: filepath.Join(dir, "container.log"), spec: spec, exit: make(chan error, 1)}

	flags, err := flagsOf(bin)
	if err != nil {
		t.Fatal(err)
	}
	args, err := parseArgs(flags, c.Args)
	if err != nil {
		t.Fatalf("%s: args %q: %v", dep.Name, c.Args, err)
	}
	if err := p.bindPorts(flags, args, c.Ports); err != nil {
		t.Fatalf("%s: %v", dep.Name, err)
	}
	mounts, err := p.mountVolumes(t, dep.Namespace, dir, c.VolumeMounts)
	if err != nil {
		t.Fatalf("%s: %v", dep.Name, err)
	}
	for name, f := range flags {
		value := cmp.Or(args[name], f.def)
		for _, m := range mounts {
			if rest, ok := strings.CutPrefix(value, m.path); ok && (rest == "" || rest[0] == '/') {
				args[name] = m.dir + rest
				break
			}
		}
		if value == "https://kubernetes.default.svc" {
			args[name] = env.Admin.Host
		}
	}

	environ := []string{"HOME=" + dir}
	if mountsToken(spec, serviceAccount) {
		cfg, ok := identities()[spec.ServiceAccountName]
		if !ok {
			t.Fatalf("%s: the pod runs as service account %q, which the stand-in has no identity for", dep.Name, spec.ServiceAccountName)
		}
		kubeconfig := filepath.Join(dir, "kubeconfig")
		if err := controlplane.WriteKubeconfig(cfg, kubeconfig); err != nil {
			t.Fatal(err)
		}
		environ = append(environ, "KUBECONFIG="+kubeconfig)
	}
	for _, e := range c.Env {
		v, err := p.envValue(dep, e)
		if err != nil {
			t.Fatalf("%s: env %s: %v", dep.Name, e.Name, err)
		}
		environ = append(environ, e.Name+"="+v)
	}

	var argv []string
	for name, v := range args {
		argv = append(argv, "--"+name+"="+v)
	}
	slices.Sort(argv)
	p.start(t, bin, argv, environ)
	t.Logf("%s: %s %s (log: %s)", dep.Name, filepath.Base(bin), strings.Join(argv, " "), p.log)
	if err := p.probe(c.StartupProbe, 2*time.Minute); err != nil {
		t.Fatalf("%s: startup probe: %v\n%s", dep.Name, err, p.tail())
	}
	if err := p.probe(c.ReadinessProbe, 2*time.Minute); err != nil {
		t.Fatalf("%s: readiness probe: %v\n%s", dep.Name, err, p.tail())
	}
	if err := p.probe(c.LivenessProbe, 30*time.Second); err != nil {
		t.Fatalf("%s: liveness probe: %v\n%s", dep.Name, err, p.tail())
	}
	return p
}

func (p *pod) start(t *testing.T, bin string, argv, environ []string) {
	t.Helper()
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, argv...)
	p.cmd.Env = environ
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.exit <- p.cmd.Wait()
		_ = logFile.Close()
	}()
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("%s: %v\n%s", p.name, err, p.tail())
		}
	})
}

// stop sends SIGTERM and waits the pod's grace period, as the kubelet does;
// a container that is still running then, or exits with an error, fails.
func (p *pod) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	grace := 30 * time.Second
	if s := p.spec.TerminationGracePeriodSeconds; s != nil {
		grace = time.Duration(*s) * time.Second
	}
	select {
	case err := <-p.exit:
		if err != nil {
			return fmt.Errorf("exited on SIGTERM with %w", err)
		}
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("still running %v after SIGTERM (terminationGracePeriodSeconds): killed (%w)", grace, <-p.exit)
	}
}

// tail is the end of the container's log, for failures.
func (p *pod) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// flag is one flag of a binary, as its -help lists it.
type flag struct {
	// typ is the value's type ("" for a bool).
	typ string
	def string
}

var (
	flagLine    = regexp.MustCompile(`^  -(\S+)(?: (\S+))?`)
	flagDefault = regexp.MustCompile(`\(default (.+)\)\s*$`)
)

// flagsOf reads the flags of a Go binary from its -help.
func flagsOf(bin string) (map[string]flag, error) {
	out, err := exec.Command(bin, "-help").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s -help: %w\n%s", bin, err, out)
	}
	flags := map[string]flag{}
	var name string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if m := flagLine.FindStringSubmatch(line); m != nil {
			name = m[1]
			flags[name] = flag{typ: m[2]}
			continue
		}
		if m := flagDefault.FindStringSubmatch(line); m != nil && name != "" {
			f := flags[name]
			if f.def, err = strconv.Unquote(m[1]); err != nil {
				f.def = m[1]
			}
			flags[name] = f
		}
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("%s -help lists no flags:\n%s", bin, out)
	}
	return flags, nil
}

// parseArgs checks a container's args against the binary's flags and
// returns them by name.
func parseArgs(flags map[string]flag, argv []string) (map[string]string, error) {
	args := map[string]string{}
	for _, a := range argv {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f, ok := flags[name]
		switch {
		case !strings.HasPrefix(a, "-"):
			return nil, fmt.Errorf("%q is not a flag: the binaries take no positional arguments", a)
		case !ok:
			return nil, fmt.Errorf("%q: the binary has no flag --%s (see its -help)", a, name)
		case !hasValue && f.typ != "":
			return nil, fmt.Errorf("%q: write --%s=<%s> as one argument", a, name, f.typ)
		case !hasValue:
			value = "true"
		}
		if _, dup := args[name]; dup {
			return nil, fmt.Errorf("--%s is given twice", name)
		}
		args[name] = value
	}
	return args, nil
}

// listenAddr matches the value of a flag that binds a port: ":8080",
// "0.0.0.0:8080".
var listenAddr = regexp.MustCompile(`^[0-9A-Za-z.\-\[\]:]*:(\d+)$`)

// boundPort is the port a flag binds ("" for none): Waygate's binaries name
// a listening address --*bind-address and a listening port --*-port.
func boundPort(name string, f flag, value string) string {
	switch {
	case strings.HasSuffix(name, "bind-address"):
		if m := listenAddr.FindStringSubmatch(value); m != nil && m[1] != "0" {
			return m[1]
		}
	case strings.HasSuffix(name, "-port") && f.typ == "int" && value != "0":
		return value
	}
	return ""
}

// bindPorts binds each declared port on a free loopback port, through the
// one flag that binds it, and refuses flags that bind undeclared ports.
func (p *pod) bindPorts(flags map[string]flag, args map[string]string, ports []corev1.ContainerPort) error {
	declared := map[string]bool{}
	for _, port := range ports {
		declared[strconv.Itoa(int(port.ContainerPort))] = true
	}
	for name, f := range flags {
		if port := boundPort(name, f, cmp.Or(args[name], f.def)); port != "" && !declared[port] {
			return fmt.Errorf("--%s=%s binds port %s, which the container does not declare (add it to ports, or change the flag)", name, cmp.Or(args[name], f.def), port)
		}
	}
	free, err := controlplane.FreeAddrs(len(ports))
	if err != nil {
		return err
	}
	for i, port := range ports {
		number := strconv.Itoa(int(port.ContainerPort))
		var binders []string
		for name, f := range flags {
			if boundPort(name, f, cmp.Or(args[name], f.def)) == number {
				binders = append(binders, name)
			}
		}
		slices.Sort(binders)
		if len(binders) != 1 {
			return fmt.Errorf("port %s (%d): bound by flags %v of the binary, want exactly one (is the flag's port a typo?)", port.Name, port.ContainerPort, binders)
		}
		addr := free[i]
		name := binders[0]
		if flags[name].typ == "int" {
			_, args[name], _ = net.SplitHostPort(addr)
		} else {
			args[name] = addr
		}
		p.addrs[number] = addr
		if port.Name != "" {
			p.addrs[port.Name] = addr
		}
	}
	return nil
}

// address is where a probe's or a Service's port (a name or a number) is
// served, or an error naming the ports the container declares.
func (p *pod) address(port intstr.IntOrString) (string, error) {
	if addr, ok := p.addrs[port.String()]; ok {
		return addr, nil
	}
	var declared []string
	for k := range p.addrs {
		declared = append(declared, k)
	}
	slices.Sort(declared)
	return "", fmt.Errorf("port %s is not a port of the container (it declares %v)", port.String(), declared)
}

// mount is a volume mount and the directory standing in for it.
type mount struct{ path, dir string }

// mountVolumes gives each volume mount a directory, kept in step with its
// Secret or ConfigMap until the test ends, as the kubelet does.
func (p *pod) mountVolumes(t *testing.T, namespace, dir string, volumeMounts []corev1.VolumeMount) ([]mount, error) {
	var mounts []mount
	for _, vm := range volumeMounts {
		i := slices.IndexFunc(p.spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 {
			return nil, fmt.Errorf("volumeMount %s names no volume of the pod", vm.Name)
		}
		v := p.spec.Volumes[i]
		m := mount{path: filepath.Clean(vm.MountPath), dir: filepath.Join(dir, "volumes", vm.Name)}
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return nil, err
		}
		var read func(context.Context) (map[string][]byte, error)
		switch {
		case v.Secret != nil:
			key := types.NamespacedName{Namespace: namespace, Name: v.Secret.SecretName}
			read = func(ctx context.Context) (map[string][]byte, error) {
				var s corev1.Secret
				err := env.Client.Get(ctx, key, &s)
				return s.Data, err
			}
		case v.ConfigMap != nil:
			key := types.NamespacedName{Namespace: namespace, Name: v.ConfigMap.Name}
			read = func(ctx context.Context) (map[string][]byte, error) {
				var cm corev1.ConfigMap
				err := env.Client.Get(ctx, key, &cm)
				data := map[string][]byte{}
				for k, s := range cm.Data {
					data[k] = []byte(s)
				}
				return data, err
			}
		case v.EmptyDir != nil:
			mounts = append(mounts, m)
			continue
		default:
			return nil, fmt.Errorf("volume %s: the stand-in mounts Secrets, ConfigMaps and emptyDirs only", v.Name)
		}
		ctx, cancel := context.WithCancel(context.Background())
		synced := make(chan struct{})
		// The directory goes at the test's end: not before the last write.
		t.Cleanup(func() { cancel(); <-synced })
		sync := func() error {
			data, err := read(ctx)
			if err != nil {
				return err
			}
			for k, b := range data {
				if err := os.WriteFile(filepath.Join(m.dir, k), b, 0o600); err != nil {
					return err
				}
			}
			return nil
		}
		// A pod does not start until its volumes are there.
		if err := sync(); err != nil {
			close(synced)
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		go func() {
			defer close(synced)
			for ctx.Err() == nil {
				_ = sync()
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
		mounts = append(mounts, m)
	}
	// The longest path first: a flag's path belongs to the innermost mount.
	slices.SortFunc(mounts, func(a, b mount) int { return len(b.path) - len(a.path) })
	return mounts, nil
}

// mountsToken says whether the pod gets a service account token: the pod's
// setting, else its service account's, else yes.
func mountsToken(spec corev1.PodSpec, sa *corev1.ServiceAccount) bool {
	if spec.AutomountServiceAccountToken != nil {
		return *spec.AutomountServiceAccountToken
	}
	if sa != nil && sa.AutomountServiceAccountToken != nil {
		return *sa.AutomountServiceAccountToken
	}
	return true
}

// envValue is the value the kubelet gives an environment variable.
func (p *pod) envValue(dep *appsv1.Deployment, e corev1.EnvVar) (string, error) {
	if e.ValueFrom == nil {
		return e.Value, nil
	}
	if f := e.ValueFrom.FieldRef; f != nil {
		switch f.FieldPath {
		case "metadata.namespace":
			return dep.Namespace, nil
		case "metadata.name":
			return dep.Name + "-0", nil
		case "spec.serviceAccountName":
			return p.spec.ServiceAccountName, nil
		case "status.podIP":
			return "127.0.0.1", nil
		}
		return "", fmt.Errorf("the stand-in does not know fieldRef %s", f.FieldPath)
	}
	if s := e.ValueFrom.SecretKeyRef; s != nil {
		var secret corev1.Secret
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: dep.Namespace, Name: s.Name}, &secret); err != nil {
			return "", err
		}
		return string(secret.Data[s.Key]), nil
	}
	return "", fmt.Errorf("the stand-in does not know this valueFrom")
}

// probe polls a probe until it passes (an HTTP status of 200-399 or an open
// TCP port, as the kubelet counts it) or timeout passes or the container
// exits; a nil probe passes.
func (p *pod) probe(pr *corev1.Probe, timeout time.Duration) error {
	if pr == nil {
		return nil
	}
	var check func() error
	switch {
	case pr.HTTPGet != nil:
		addr, err := p.address(pr.HTTPGet.Port)
		if err != nil {
			return err
		}
		scheme := strings.ToLower(cmp.Or(string(pr.HTTPGet.Scheme), "http"))
		url := scheme + "://" + addr + cmp.Or(pr.HTTPGet.Path, "/")
		// The kubelet does not verify the certificate of an HTTPS probe.
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // as the kubelet probes
		check = func() error {
			resp, err := hc.Get(url)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode >= 400 {
				return fmt.Errorf("GET %s: %s", url, resp.Status)
			}
			return nil
		}
	case pr.TCPSocket != nil:
		addr, err := p.address(pr.TCPSocket.Port)
		if err != nil {
			return err
		}
		check = func() error {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err == nil {
				_ = c.Close()
			}
			return err
		}
	default:
		return fmt.Errorf("the stand-in runs httpGet and tcpSocket probes only")
	}
	deadline := time.After(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case exitErr := <-p.exit:
			p.exit <- exitErr
			return fmt.Errorf("the container exited (%w) before its probe passed", exitErr)
		case <-deadline:
			return fmt.Errorf("not passing after %v: %w", timeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
