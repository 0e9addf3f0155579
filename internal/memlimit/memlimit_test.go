package memlimit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestContainerLimit(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name  string
		files []string
		want  int64
	}{
		{"cgroup v2 limit", []string{file("v2", "268435456\n")}, 268435456},
		{"cgroup v2 without a limit", []string{file("v2max", "max\n"), file("v1", "268435456\n")}, 0},
		{"cgroup v1, v2 missing", []string{filepath.Join(dir, "missing"), file("v1b", "134217728\n")}, 134217728},
		{"cgroup v1 without a limit", []string{file("v1max", "9223372036854771712\n")}, 0},
		{"unreadable", []string{file("junk", "lots\n")}, 0},
		{"no cgroup files", []string{filepath.Join(dir, "none")}, 0},
	} {
		if got := containerLimit(tc.files); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
