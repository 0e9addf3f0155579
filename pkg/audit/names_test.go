package audit

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestEntryName(t *testing.T) {
	at := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	a, b := EntryName(at, "get-payments", "uid-1", "req-1"), EntryName(at, "get-payments", "uid-1", "req-2")
	if a == b || a != EntryName(at, "get-payments", "uid-1", "req-1") {
		t.Fatalf("names %q and %q: want distinct per change and stable per change", a, b)
	}
	if want := "8219717199999999-get-payments-"; !strings.HasPrefix(a, want) {
		t.Errorf("name %q does not start with %q", a, want)
	}
	// Name order is time order, newest first, whatever the object.
	times := []time.Time{at.Add(time.Hour), at.Add(time.Microsecond), at, at.Add(-time.Microsecond), time.Unix(0, 0)}
	var names []string
	for i, t := range times {
		names = append(names, EntryName(t, []string{"z", "a", "m", "zz", "0"}[i], "u", "i"))
	}
	if !slices.IsSorted(names) {
		t.Errorf("names of descending times are not in ascending order: %q", names)
	}
	long := EntryName(at, strings.Repeat("a", 250)+"-x", "u", "i")
	if errs := validation.IsDNS1123Subdomain(long); len(errs) > 0 || len(long) > 253 {
		t.Errorf("long name %q invalid: %v", long, errs)
	}
}

func TestSkipNamespace(t *testing.T) {
	token := func(start string) string {
		raw, _ := json.Marshal(map[string]any{"v": "meta.k8s.io/v1", "rv": 42, "start": start})
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	for _, tc := range []struct{ name, cont, ns, want string }{
		{"from etcd", token("shop/8219717199587092-payments-441b3d6f984b\x00"), "shop", token("shop/~")},
		{"from the watch cache", token("/shop/8219717199587092-payments-441b3d6f984b\x00"), "shop", token("/shop/~")},
		{"already in a later namespace", token("shop0/8219717199587092-a\x00"), "shop", token("shop0/8219717199587092-a\x00")},
		{"a namespace that is a prefix of another", token("shop-eu/8219717199587092-a\x00"), "shop", token("shop-eu/8219717199587092-a\x00")},
		{"a token of another version", base64.RawURLEncoding.EncodeToString([]byte(`{"v":"meta.k8s.io/v2","start":"shop/x"}`)), "shop",
			base64.RawURLEncoding.EncodeToString([]byte(`{"v":"meta.k8s.io/v2","start":"shop/x"}`))},
		{"not a token", "opaque!", "shop", "opaque!"},
	} {
		if got := skipNamespace(tc.cont, tc.ns); got != tc.want {
			t.Errorf("%s: skipNamespace = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The periods cover every entry once, newest first: each selects the
// labels of its own times, and none of another's.
func TestPeriods(t *testing.T) {
	now := time.Date(2026, 12, 2, 13, 30, 0, 0, time.UTC)
	ps := periods(now)
	for _, tc := range []struct {
		name   string
		at     *time.Time // nil: an entry without labels
		period int
	}{
		{"an hour ahead (a clock ahead)", new(now.Add(time.Hour)), 0},
		{"now", new(now), 0},
		{"an hour ago", new(now.Add(-time.Hour)), 0},
		{"three hours ago", new(now.Add(-3 * time.Hour)), 1},
		{"yesterday", new(now.Add(-30 * time.Hour)), 1},
		{"a day ahead", new(now.Add(26 * time.Hour)), 1},
		{"five days ago", new(now.AddDate(0, 0, -5)), 2},
		{"twenty days ago", new(now.AddDate(0, 0, -20)), 3},
		{"a hundred days ago", new(now.AddDate(0, 0, -100)), 4},
		{"a year ago", new(now.AddDate(-1, 0, 0)), 5},
		{"a week ahead", new(now.AddDate(0, 0, 7)), 5},
		{"before labels", nil, 6},
	} {
		set := labels.Set{}
		if tc.at != nil {
			set = TimeLabels(*tc.at)
		}
		var in []int
		for i, p := range ps {
			if p.labels.Matches(set) {
				in = append(in, i)
			}
		}
		if !slices.Equal(in, []int{tc.period}) {
			t.Errorf("%s: in periods %v, want [%d]", tc.name, in, tc.period)
		}
		if tc.at != nil && ps[tc.period].since.After(*tc.at) {
			t.Errorf("%s: period %d starts at %s, after the entry", tc.name, tc.period, ps[tc.period].since)
		}
	}
}
