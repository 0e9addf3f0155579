package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

func TestPlatformOf(t *testing.T) {
	cases := []struct {
		fieldManager, user string
		want               waygatev1.Platform
	}{
		{"kubectl-client-side-apply", "alice", waygatev1.PlatformKubectl},
		{"kubectl-edit", "alice", waygatev1.PlatformKubectl},
		{"kubectl", "alice", waygatev1.PlatformKubectl},
		{"waygate-cli", "alice", waygatev1.PlatformCLI},
		{"waygate-dashboard", "alice", waygatev1.PlatformDashboard},
		{"argocd-controller", "system:serviceaccount:argocd:argocd-application-controller", waygatev1.PlatformGitOps},
		{"kustomize-controller", "system:serviceaccount:flux-system:kustomize-controller", waygatev1.PlatformGitOps},
		{"helm", "alice", waygatev1.PlatformGitOps},
		{"", "system:serviceaccount:argocd:argocd-application-controller", waygatev1.PlatformGitOps},
		{"", "alice", waygatev1.PlatformAPI},
		{"Go-http-client", "alice", waygatev1.PlatformAPI},
		{"kubectlish", "alice", waygatev1.PlatformAPI},
	}
	for _, tc := range cases {
		if got := PlatformOf(tc.fieldManager, tc.user); got != tc.want {
			t.Errorf("PlatformOf(%q, %q) = %s, want %s", tc.fieldManager, tc.user, got, tc.want)
		}
	}
}

func TestDeletePlatform(t *testing.T) {
	for _, tc := range []struct {
		mark, user string
		want       waygatev1.Platform
	}{
		{"cli", "alice", waygatev1.PlatformCLI},
		{"dashboard", "alice", waygatev1.PlatformDashboard},
		{"", "alice", waygatev1.PlatformAPI},
		{"system", "alice", waygatev1.PlatformAPI},
		{"anything", "alice", waygatev1.PlatformAPI},
		{"", "system:serviceaccount:argocd:argocd-application-controller", waygatev1.PlatformGitOps},
	} {
		obj := &waygatev1.RouteGate{}
		if tc.mark != "" {
			obj.Annotations = map[string]string{PlatformAnnotation: tc.mark}
		}
		if got := DeletePlatform(obj, tc.user); got != tc.want {
			t.Errorf("DeletePlatform(mark %q, %s) = %s, want %s", tc.mark, tc.user, got, tc.want)
		}
	}
}

func TestRouteAction(t *testing.T) {
	const (
		active, maint, disabled, gated, deprecated = waygatev1.RouteActive, waygatev1.RouteMaintenance, waygatev1.RouteDisabled, waygatev1.RouteEnvGated, waygatev1.RouteDeprecated
	)
	cases := []struct {
		global   bool
		from, to waygatev1.RouteState
		want     string
	}{
		{false, active, active, ""},
		{false, active, maint, "maintenance_on"},
		{false, maint, active, "maintenance_off"},
		{false, disabled, active, "enable"},
		{false, active, disabled, "disable"},
		{false, maint, disabled, "disable"},
		{false, active, gated, "env_gate"},
		{false, active, deprecated, "deprecate"},
		{false, deprecated, active, "enable"},
		{true, active, maint, "global_maintenance_on"},
		{true, maint, active, "global_maintenance_off"},
	}
	for _, tc := range cases {
		if got := RouteAction(tc.global, tc.from, tc.to); got != tc.want {
			t.Errorf("RouteAction(%v, %s, %s) = %q, want %q", tc.global, tc.from, tc.to, got, tc.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	now := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	rg := func(spec waygatev1.RouteGateSpec) *waygatev1.RouteGate {
		return &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: spec}
	}
	flag := func(enabled bool, desc string) *waygatev1.FeatureFlag {
		return &waygatev1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Name: "new-checkout", Annotations: map[string]string{ReasonAnnotation: "launch"}},
			Spec: waygatev1.FeatureFlagSpec{Enabled: enabled, Description: desc, Variations: []waygatev1.Variation{{Name: "on", Value: apiextensionsv1.JSON{Raw: []byte("true")}}}}}
	}
	policy := func(limit string, enabled bool) *waygatev1.RateLimitPolicy {
		return &waygatev1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: waygatev1.RateLimitPolicySpec{Route: "*", Service: "orders", Limit: limit, Enabled: enabled}}
	}
	reset := func(p *waygatev1.RateLimitPolicy, at string) *waygatev1.RateLimitPolicy {
		p.Annotations = map[string]string{ResetAnnotation: at}
		return p
	}
	window := &waygatev1.MaintenanceWindow{Start: metav1.NewTime(now.Add(time.Hour)), End: metav1.NewTime(now.Add(2 * time.Hour))}
	earlier, later := metav1.NewTime(now.Add(-time.Hour)), metav1.NewTime(now.Add(2*time.Hour))
	cases := []struct {
		name     string
		old, new client.Object
		want     string // action path old→new reason [changes]
	}{
		{"route created in maintenance", nil, rg(waygatev1.RouteGateSpec{Route: "GET:/payments", State: "maintenance", Reason: "Database migration"}),
			"maintenance_on GET:/payments active→maintenance Database migration []"},
		{"route created active", nil, rg(waygatev1.RouteGateSpec{Route: "GET:/payments", State: "active"}), "route_created GET:/payments →active  []"},
		{"window scheduled", rg(waygatev1.RouteGateSpec{Route: "/r", State: "active"}), rg(waygatev1.RouteGateSpec{Route: "/r", State: "active", Window: window}),
			"maintenance_scheduled /r active→active  [spec.window set to {\"end\":\"2026-06-01T05:00:00Z\",\"start\":\"2026-06-01T04:00:00Z\"}]"},
		{"reason edited", rg(waygatev1.RouteGateSpec{Route: "/r", State: "disabled", Reason: "a"}), rg(waygatev1.RouteGateSpec{Route: "/r", State: "disabled", Reason: "b"}),
			"route_updated /r disabled→disabled b [spec.reason: a → b]"},
		{"disabled until later", rg(waygatev1.RouteGateSpec{Route: "/r", State: "active"}), rg(waygatev1.RouteGateSpec{Route: "/r", State: "disabled", Reason: "bad deploy", Until: &later}),
			"disable /r active→disabled bad deploy [spec.reason set to bad deploy|spec.state: active → disabled|spec.until set to 2026-06-01T05:00:00Z]"},
		// Once its until has passed, a disable is over: disabling again is one.
		{"disabled again after the until", rg(waygatev1.RouteGateSpec{Route: "/r", State: "disabled", Until: &earlier}), rg(waygatev1.RouteGateSpec{Route: "/r", State: "disabled", Until: &later}),
			"disable /r active→disabled  [spec.until: 2026-06-01T02:00:00Z → 2026-06-01T05:00:00Z]"},
		// A deletion is always route_deleted; old → new is its effect.
		{"route deleted in maintenance", rg(waygatev1.RouteGateSpec{Route: "/r", State: "maintenance"}), nil, "route_deleted /r maintenance→active  []"},
		{"route deleted disabled", rg(waygatev1.RouteGateSpec{Route: "/r", State: "disabled", Reason: "gone"}), nil, "route_deleted /r disabled→active gone []"},
		{"service gate deleted in maintenance", rg(waygatev1.RouteGateSpec{Route: "*", Service: "pay", State: "maintenance"}), nil, "route_deleted service:pay maintenance→active  []"},
		{"route deleted active", rg(waygatev1.RouteGateSpec{Route: "/r", State: "active"}), nil, "route_deleted /r active→active  []"},
		{"service gate on", rg(waygatev1.RouteGateSpec{Route: "*", Service: "payments", State: "active"}), rg(waygatev1.RouteGateSpec{Route: "*", Service: "payments", State: "maintenance"}),
			"global_maintenance_on service:payments active→maintenance  [spec.state: active → maintenance]"},
		{"namespace gate off", rg(waygatev1.RouteGateSpec{Route: "*", State: "maintenance"}), rg(waygatev1.RouteGateSpec{Route: "*", State: "active"}),
			"global_maintenance_off __global__ maintenance→active  [spec.state: maintenance → active]"},
		{"flag created", nil, flag(true, ""), "flag_created flag:new-checkout →enabled launch []"},
		{"flag disabled", flag(true, ""), flag(false, ""), "flag_disabled flag:new-checkout enabled→disabled launch [spec.enabled: true → false]"},
		{"flag edited", flag(true, "a"), flag(true, "b"), "flag_updated flag:new-checkout enabled→enabled launch [spec.description: a → b]"},
		{"flag deleted", flag(false, ""), nil, "flag_deleted flag:new-checkout disabled→ launch []"},
		{"policy limit", policy("100/minute", true), policy("200/minute", true), "rl_policy_updated service:orders 100/minute→200/minute  [spec.limit: 100/minute → 200/minute]"},
		{"policy disabled", policy("100/minute", true), policy("100/minute", false), "rl_policy_updated service:orders 100/minute→disabled  [spec.enabled: true → false]"},
		{"policy counters reset", policy("100/minute", true), reset(policy("100/minute", true), "2026-06-01T03:00:00Z"),
			"rl_reset service:orders 100/minute→100/minute  [counters reset requested at 2026-06-01T03:00:00Z]"},
		{"policy reset again", reset(policy("100/minute", true), "a"), reset(policy("100/minute", true), "b"),
			"rl_reset service:orders 100/minute→100/minute  [counters reset requested at b]"},
		{"policy limit changed with a reset", policy("100/minute", true), reset(policy("200/minute", true), "a"),
			"rl_policy_updated service:orders 100/minute→200/minute  [spec.limit: 100/minute → 200/minute|counters reset requested at a]"},
		{"segment with one rule", &waygatev1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "beta"}}, &waygatev1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "beta"},
			Spec: waygatev1.SegmentSpec{Rules: []waygatev1.SegmentRule{{Clauses: []waygatev1.Clause{{Attribute: "k", Operator: "is", Values: []string{"v"}}}}}}},
			"segment_updated segment:beta 0 included, 0 excluded, 0 rules→0 included, 0 excluded, 1 rule  [spec.rules set to [1 items]]"},
		{"segment grows", &waygatev1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "beta"}}, &waygatev1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "beta"}, Spec: waygatev1.SegmentSpec{Included: []string{"a", "b"}}},
			"segment_updated segment:beta 0 included, 0 excluded, 0 rules→2 included, 0 excluded, 0 rules  [spec.included set to [2 items]]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := Describe(tc.old, tc.new, now)
			if err != nil {
				t.Fatal(err)
			}
			got := rec.Action + " " + rec.Path + " " + rec.Old + "→" + rec.New + " " + rec.Reason + " [" + strings.Join(rec.Changes, "|") + "]"
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestJournal(t *testing.T) {
	var j []Record
	var err error
	for i, id := range []string{"a", "b", "a", "c"} {
		if j, err = Append(j, 4, Record{ID: id}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if len(j) != 3 || j[0].Seq != 5 || j[1].Seq != 6 || j[2].Seq != 7 {
		t.Fatalf("journal %+v: want a, b, c numbered 5, 6, 7 after the 4 audited (a retried once)", j)
	}
	if p := Pending(j, 6); len(p) != 1 || p[0].ID != "c" {
		t.Fatalf("Pending after 6 = %+v, want c", p)
	}
	full := make([]Record, MaxJournal)
	for i := range full {
		full[i] = Record{ID: string(rune('A' + i)), Seq: int64(i + 1)}
	}
	var fullErr *JournalFullError
	refused := testutil.ToFloat64(journalFull)
	if _, err := Append(full, 0, Record{ID: "new"}); !errors.As(err, &fullErr) || !strings.Contains(err.Error(), "retry in a moment") {
		t.Fatalf("append to a full journal: %v, want a refusal that says to retry", err)
	}
	if n := testutil.ToFloat64(journalFull) - refused; n != 1 {
		t.Errorf("waygate_audit_journal_full_total rose by %v for one refusal, want 1", n)
	}
	// Full by size long before by count: records of long reasons.
	var big []Record
	for i := 0; ; i++ {
		big, err = Append(big, 0, Record{ID: fmt.Sprint(i), Reason: strings.Repeat("x", 1024)})
		if err != nil {
			break
		}
	}
	if !errors.As(err, &fullErr) || len(big) >= MaxJournal {
		t.Fatalf("%d records of long reasons before %v: want the journal full by bytes first", len(big), err)
	}
	if raw, _ := json.Marshal(big); len(raw) > MaxJournalBytes {
		t.Fatalf("journal of %d bytes, want at most %d", len(raw), MaxJournalBytes)
	}

	obj := &waygatev1.RouteGate{}
	if err := SetJournal(obj, j); err != nil {
		t.Fatal(err)
	}
	back, err := Journal(obj)
	if err != nil || len(back) != 3 || back[2].ID != "c" {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if err := SetJournal(obj, nil); err != nil || obj.Annotations[JournalAnnotation] != "" {
		t.Fatalf("empty journal left %q", obj.Annotations[JournalAnnotation])
	}
	obj.Annotations = map[string]string{JournalAnnotation: "{not json"}
	if _, err := Journal(obj); err == nil {
		t.Fatal("an unreadable journal was read without error")
	}
}

func TestOldestWait(t *testing.T) {
	now := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) metav1.MicroTime { return metav1.NewMicroTime(now.Add(-ago)) }
	cases := []struct {
		name    string
		pending []Record
		want    time.Duration
		ok      bool
	}{
		{"nothing pending", nil, 0, false},
		{"the oldest, first in the journal", []Record{{Time: at(90 * time.Second)}, {Time: at(time.Second)}}, 90 * time.Second, true},
		{"a tampered record's claimed time is not trusted", []Record{{Time: at(24 * time.Hour), Action: ActionTampered}, {Time: at(3 * time.Second)}}, 3 * time.Second, true},
		{"only tampered records", []Record{{Time: at(time.Hour), Action: ActionTampered}}, 0, false},
		{"a record from a clock ahead of ours waited no time", []Record{{Time: at(-time.Second)}}, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := oldestWait(tc.pending, now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("oldestWait = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// A record longer than MaxRecordBytes loses changes first, saying how many,
// then reason.
func TestCompact(t *testing.T) {
	var changes []string
	for i := range 20 {
		changes = append(changes, fmt.Sprintf("spec.field%d: %s", i, strings.Repeat("v", 200)))
	}
	rec := Record{ID: "a", Reason: "short", Changes: changes}
	compact(&rec)
	raw, _ := json.Marshal(rec)
	last := rec.Changes[len(rec.Changes)-1]
	if len(raw) > MaxRecordBytes || rec.Reason != "short" || !strings.HasPrefix(last, "and ") || !strings.HasSuffix(last, " more changes") {
		t.Fatalf("compacted to %d bytes, reason %q, last change %q", len(raw), rec.Reason, last)
	}
	rec = Record{ID: "b", Reason: strings.Repeat("é", 3000)}
	compact(&rec)
	raw, _ = json.Marshal(rec)
	if len(raw) > MaxRecordBytes || !strings.HasSuffix(rec.Reason, " … (cut)") {
		t.Fatalf("compacted to %d bytes, reason ends %q", len(raw), rec.Reason[len(rec.Reason)-20:])
	}
	small := Record{ID: "c", Reason: "fine", Changes: []string{"spec.limit: 1 → 2"}}
	before := small
	compact(&small)
	if !reflect.DeepEqual(small, before) {
		t.Fatalf("a small record changed: %+v", small)
	}
}

func TestKeyring(t *testing.T) {
	ring := func(keys ...string) *Keyring {
		k := &Keyring{}
		var ks [][]byte
		for _, s := range keys {
			ks = append(ks, []byte(s))
		}
		k.keys.Store(&ks)
		return k
	}
	old, rotated := ring("old-key-0123456789"), ring("new-key-0123456789", "old-key-0123456789")
	rg := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "payments"}}
	rec := Record{ID: "1", Seq: 3, Actor: "alice", Action: "disable", Path: "GET:/payments", Old: "active", New: "disabled"}
	old.Sign(rg, &rec)
	other := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "refunds"}}
	forged := rec
	forged.Actor = "ceo"
	unsigned := rec
	unsigned.Sig = ""
	for _, tc := range []struct {
		name string
		k    *Keyring
		obj  *waygatev1.RouteGate
		rec  Record
		want bool
	}{
		{"as signed", old, rg, rec, true},
		{"after a rotation, by the older key", rotated, rg, rec, true},
		{"another object's", old, other, rec, false},
		{"a changed actor", old, rg, forged, false},
		{"unsigned", old, rg, unsigned, false},
		{"another key", ring("someone-elses-key!"), rg, rec, false},
	} {
		if got := tc.k.Verify(tc.obj, tc.rec); got != tc.want {
			t.Errorf("%s: verified %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A rotation reaches replicas minutes apart: a record signed by a webhook
// replica already on the new key is verified by a leader that read its keys
// before the rotation, however recently (it reads them again, since they are
// older than the record); a forged record is still told apart, and makes
// the keys be read again only when those in hand are older than it.
func TestKeyringRotationOnAnotherReplica(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	secret := b64("old-key-0123456789") + "\n"
	reads := 0
	source := func(context.Context) ([]byte, error) { reads++; return []byte(secret), nil }
	leader, webhook := &Keyring{source: source, where: "test"}, &Keyring{source: source, where: "test"}
	ctx := context.Background()
	// The leader read its keys a moment ago; then the rotation (the new key
	// first) reaches the webhook replica, which signs with it.
	if err := leader.load(ctx); err != nil {
		t.Fatal(err)
	}
	secret = b64("new-key-0123456789") + "\n" + b64("old-key-0123456789") + "\n"
	if err := webhook.load(ctx); err != nil {
		t.Fatal(err)
	}
	rg := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "payments"}}
	rec := Record{ID: "1", Seq: 3, Actor: "alice", Action: "disable", Path: "GET:/payments", Old: "active", New: "disabled"}
	webhook.Sign(rg, &rec)
	seen := time.Now()
	if leader.Verify(rg, rec) {
		t.Fatal("the leader's old keys verify the new key's signature: the test does not rotate")
	}
	if ok, err := leader.VerifyCurrent(ctx, rg, rec, seen); err != nil || !ok {
		t.Fatalf("a record signed with the rotated key: verified %v (%v), want true", ok, err)
	}
	forged := rec
	forged.Actor = "ceo"
	before := reads
	if ok, err := leader.VerifyCurrent(ctx, rg, forged, seen); err != nil || ok {
		t.Fatalf("a forged record seen before the last read: verified %v (%v), want false", ok, err)
	}
	if reads != before {
		t.Errorf("a forged record seen before the keys were read made them be read again")
	}
	if ok, err := leader.VerifyCurrent(ctx, rg, forged, time.Now()); err != nil || ok {
		t.Fatalf("a forged record seen after the last read: verified %v (%v), want false", ok, err)
	}
	if reads != before+1 {
		t.Errorf("a forged record seen after the keys were read made them be read %d times, want once", reads-before)
	}
	// A read that fails is not a verdict.
	leader.source = func(context.Context) ([]byte, error) { return nil, errors.New("the API server is away") }
	if _, err := leader.VerifyCurrent(ctx, rg, forged, time.Now()); err == nil {
		t.Error("a failed read of the keys gave a verdict, want an error")
	}
}

func TestUnrecorded(t *testing.T) {
	start := time.Date(2030, 1, 1, 3, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: start.Add(d)} }
	edit := func(gen int64, d time.Duration) Record {
		return Record{ID: "edit", Actor: "alice", Generation: gen, Time: metav1.NewMicroTime(start.Add(d))}
	}
	cases := []struct {
		name     string
		observed int64
		next     *metav1.Time
		journal  []Record
		now      time.Time
		want     []string // "action old→new at", in order
		// until disables the route until end instead of the window.
		until bool
	}{
		{"before the start", 2, at(0), nil, start.Add(-time.Second), nil, false},
		{"the start, status of this generation expecting it", 2, at(0), nil, start.Add(time.Second), []string{"maintenance_on active→maintenance 03:00"}, false},
		{"the start is in the status already", 2, &metav1.Time{Time: end}, nil, start.Add(time.Second), nil, false},
		{"both, in order", 2, at(0), nil, end.Add(time.Second), []string{"maintenance_on active→maintenance 03:00", "maintenance_off maintenance→active 04:00"}, false},
		{"status of this generation expecting nothing", 2, nil, []Record{edit(2, -time.Minute)}, end.Add(time.Second), nil, false},
		{"status of an older generation: since this generation's edit", 1, at(0), []Record{edit(2, -time.Minute)}, start.Add(time.Second), []string{"maintenance_on active→maintenance 03:00"}, false},
		{"status of an older generation: the edit came after the start", 1, nil, []Record{edit(2, time.Minute)}, start.Add(2 * time.Minute), nil, false},
		{"status of an older generation, no edit of this one in the journal", 1, at(0), []Record{edit(1, -time.Minute)}, end.Add(time.Second), nil, false},
		{"never computed: since the creation", 0, nil, []Record{edit(2, -time.Minute)}, start.Add(time.Second), []string{"maintenance_on active→maintenance 03:00"}, false},
		{"before the until", 2, at(time.Hour), nil, end.Add(-time.Second), nil, true},
		{"the until, status of this generation expecting it", 2, at(time.Hour), nil, end.Add(time.Second), []string{"enable disabled→active 04:00"}, true},
		{"the until, status of an older generation: since this generation's edit", 1, nil, []Record{edit(2, -time.Minute)}, end.Add(time.Second), []string{"enable disabled→active 04:00"}, true},
		{"the until is in the status already", 2, nil, nil, end.Add(time.Second), nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rg := &waygatev1.RouteGate{
				ObjectMeta: metav1.ObjectMeta{Generation: 2},
				Spec: waygatev1.RouteGateSpec{Route: "GET:/reports", State: waygatev1.RouteActive,
					Window: &waygatev1.MaintenanceWindow{Start: metav1.NewTime(start), End: metav1.NewTime(end)}},
			}
			if tc.until {
				rg.Spec = waygatev1.RouteGateSpec{Route: "GET:/reports", State: waygatev1.RouteDisabled, Until: &metav1.Time{Time: end}}
			}
			rg.Status.ObservedGeneration, rg.Status.NextTransition = tc.observed, tc.next
			var got []string
			for _, r := range Unrecorded(rg, tc.journal, tc.now) {
				if r.Actor != SchedulerActor || r.Platform != waygatev1.PlatformSystem || r.Generation != 2 {
					t.Errorf("record %+v: want the scheduler's, of generation 2", r)
				}
				got = append(got, r.Action+" "+r.Old+"→"+r.New+" "+r.Time.UTC().Format("15:04"))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Unrecorded = %v, want %v", got, tc.want)
			}
		})
	}
}
