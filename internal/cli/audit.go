package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/routes"
	auditlog "github.com/waygate-dev/waygate/pkg/audit"
)

func auditCommand(o *Options) *cobra.Command {
	var q auditlog.Query
	var all, follow bool
	var since time.Duration
	c := &cobra.Command{
		Use:   "audit [ROUTE]",
		Short: "Show who changed what, when, from where: newest first",
		Long: `Show the audit log, newest first: every change of a route, rate limit,
flag or segment, with the user who made it and where from.

ROUTE is a route key (GET:/payments), or flag:<key>, segment:<key>, or
__global__ for namespace-wide maintenance.`,
		Example: `  waygate audit                    # last 20 entries across all routes
  waygate audit GET:/payments      # filter to a route
  waygate audit --limit 100
  waygate audit --actor alice --since 1h
  waygate audit --watch
  waygate audit --watch -o json    # one entry per line, as they are written`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: gateKind.complete(o),
		RunE: o.run(func(ctx context.Context, args []string) error {
			if len(args) == 1 {
				q.Path = args[0]
				if key, err := routes.ParseRouteKey(args[0]); err == nil && !isAuditPath(args[0]) {
					q.Path = key
				}
			}
			if q.Limit <= 0 {
				return fmt.Errorf("--limit %d: give a number of entries above 0", q.Limit)
			}
			if since > 0 {
				q.Since = o.Now().Add(-since)
			}
			q.Namespace = o.scope(all)
			page, err := q.Run(ctx, o.client)
			if err != nil {
				return err
			}
			entries, version := page.Entries, page.ResourceVersion
			if follow && (o.Output == "json" || o.Output == "yaml") {
				// As kubectl get -w -o json|yaml: one object per entry, no list.
				show := streamer[*waygatev1.AuditEntry](o)
				for i := range entries {
					if err := show(&entries[i]); err != nil {
						return err
					}
				}
				return o.follow(ctx, q, version, show)
			}
			if ok, err := o.structured(&waygatev1.AuditEntryList{Items: entries}); ok || err != nil {
				return err
			}
			if len(entries) == 0 && !follow {
				_, _ = fmt.Fprintln(o.ErrOut, "No audit entries match.")
				return nil
			}
			widths := o.table(auditHeaders(all, o.Output == "wide"), auditRows(o, entries, all))
			if !follow {
				return nil
			}
			return o.follow(ctx, q, version, func(e *waygatev1.AuditEntry) error {
				for _, row := range auditRows(o, []waygatev1.AuditEntry{*e}, all) {
					o.printRow(widths, row)
				}
				return nil
			})
		}),
	}
	c.Flags().IntVar(&q.Limit, "limit", 20, "How many of the newest entries to show.")
	c.Flags().StringVar(&q.Actor, "actor", "", "Only the changes of this user (as the audit log names them, e.g. alice or system:scheduler).")
	c.Flags().StringVar(&q.Action, "action", "", "Only this action, e.g. maintenance_on, disable, flag_enabled.")
	c.Flags().DurationVar(&since, "since", 0, "Only the changes of this last while, e.g. 1h or 30m.")
	c.Flags().BoolVarP(&all, "all-namespaces", "A", false, "Show the entries of every namespace.")
	c.Flags().BoolVarP(&follow, "watch", "w", false, "After the entries, print new ones as they are written, until interrupted (with -o json one entry a line, with -o yaml one document each).")
	return c
}

// isAuditPath tells whether p is an audit path that is not a route key.
func isAuditPath(p string) bool {
	return p == "__global__" || strings.HasPrefix(p, "flag:") || strings.HasPrefix(p, "segment:") || strings.HasPrefix(p, "service:")
}

// follow prints, with show, the entries written after version that q
// selects, until ctx ends (Ctrl-C is the normal way out).
func (o *Options) follow(ctx context.Context, q auditlog.Query, version string, show func(*waygatev1.AuditEntry) error) error {
	if err := q.Watch(ctx, o.client, version, show); err != nil && ctx.Err() == nil {
		return fmt.Errorf("%w; run the command again to go on", err)
	}
	return nil
}

func auditHeaders(all, wide bool) []string {
	h := []string{"TIME", "ACTOR", "PLATFORM", "ACTION", "PATH", "OLD → NEW", "REASON"}
	if wide {
		h = append(h, "TARGET", "AGE")
	}
	if all {
		h = append([]string{"NAMESPACE"}, h...)
	}
	return h
}

func auditRows(o *Options, entries []waygatev1.AuditEntry, all bool) [][]string {
	var rows [][]string
	for _, e := range entries {
		s := e.Spec
		change := orDash(s.OldStatus) + " → " + orDash(s.NewStatus)
		row := []string{o.formatTime(s.Timestamp.Time), s.Actor, orDash(string(s.Platform)), s.Action, s.Path, change, orDash(s.Reason)}
		if o.Output == "wide" {
			row = append(row, fmt.Sprintf("%s/%s", strings.ToLower(s.Target.Kind), s.Target.Name), o.age(s.Timestamp.Time))
		}
		if all {
			row = append([]string{e.Namespace}, row...)
		}
		rows = append(rows, row)
	}
	return rows
}
