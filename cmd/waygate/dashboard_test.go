package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"
)

// waygate dashboard serves on 127.0.0.1 as the caller (--as works as in
// every command) and prints a link that signs in once.
func TestDashboardCommand(t *testing.T) {
	ns := namespace(t)
	must(t, "alice", ns, "maintenance", "GET:/payments", "-r", "Database migration")
	eventually(t, 10*time.Second, func() error {
		if out := must(t, "carol", ns, "audit"); !strings.Contains(out, "Database migration") {
			return fmt.Errorf("the change is not in the log yet:\n%s", out)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, &out, &errOut, "carol", ns, "dashboard", "--no-browser") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("waygate dashboard: %v\n%s", err, errOut.String())
		}
	}()
	var link string
	eventually(t, 10*time.Second, func() error {
		if link = regexp.MustCompile(`http://127\.0\.0\.1:\d+/login\?secret=\S+`).FindString(out.String()); link == "" {
			return fmt.Errorf("no sign-in link yet: %q %q", out.String(), errOut.String())
		}
		return nil
	})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	// Signed in as carol (--as), the Audit tab of the namespace (-n).
	for _, want := range []string{">carol<", "maintenance_on", "Database migration"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("the link: %s, want a page with %q:\n%.3000s", resp.Status, want, body)
		}
	}
	again, err := (&http.Client{}).Get(link)
	if err != nil {
		t.Fatal(err)
	}
	_ = again.Body.Close()
	if again.StatusCode != http.StatusForbidden {
		t.Errorf("the link a second time: %s, want 403", again.Status)
	}
}
