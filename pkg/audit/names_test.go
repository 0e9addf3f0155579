package audit

import (
	"slices"
	"strings"
	"testing"
	"time"

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
