package audit

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/routes"
)

// GlobalPath is the audit path of namespace-wide gates and policies.
const GlobalPath = "__global__"

// The audit log's entries about itself: a retention run that pruned
// entries records it under AuditPath as RetentionActor.
const (
	AuditPath      = "__audit__"
	ActionPruned   = "audit_pruned"
	RetentionActor = "system:retention"
)

// Actions beyond route state changes (which RouteAction names).
const (
	ActionRouteCreated         = "route_created"
	ActionRouteUpdated         = "route_updated"
	ActionRouteDeleted         = "route_deleted"
	ActionMaintenanceScheduled = "maintenance_scheduled"
	ActionFlagCreated          = "flag_created"
	ActionFlagUpdated          = "flag_updated"
	ActionFlagEnabled          = "flag_enabled"
	ActionFlagDisabled         = "flag_disabled"
	ActionFlagDeleted          = "flag_deleted"
	ActionSegmentCreated       = "segment_created"
	ActionSegmentUpdated       = "segment_updated"
	ActionSegmentDeleted       = "segment_deleted"
	ActionPolicyCreated        = "rl_policy_created"
	ActionPolicyUpdated        = "rl_policy_updated"
	ActionPolicyDeleted        = "rl_policy_deleted"
	ActionPolicyReset          = "rl_reset"
)

// maxChanges and maxChangeLen keep an entry small.
const (
	maxChanges   = 20
	maxChangeLen = 256
	maxValueLen  = 100
)

// Describe says what a change did: path, action, old and new status,
// reason and changed fields. old is nil for a creation, cur for a deletion;
// now is the time the change is made (it decides whether a window is open).
func Describe(old, cur client.Object, now time.Time) (Record, error) {
	switch o := pick(old, cur).(type) {
	case *waygatev1.RouteGate:
		return describeRoute(asType[*waygatev1.RouteGate](old), asType[*waygatev1.RouteGate](cur), now), nil
	case *waygatev1.FeatureFlag:
		return describeFlag(asType[*waygatev1.FeatureFlag](old), asType[*waygatev1.FeatureFlag](cur)), nil
	case *waygatev1.Segment:
		return describeSegment(asType[*waygatev1.Segment](old), asType[*waygatev1.Segment](cur)), nil
	case *waygatev1.RateLimitPolicy:
		return describePolicy(asType[*waygatev1.RateLimitPolicy](old), asType[*waygatev1.RateLimitPolicy](cur)), nil
	default:
		return Record{}, fmt.Errorf("audit: %T is not an audited kind", o)
	}
}

// RouteAction names a change of a route's state in effect, or "" when the
// state did not change. A service-wide gate's maintenance is global.
func RouteAction(serviceWide bool, from, to waygatev1.RouteState) string {
	switch {
	case from == to:
		return ""
	case serviceWide && to == waygatev1.RouteMaintenance:
		return "global_maintenance_on"
	case serviceWide && from == waygatev1.RouteMaintenance:
		return "global_maintenance_off"
	case to == waygatev1.RouteMaintenance:
		return "maintenance_on"
	case to == waygatev1.RouteDisabled:
		return "disable"
	case to == waygatev1.RouteEnvGated:
		return "env_gate"
	case to == waygatev1.RouteDeprecated:
		return "deprecate"
	case from == waygatev1.RouteMaintenance:
		return "maintenance_off"
	default:
		return "enable"
	}
}

// RoutePath is the audit path of a gate or policy: its route key, or for
// "*" the service ("service:<name>") or the whole namespace (__global__).
func RoutePath(route waygatev1.RouteKey, service waygatev1.ServiceName) string {
	switch {
	case route != waygatev1.AllRoutes:
		return string(route)
	case service != "":
		return "service:" + string(service)
	default:
		return GlobalPath
	}
}

func describeRoute(old, cur *waygatev1.RouteGate, now time.Time) Record {
	rg := pick(old, cur)
	// A route without a gate is active.
	from, to := waygatev1.RouteActive, waygatev1.RouteActive
	if old != nil {
		from = routes.OwnState(&old.Spec, now).State
	}
	if cur != nil {
		to = routes.OwnState(&cur.Spec, now).State
	}
	// A deletion is always called one, whatever it does to the route's
	// state (old → new says that).
	action := ActionRouteDeleted
	if cur != nil {
		action = RouteAction(rg.Spec.Route == waygatev1.AllRoutes, from, to)
	}
	if action == "" {
		var oldWindow *waygatev1.MaintenanceWindow
		if old != nil {
			oldWindow = old.Spec.Window
		}
		switch {
		case !reflect.DeepEqual(oldWindow, cur.Spec.Window):
			action = ActionMaintenanceScheduled
		case old == nil:
			action = ActionRouteCreated
		default:
			action = ActionRouteUpdated
		}
	}
	rec := Record{Path: RoutePath(rg.Spec.Route, rg.Spec.Service), Action: action, Old: string(from), New: string(to), Reason: rg.Spec.Reason}
	if action == ActionRouteCreated {
		// Nothing was before the gate, as for the other kinds' creations
		// (one that changes the route's state says so: maintenance_on).
		rec.Old = ""
	}
	if old != nil && cur != nil {
		rec.Changes = specChanges(old.Spec, cur.Spec)
	}
	return rec
}

func describeFlag(old, cur *waygatev1.FeatureFlag) Record {
	f := pick(old, cur)
	rec := describeObject(old, cur, "flag:"+f.Key(), [3]string{ActionFlagCreated, ActionFlagUpdated, ActionFlagDeleted},
		func(f *waygatev1.FeatureFlag) (string, any) {
			if f.Spec.Enabled {
				return "enabled", f.Spec
			}
			return "disabled", f.Spec
		})
	switch {
	case old != nil && cur != nil && !old.Spec.Enabled && cur.Spec.Enabled:
		rec.Action = ActionFlagEnabled
	case old != nil && cur != nil && old.Spec.Enabled && !cur.Spec.Enabled:
		rec.Action = ActionFlagDisabled
	}
	return rec
}

func describeSegment(old, cur *waygatev1.Segment) Record {
	return describeObject(old, cur, "segment:"+pick(old, cur).Key(), [3]string{ActionSegmentCreated, ActionSegmentUpdated, ActionSegmentDeleted},
		func(s *waygatev1.Segment) (string, any) { return SegmentStatus(s), s.Spec })
}

// SegmentStatus sums a segment up for oldStatus and newStatus:
// "2 included, 1 excluded, 1 rule".
func SegmentStatus(s *waygatev1.Segment) string {
	rules := fmt.Sprintf("%d rules", len(s.Spec.Rules))
	if len(s.Spec.Rules) == 1 {
		rules = "1 rule"
	}
	return fmt.Sprintf("%d included, %d excluded, %s", len(s.Spec.Included), len(s.Spec.Excluded), rules)
}

func describePolicy(old, cur *waygatev1.RateLimitPolicy) Record {
	p := pick(old, cur)
	rec := describeObject(old, cur, RoutePath(p.Spec.Route, p.Spec.Service), [3]string{ActionPolicyCreated, ActionPolicyUpdated, ActionPolicyDeleted},
		func(p *waygatev1.RateLimitPolicy) (string, any) {
			if !p.Spec.Enabled {
				return "disabled", p.Spec
			}
			return p.Spec.Limit, p.Spec
		})
	if old != nil && cur != nil && ResetRequested(old, cur) {
		if len(rec.Changes) == 0 {
			rec.Action = ActionPolicyReset
		}
		rec.Changes = append(rec.Changes, "counters reset requested at "+cur.Annotations[ResetAnnotation])
	}
	return rec
}

// ResetRequested tells whether the change from old to cur asks for a
// counter reset: a new waygate.dev/reset-at on a RateLimitPolicy.
func ResetRequested(old, cur client.Object) bool {
	if _, ok := cur.(*waygatev1.RateLimitPolicy); !ok || isNil(old) {
		return false
	}
	at, ok := cur.GetAnnotations()[ResetAnnotation]
	return ok && at != old.GetAnnotations()[ResetAnnotation]
}

// describeObject describes the creation, update or deletion (actions, in
// that order) of an object whose status and spec view returns; the reason
// comes from the waygate.dev/reason annotation.
func describeObject[P client.Object](old, cur P, path string, actions [3]string, view func(P) (status string, spec any)) Record {
	rec := Record{Path: path, Reason: pick(old, cur).GetAnnotations()[ReasonAnnotation]}
	switch {
	case isNil(old):
		rec.Action, rec.New = actions[0], first(view(cur))
	case isNil(cur):
		rec.Action, rec.Old = actions[2], first(view(old))
	default:
		oldStatus, oldSpec := view(old)
		newStatus, newSpec := view(cur)
		rec.Action, rec.Old, rec.New, rec.Changes = actions[1], oldStatus, newStatus, specChanges(oldSpec, newSpec)
	}
	return rec
}

func first(s string, _ any) string { return s }

// specChanges lists the top-level spec fields that differ, one short line
// each: "spec.limit: 100/minute → 200/minute" for scalars, "spec.rules
// changed" otherwise.
func specChanges(old, cur any) []string {
	a, b := fieldsOf(old), fieldsOf(cur)
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		va, inA := a[k]
		vb, inB := b[k]
		if reflect.DeepEqual(va, vb) {
			continue
		}
		var line string
		switch {
		case !inA:
			line = fmt.Sprintf("spec.%s set to %s", k, short(vb))
		case !inB:
			line = fmt.Sprintf("spec.%s removed (was %s)", k, short(va))
		default:
			line = fmt.Sprintf("spec.%s: %s → %s", k, short(va), short(vb))
		}
		if len(out) == maxChanges-1 && len(keys) > maxChanges {
			out = append(out, "and more")
			break
		}
		out = append(out, truncate(line, maxChangeLen))
	}
	return out
}

func fieldsOf(spec any) map[string]any {
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// short renders a value in a few characters: scalars as themselves, lists
// and objects by size.
func short(v any) string {
	switch x := v.(type) {
	case []any:
		return fmt.Sprintf("[%d items]", len(x))
	case map[string]any:
		raw, _ := json.Marshal(x)
		return truncate(string(raw), maxValueLen)
	default:
		raw, _ := json.Marshal(x)
		s := string(raw)
		if str, ok := x.(string); ok {
			s = str
		}
		return truncate(s, maxValueLen)
	}
}

// truncate shortens s to at most n characters.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// pick returns cur unless it is nil.
func pick[T client.Object](old, cur T) T {
	if isNil(cur) {
		return old
	}
	return cur
}

func isNil(o client.Object) bool { return o == nil || reflect.ValueOf(o).IsNil() }

func asType[T client.Object](o client.Object) T {
	var zero T
	if isNil(o) {
		return zero
	}
	return o.(T)
}
