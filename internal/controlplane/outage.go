package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
)

// StopAPIServer kills kube-apiserver, as a crash would; etcd and every
// other process keep running. StartAPIServer starts it again.
func (cp *ControlPlane) StopAPIServer() error {
	pid, argv, env, err := cp.apiServerProcess()
	if err != nil {
		return err
	}
	cp.apiServerArgv, cp.apiServerEnv = argv, env
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	if cp.apiServer != nil { // ours, from an earlier restart
		_ = cp.apiServer.Wait()
		cp.apiServer = nil
		return nil
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		if state, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); bytes.Contains(state, []byte(") Z ")) {
			return nil // exited; envtest reaps it
		}
	}
	return fmt.Errorf("kube-apiserver (pid %d) did not stop within a minute", pid)
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, with the
// same arguments and certificates, so every client's kubeconfig stays valid,
// and waits until it is ready.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	if cp.apiServerArgv == nil {
		return errors.New("StartAPIServer without StopAPIServer")
	}
	cmd := exec.Command(cp.apiServerArgv[0], cp.apiServerArgv[1:]...)
	cmd.Env = cp.apiServerEnv
	log, err := os.Create(filepath.Join(os.TempDir(), fmt.Sprintf("kube-apiserver-%d.log", os.Getpid())))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return err
	}
	cp.apiServer = cmd
	cs, err := kubernetes.NewForConfig(cp.Admin)
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready a minute after its restart (log: %s): %w", log.Name(), err)
		}
	}
}

// apiServerProcess finds the kube-apiserver serving cp.Admin: its pid,
// command line and environment.
func (cp *ControlPlane) apiServerProcess() (int, []string, []string, error) {
	if cp.apiServer != nil {
		argv, env := cp.apiServerArgv, cp.apiServerEnv
		return cp.apiServer.Process.Pid, argv, env, nil
	}
	u, err := url.Parse(cp.Admin.Host)
	if err != nil {
		return 0, nil, nil, err
	}
	port := "--secure-port=" + u.Port()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, nil, nil, err
	}
	for _, d := range dirs {
		raw, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if filepath.Base(argv[0]) != "kube-apiserver" || !slices.Contains(argv, port) {
			continue
		}
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			return 0, nil, nil, err
		}
		var pid int
		_, _ = fmt.Sscanf(filepath.Base(d), "%d", &pid)
		return pid, argv, strings.Split(strings.TrimRight(string(env), "\x00"), "\x00"), nil
	}
	return 0, nil, nil, fmt.Errorf("no kube-apiserver process with %s", port)
}
