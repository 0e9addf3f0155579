package cli

import (
	"slices"
	"strings"

	"github.com/waygate-dev/waygate/internal/routes"
)

// closeMatches returns the keys among candidates that look like what the
// user meant by key: the same path with another method, or a few typing
// mistakes away. Closest first, at most three.
func closeMatches(key string, candidates []string) []string {
	type match struct {
		key  string
		dist int
	}
	var found []match
	for _, c := range candidates {
		if c == key || slices.ContainsFunc(found, func(m match) bool { return m.key == c }) {
			continue
		}
		// Another method of the same path counts as one mistake.
		d := min(distance(strings.ToLower(key), strings.ToLower(c)), 1+distance(strings.TrimSuffix(routes.PathOf(key), "/"), strings.TrimSuffix(routes.PathOf(c), "/")))
		if d <= max(2, len(key)/5) {
			found = append(found, match{c, d})
		}
	}
	slices.SortStableFunc(found, func(a, b match) int {
		if a.dist != b.dist {
			return a.dist - b.dist
		}
		return strings.Compare(a.key, b.key)
	})
	var out []string
	for _, m := range found[:min(len(found), 3)] {
		out = append(out, m.key)
	}
	return out
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
