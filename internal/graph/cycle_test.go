package graph

import (
	"slices"
	"testing"
)

func TestCycleFrom(t *testing.T) {
	cases := []struct {
		name  string
		edges map[string][]string
		start string
		want  []string
	}{
		{"no edges", nil, "a", nil},
		{"self", map[string][]string{"a": {"a"}}, "a", []string{"a", "a"}},
		{"chain", map[string][]string{"a": {"b"}, "b": {"c"}}, "a", nil},
		{"loop", map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}}, "a", []string{"a", "b", "c", "a"}},
		{"loop elsewhere does not involve start", map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"b"}}, "a", nil},
		{"diamond", map[string][]string{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}}, "a", nil},
		{"second branch loops", map[string][]string{"a": {"b", "c"}, "c": {"a"}}, "a", []string{"a", "c", "a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := CycleFrom(tc.start, func(k string) []string { return tc.edges[k] })
			if !slices.Equal(got, tc.want) {
				t.Fatalf("CycleFrom(%q) = %v, want %v", tc.start, got, tc.want)
			}
		})
	}
}
