package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/waygate-dev/waygate/hack/internal/procmem"
	"github.com/waygate-dev/waygate/internal/controlplane"
)

// dashboardTimes serves the dashboard as `waygate dashboard` does (its own
// process, the admin's kubeconfig) over memoryNamespace, and times its
// pages from the benchmark's side of the loopback: the Audit tab's first
// page, a page filtered by path, the Routes page; then reads its memory.
func dashboardTimes(ctx context.Context, cp *controlplane.ControlPlane, dir string, gates, entries int) error {
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if err := controlplane.WriteKubeconfig(cp.Admin, kubeconfig); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, waygateBin, "--kubeconfig", kubeconfig, "-n", memoryNamespace, "dashboard", "--no-browser")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("waygate dashboard printed no URL: %w\n%s", err, stderr.String())
	}
	link := regexp.MustCompile(`http://\S+`).FindString(line)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	if _, err := fetchPage(c, link, "Audit"); err != nil {
		return err
	}
	base := strings.Split(link, "/login")[0]
	fmt.Printf("dashboard (waygate dashboard, its own process) with %d RouteGates and %d AuditEntries, 30 requests each after one to warm up (target p99 <= 300ms):\n", gates, entries)
	for _, p := range []struct{ name, path, want string }{
		{"Audit tab, first page", "/audit?ns=" + memoryNamespace, "Older entries"},
		{"Audit tab, filtered by path", "/audit?ns=" + memoryNamespace + "&path=GET:/items/42", "GET:/items/42"},
		{"Audit tab, an older page", "", ""},
		{"Routes, first page", "/routes?ns=" + memoryNamespace, "Next page"},
	} {
		path := p.path
		if path == "" {
			// The next page, by the link the first page carries.
			body, err := fetchPage(c, base+"/audit?ns="+memoryNamespace, "Older entries")
			if err != nil {
				return err
			}
			path = strings.ReplaceAll(regexp.MustCompile(`href="(/audit/rows\?[^"]+)"`).FindStringSubmatch(body)[1], "&amp;", "&")
		}
		var runs []time.Duration
		for i := range 31 {
			start := time.Now()
			if _, err := fetchPage(c, base+path, p.want); err != nil {
				return err
			}
			if i > 0 {
				runs = append(runs, time.Since(start))
			}
		}
		slices.Sort(runs)
		fmt.Printf("  %-30s p50 %6s  p99 %6s\n", p.name, runs[len(runs)/2].Round(100*time.Microsecond), runs[len(runs)-1].Round(100*time.Microsecond))
	}
	rss, hwm, err := procmem.Read(cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("  dashboard memory: RSS %d MiB, peak %d MiB (target <= 80 MiB)\n", rss>>20, hwm>>20)
	return nil
}

// fetchPage GETs url and checks that the page is whole and has want.
func fetchPage(c *http.Client, url, want string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) || strings.Contains(string(b), `class="error"`) {
		return "", fmt.Errorf("GET %s: %s, want a page with %q:\n%.2000s", url, resp.Status, want, b)
	}
	return string(b), nil
}
