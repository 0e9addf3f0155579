package cli

import (
	"testing"
	"time"
)

func TestTimes(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	at := time.Date(2030, 6, 1, 3, 0, 0, 0, time.UTC)
	berlin := time.FixedZone("CEST", 2*60*60)
	for _, tc := range []struct {
		utc           bool
		t             time.Time
		format, age   string
		parse, parsed string
	}{
		{utc: true, t: at, format: "2030-06-01 03:00:00 UTC", age: "9h", parse: "2030-06-01 05:00", parsed: "2030-06-01T05:00:00Z"},
		{utc: false, t: at, format: "2030-06-01 05:00:00 CEST", age: "9h", parse: "2030-06-01 05:00", parsed: "2030-06-01T03:00:00Z"},
		{utc: true, t: now.Add(90 * time.Minute), format: "2030-06-01 13:30:00 UTC", age: "in 90m", parse: "2h", parsed: "2030-06-01T14:00:00Z"},
		{utc: false, t: time.Time{}, format: "-", age: "-", parse: "2030-06-01T03:00:00Z", parsed: "2030-06-01T03:00:00Z"},
	} {
		local := time.Local
		time.Local = berlin
		o := &Options{UTC: tc.utc, Now: func() time.Time { return now }}
		format, age := o.formatTime(tc.t), o.age(tc.t)
		parsed, err := o.parseTime("--start", tc.parse)
		time.Local = local
		if format != tc.format || age != tc.age {
			t.Errorf("utc=%v %s: formatted %q age %q, want %q %q", tc.utc, tc.t, format, age, tc.format, tc.age)
		}
		if err != nil || !parsed.Equal(mustTime(tc.parsed)) {
			t.Errorf("utc=%v parse %q: %s %v, want %s", tc.utc, tc.parse, parsed, err, tc.parsed)
		}
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
