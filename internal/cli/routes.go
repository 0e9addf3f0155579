package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/edit"
)

// routeFlags are the flags of every command that changes a route.
type routeFlags struct {
	reason  string
	service string
	force   bool
}

func (f *routeFlags) add(c *cobra.Command) {
	c.Flags().StringVarP(&f.reason, "reason", "r", "", "Why: shown to callers and recorded in the audit log.")
	c.Flags().StringVar(&f.service, "service", "", "The service the route belongs to (spec.service), when gates of several services share the key.")
	c.Flags().BoolVar(&f.force, "force", false, "Change a RouteGate that GitOps manages, knowing the next sync reverts it.")
}

func routeCommands(o *Options) []*cobra.Command {
	return []*cobra.Command{
		statusCommand(o),
		routeCommand(o, "enable ROUTE", "Serve a route normally again (state active, no window)", false,
			func(spec *waygatev1.RouteGateSpec, _ []string) error {
				spec.State, spec.Window, spec.Until = waygatev1.RouteActive, nil, nil
				return nil
			}, nil),
		disableCommand(o),
		maintenanceCommand(o, "maintenance ROUTE", "Put a route into maintenance (503 MAINTENANCE_MODE), now or in a window", false),
		maintenanceCommand(o, "schedule ROUTE", "Schedule a maintenance window: active until --start, maintenance until --end", true),
		envCommand(o),
		deprecateCommand(o),
	}
}

// routeCommand is a command that applies change to the gate of its first
// argument, with --reason (see withReason). create says whether a route
// without a gate gets one.
func routeCommand(o *Options, use, short string, create bool, change func(*waygatev1.RouteGateSpec, []string) error, more func(*cobra.Command)) *cobra.Command {
	var f routeFlags
	c := &cobra.Command{
		Use:               use,
		Short:             short,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: gateKind.complete(o),
		RunE: o.run(func(ctx context.Context, args []string) error {
			return o.changeRoute(ctx, args[0], f, create, func(spec *waygatev1.RouteGateSpec) error { return change(spec, args[1:]) })
		}),
	}
	f.add(c)
	if more != nil {
		more(c)
	}
	return c
}

func disableCommand(o *Options) *cobra.Command {
	var until string
	return routeCommand(o, "disable ROUTE", "Answer a route with 503 ROUTE_DISABLED, for good or --until a time", true,
		func(spec *waygatev1.RouteGateSpec, _ []string) error {
			spec.State, spec.Window, spec.Until = waygatev1.RouteDisabled, nil, nil
			if until == "" {
				return nil
			}
			t, err := o.parseTime("--until", until)
			if err != nil {
				return err
			}
			if !t.After(o.Now()) {
				return fmt.Errorf("--until %s is not in the future (%s): give a later time, or a delay from now such as 2h", until, o.formatTime(t))
			}
			spec.Until = &metav1.Time{Time: t}
			return nil
		}, func(c *cobra.Command) {
			c.Flags().StringVar(&until, "until", "", "Serve the route again by itself at this time (2030-06-01T18:00:00Z, 2030-06-01 18:00 in local time) or after this delay (2h); audited as system:scheduler's enable.")
		})
}

func maintenanceCommand(o *Options, use, short string, window bool) *cobra.Command {
	var start, end string
	c := routeCommand(o, use, short, true, func(spec *waygatev1.RouteGateSpec, _ []string) error {
		if !window && start == "" && end == "" {
			spec.State, spec.Window, spec.Until = waygatev1.RouteMaintenance, nil, nil
			return nil
		}
		w, err := o.window(start, end)
		if err != nil {
			return err
		}
		// Active outside the window, maintenance inside it.
		spec.State, spec.Window, spec.Until = waygatev1.RouteActive, w, nil
		return nil
	}, func(c *cobra.Command) {
		c.Flags().StringVar(&start, "start", "", "When maintenance starts: a time (2030-06-01T03:00:00Z, 2030-06-01 03:00 in local time) or a delay from now (30m).")
		c.Flags().StringVar(&end, "end", "", "When maintenance ends: a time or a delay from now (2h).")
		if window {
			_ = c.MarkFlagRequired("start")
			_ = c.MarkFlagRequired("end")
		}
	})
	return c
}

func envCommand(o *Options) *cobra.Command {
	env := &cobra.Command{Use: "env", Short: "Serve a route only in some environments (403 ENV_GATED elsewhere)"}
	set := routeCommand(o, "set ROUTE ENV...", "Serve ROUTE only in the environments ENV...", true,
		func(spec *waygatev1.RouteGateSpec, envs []string) error {
			spec.State, spec.Window, spec.Until, spec.AllowedEnvs = waygatev1.RouteEnvGated, nil, nil, envs
			return nil
		}, nil)
	set.Args = cobra.MinimumNArgs(2)
	unset := routeCommand(o, "clear ROUTE", "Serve ROUTE in every environment again", false,
		func(spec *waygatev1.RouteGateSpec, _ []string) error {
			if spec.State == waygatev1.RouteEnvGated {
				spec.State = waygatev1.RouteActive
			}
			spec.AllowedEnvs = nil
			return nil
		}, nil)
	env.AddCommand(set, unset)
	return env
}

func deprecateCommand(o *Options) *cobra.Command {
	var sunset, successor string
	c := routeCommand(o, "deprecate ROUTE", "Mark a route deprecated: still served, with Deprecation, Sunset and Link headers", true,
		func(spec *waygatev1.RouteGateSpec, _ []string) error {
			if sunset == "" && successor == "" {
				return fmt.Errorf("deprecate needs --sunset, --successor or both: when the route goes away, and what replaces it")
			}
			d := &waygatev1.Deprecation{Successor: successor}
			if sunset != "" {
				t, err := o.parseTime("--sunset", sunset)
				if err != nil {
					return err
				}
				d.Sunset = &metav1.Time{Time: t}
			}
			spec.State, spec.Window, spec.Until, spec.Deprecation = waygatev1.RouteDeprecated, nil, nil, d
			return nil
		}, func(c *cobra.Command) {
			c.Flags().StringVar(&sunset, "sunset", "", "When the route stops being served: a time (2030-01-01) or a delay from now (720h).")
			c.Flags().StringVar(&successor, "successor", "", "The route or URL that replaces it, e.g. /v2/orders.")
		})
	return c
}

// changeRoute applies change to the RouteGate of arg, creating one when
// there is none and create is set, and prints what changed.
func (o *Options) changeRoute(ctx context.Context, arg string, f routeFlags, create bool, change func(*waygatev1.RouteGateSpec) error) error {
	change = withReason(change, f.reason)
	key, gates, rg, err := gateKind.lookup(ctx, o, arg, f.service)
	if err != nil && (!create || !isNotFound(err)) {
		return err
	}
	if rg == nil {
		return o.createGate(ctx, gates, key, f.service, change)
	}
	before, err := edit.Update(ctx, o.writer, rg, f.force, func(rg *waygatev1.RouteGate) error { return change(&rg.Spec) })
	if err != nil {
		return err
	}
	return o.changed(gateKind.label(rg), o.describeSpec(&before.Spec), o.describeSpec(&rg.Spec), before, rg)
}

// withReason is change followed by giving the spec its reason: the given
// one, or none when the state or window changed without one (the old reason
// was for the old state); other changes keep the reason.
func withReason(change func(*waygatev1.RouteGateSpec) error, reason string) func(*waygatev1.RouteGateSpec) error {
	return func(spec *waygatev1.RouteGateSpec) error {
		was := *spec.DeepCopy()
		if err := change(spec); err != nil {
			return err
		}
		if reason != "" || spec.State != was.State || !equality.Semantic.DeepEqual(spec.Window, was.Window) {
			spec.Reason = reason
		}
		return nil
	}
}

// createGate creates the RouteGate of a route that has none.
func (o *Options) createGate(ctx context.Context, gates []waygatev1.RouteGate, key, service string, change func(*waygatev1.RouteGateSpec) error) error {
	rg := &waygatev1.RouteGate{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.namespace},
		Spec:       waygatev1.RouteGateSpec{Route: waygatev1.RouteKey(key), Service: waygatev1.ServiceName(service), State: waygatev1.RouteActive},
	}
	if err := change(&rg.Spec); err != nil {
		return err
	}
	if err := o.writer.NameForRoute(ctx, rg, service, key); err != nil {
		return err
	}
	if err := o.create(ctx, gateKind.label(rg), rg, func() string { return o.describeSpec(&rg.Spec) }); err != nil {
		return err
	}
	if near := closeMatches(key, keysOf(gates, gateKind)); len(near) > 0 {
		o.warnf("%s had no RouteGate; close matches that have one: %s (if you meant one of them, `waygate enable %s` undoes this)",
			key, strings.Join(near, ", "), key)
	}
	return nil
}

// describeSpec says in a few words what a gate's spec asks for.
func (o *Options) describeSpec(spec *waygatev1.RouteGateSpec) string {
	s := string(spec.State)
	switch {
	case spec.Window != nil:
		s = fmt.Sprintf("maintenance from %s to %s", o.formatTime(spec.Window.Start.Time), o.formatTime(spec.Window.End.Time))
	case spec.Until != nil:
		s += " until " + o.formatTime(spec.Until.Time)
	case spec.State == waygatev1.RouteEnvGated:
		s += " [" + strings.Join(spec.AllowedEnvs, ", ") + "]"
	case spec.State == waygatev1.RouteDeprecated && spec.Deprecation != nil:
		var parts []string
		if spec.Deprecation.Sunset != nil {
			parts = append(parts, "sunset "+o.formatTime(spec.Deprecation.Sunset.Time))
		}
		if spec.Deprecation.Successor != "" {
			parts = append(parts, "successor "+spec.Deprecation.Successor)
		}
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	if len(spec.Exempt) > 0 {
		s += " except " + strings.Join(routeKeysOf(spec.Exempt), ", ")
	}
	if spec.IncludeForceActive {
		s += " (force-active routes too)"
	}
	if spec.Reason != "" {
		s += fmt.Sprintf(" %q", spec.Reason)
	}
	return s
}

func routeKeysOf(keys []waygatev1.RouteKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out
}

// routeLabel names a route in what the CLI prints: its key, and its
// service when there is one.
func routeLabel(key, service string) string {
	if service == "" {
		return key
	}
	return key + " (service " + service + ")"
}

// window reads --start and --end.
func (o *Options) window(start, end string) (*waygatev1.MaintenanceWindow, error) {
	if end == "" {
		return nil, fmt.Errorf("a maintenance window needs --end (and --start, now when left out)")
	}
	s := o.Now()
	if start != "" {
		var err error
		if s, err = o.parseTime("--start", start); err != nil {
			return nil, err
		}
	}
	e, err := o.parseTime("--end", end)
	if err != nil {
		return nil, err
	}
	if !e.After(s) {
		return nil, fmt.Errorf("--end (%s) must be after --start (%s)", o.formatTime(e), o.formatTime(s))
	}
	return &waygatev1.MaintenanceWindow{Start: metav1.NewTime(s), End: metav1.NewTime(e)}, nil
}

// timeLayouts are the times the CLI reads, besides delays from now.
var timeLayouts = []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", time.DateOnly}

// parseTime reads a time (RFC 3339, or a date and time in local time, or
// UTC with --utc) or a delay from now such as 2h or 30m.
func (o *Options) parseTime(flag, v string) (time.Time, error) {
	if d, err := time.ParseDuration(strings.TrimPrefix(v, "+")); err == nil {
		return o.Now().Add(d).Truncate(time.Second), nil
	}
	loc := time.Local
	if o.UTC {
		loc = time.UTC
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: give a time (2030-06-01T03:00:00Z, or 2030-06-01 03:00 in %s) or a delay from now (30m, 2h)", flag, v, loc)
}
