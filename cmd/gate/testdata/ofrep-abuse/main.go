// Command ofrep-abuse is the hostile OFREP client of TestOFREPAbuse: from
// -clients connections at once, for -duration, it POSTs the bodies named
// by -body (files, taken in turn) to -url, and prints how they were
// answered as JSON: counts by status, "refused" for a connection closed
// before an answer, "<status> <file name>" for each body and status. It runs as
// its own process so that the test's forward-auth checker does not share a
// Go runtime with it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "the OFREP URL to POST to")
	clients := flag.Int("clients", 64, "connections at once")
	perClient := flag.Int("per-client", 400, "requests each connection sends at most")
	duration := flag.Duration("duration", 3*time.Second, "how long to send")
	var files []string
	flag.Func("body", "a file holding a body to send (repeatable; taken in turn)", func(s string) error {
		files = append(files, s)
		return nil
	})
	flag.Parse()
	bodies := make([]string, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		bodies[i] = string(b)
	}
	if *url == "" || len(bodies) == 0 {
		fmt.Fprintln(os.Stderr, "ofrep-abuse: give -url and at least one -body")
		os.Exit(2)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *clients}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	counts := map[string]int{}
	var mu sync.Mutex
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for c := range *clients {
		wg.Go(func() {
			for n := 0; n < *perClient && time.Now().Before(deadline); n++ {
				i := (c + n) % len(bodies)
				answer := "refused"
				resp, err := client.Post(*url, "application/json", strings.NewReader(bodies[i]))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					answer = strconv.Itoa(resp.StatusCode)
					if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
						answer += " without Retry-After"
					}
				}
				mu.Lock()
				counts[answer]++
				counts[answer+" "+filepath.Base(files[i])]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	_ = json.NewEncoder(os.Stdout).Encode(counts)
}
