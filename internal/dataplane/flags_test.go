package dataplane

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/waygate-dev/waygate/pkg/flags"
)

// One namespace failing to compile leaves the others of the same pass
// compiled and in effect; it keeps its last snapshot and is named for the
// next pass.
func TestCompileDirty(t *testing.T) {
	prev := func() *namespaceFlags { return &namespaceFlags{snap: flags.Compile(nil, nil)} }
	oldA, oldB := prev(), prev()
	next := map[string]*namespaceFlags{"a": prev(), "b": prev(), "c": prev(), "new": prev()}
	cases := []struct {
		name       string
		dirty      []string
		fail       []string
		gone       []string // compile finds nothing left
		want       map[string]*namespaceFlags
		wantFailed []string
	}{
		{"all compile", []string{"a", "b", "c"}, nil, nil,
			map[string]*namespaceFlags{"a": next["a"], "b": next["b"], "c": next["c"]}, nil},
		{"one fails among three", []string{"a", "b", "c"}, []string{"b"}, nil,
			map[string]*namespaceFlags{"a": next["a"], "b": oldB, "c": next["c"]}, []string{"b"}},
		{"a new namespace fails", []string{"a", "new"}, []string{"new"}, nil,
			map[string]*namespaceFlags{"a": next["a"], "b": oldB}, []string{"new"}},
		{"two fail, one is deleted", []string{"a", "b", "c"}, []string{"a", "c"}, []string{"b"},
			map[string]*namespaceFlags{"a": oldA}, []string{"a", "c"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := map[string]*namespaceFlags{"a": oldA, "b": oldB}
			out := maps.Clone(old)
			dirty := map[string]bool{}
			for _, ns := range tc.dirty {
				dirty[ns] = true
			}
			var compiled []string
			failed, err := compileDirty(dirty, old, out, func(ns string) (*namespaceFlags, error) {
				compiled = append(compiled, ns)
				switch {
				case slices.Contains(tc.fail, ns):
					return nil, errors.New("cache not synced")
				case slices.Contains(tc.gone, ns):
					return nil, nil
				}
				return next[ns], nil
			})
			slices.Sort(compiled)
			if !slices.Equal(compiled, tc.dirty) {
				t.Errorf("compiled %v, want every dirty namespace %v", compiled, tc.dirty)
			}
			if !maps.Equal(out, tc.want) {
				t.Errorf("in effect %v, want %v", out, tc.want)
			}
			slices.Sort(failed)
			if !slices.Equal(failed, tc.wantFailed) {
				t.Errorf("failed %v, want %v", failed, tc.wantFailed)
			}
			if (err != nil) != (len(tc.wantFailed) > 0) {
				t.Errorf("error %v, want one only when a namespace failed", err)
			}
			for _, ns := range tc.wantFailed {
				if !strings.Contains(err.Error(), "namespace "+ns+" ") {
					t.Errorf("the error %q does not name namespace %s", err, ns)
				}
			}
		})
	}
}
