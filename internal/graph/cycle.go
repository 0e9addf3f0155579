// Package graph finds cycles in the references between Waygate objects
// (flag prerequisites, segments that target other segments).
package graph

// CycleFrom returns a cycle through start, as the keys along it with start at
// both ends (a → b → a), or nil when no path from start leads back to it.
// edges returns the keys a key refers to; unknown keys have none.
func CycleFrom(start string, edges func(string) []string) []string {
	visited := map[string]bool{}
	var path []string
	var walk func(string) bool
	walk = func(k string) bool {
		path = append(path, k)
		for _, next := range edges(k) {
			if next == start {
				path = append(path, start)
				return true
			}
			if visited[next] {
				continue
			}
			visited[next] = true
			if walk(next) {
				return true
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if walk(start) {
		return path
	}
	return nil
}
