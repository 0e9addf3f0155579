package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/waygate-dev/waygate/internal/dashboard"
)

// dashboardCommand serves the dashboard on this machine, as the caller.
func dashboardCommand(o *Options) *cobra.Command {
	var port int
	var noBrowser bool
	c := &cobra.Command{
		Use:   "dashboard",
		Short: "Open the admin dashboard on this machine, acting as you (your kubeconfig identity)",
		Long: "Serve the dashboard on 127.0.0.1 and open it in the browser. It acts as you, with the identity\n" +
			"--context, --as and --kubeconfig choose, as every other command: it can do what you can, no more.\n" +
			"The printed URL carries a one-time sign-in secret; stop the dashboard with Ctrl-C.",
		Args: cobra.NoArgs,
	}
	c.Flags().IntVar(&port, "port", 0, "Port to serve on (default: a free one).")
	c.Flags().BoolVar(&noBrowser, "no-browser", false, "Print the URL only; do not open a browser.")
	c.RunE = o.run(func(ctx context.Context, _ []string) error {
		cfg, err := o.Kube.ToRESTConfig()
		if err != nil {
			return err
		}
		cfg.UserAgent = "waygate-dashboard/" + o.Version
		srv, err := dashboard.New(dashboard.Options{Local: cfg, Namespace: o.namespace})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("--port %d: %w", port, err)
		}
		url := srv.LoginURL("http://" + ln.Addr().String())
		o.printf("Waygate dashboard, acting as you: %s\n(the link signs you in once; Ctrl-C stops the dashboard)\n", url)
		if !noBrowser {
			openBrowser(url)
		}
		hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
		go func() { <-ctx.Done(); _ = hs.Close() }()
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return c
}

// openBrowser opens url in the desktop's browser, if there is one.
func openBrowser(url string) {
	name := "xdg-open"
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name = "explorer"
	}
	_ = exec.Command(name, url).Start()
}
