package watch

import (
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// row is what the test's table keeps of a ConfigMap: its generation and
// its "v".
type row struct {
	gen int64
	v   string
}

func (r *row) Same(o *row) bool { return r.gen == o.gen }

func cm(ns, name string, gen int64, v string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: gen}, Data: map[string]string{"v": v}}
}

// A table keeps its rows of objects, tells the changes a reader sees (not
// the same generation) and keeps the older row of a same one.
func TestTable(t *testing.T) {
	type step struct {
		name string
		do   func(*Table[*corev1.ConfigMap, *row]) error
		// told are the keys of the changes told; rows the table's values
		// of "a" after the step.
		told []string
		rows []string
	}
	add := func(o *corev1.ConfigMap) func(*Table[*corev1.ConfigMap, *row]) error {
		return func(t *Table[*corev1.ConfigMap, *row]) error { return t.Add(o) }
	}
	update := func(o *corev1.ConfigMap) func(*Table[*corev1.ConfigMap, *row]) error {
		return func(t *Table[*corev1.ConfigMap, *row]) error { return t.Update(o) }
	}
	steps := []step{
		{"the first list", func(t *Table[*corev1.ConfigMap, *row]) error {
			return t.Replace([]any{cm("a", "x", 1, "x1"), cm("a", "y", 1, "y1"), cm("b", "z", 1, "z1")}, "1")
		}, []string{"a/x", "a/y", "b/z"}, []string{"x1", "y1"}},
		{"an add", add(cm("a", "w", 1, "w1")), []string{"a/w"}, []string{"w1", "x1", "y1"}},
		{"a status write (same generation) keeps the row", update(cm("a", "x", 1, "x1 again")), nil, []string{"w1", "x1", "y1"}},
		{"a spec change", update(cm("a", "x", 2, "x2")), []string{"a/x"}, []string{"w1", "x2", "y1"}},
		{"a delete", func(t *Table[*corev1.ConfigMap, *row]) error { return t.Delete(cm("a", "w", 1, "")) }, []string{"a/w"}, []string{"x2", "y1"}},
		{"the delete of one not kept", func(t *Table[*corev1.ConfigMap, *row]) error { return t.Delete(cm("a", "gone", 1, "")) }, nil, []string{"x2", "y1"}},
		{"a relist: one changed, one the same, one gone, one new", func(t *Table[*corev1.ConfigMap, *row]) error {
			return t.Replace([]any{cm("a", "x", 3, "x3"), cm("a", "y", 1, "y1 again"), cm("c", "v", 1, "v1")}, "9")
		}, []string{"a/x", "b/z", "c/v"}, []string{"x3", "y1"}},
		{"another kind's object is refused", func(t *Table[*corev1.ConfigMap, *row]) error {
			if err := t.Add(&corev1.Secret{}); err == nil {
				return errors.New("a Secret: no error")
			}
			return nil
		}, nil, []string{"x3", "y1"}},
	}
	var told []string
	tbl := NewTable(func(o *corev1.ConfigMap) *row { return &row{o.Generation, o.Data["v"]} })
	tbl.notify(func(obj any) {
		key, _ := toolscache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		told = append(told, key)
	})
	for _, s := range steps {
		told = nil
		if err := s.do(tbl); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		slices.Sort(told)
		var rows []string
		for _, r := range tbl.In("a") {
			rows = append(rows, r.v)
		}
		slices.Sort(rows)
		if !slices.Equal(told, s.told) || !slices.Equal(rows, s.rows) {
			t.Errorf("%s: told %v, rows of a %v; want told %v, rows %v", s.name, told, rows, s.told, s.rows)
		}
	}
	if all := len(tbl.In("")); all != 3 {
		t.Errorf("%d rows in every namespace, want 3", all)
	}
	select {
	case <-tbl.synced():
	default:
		t.Error("listed, not synced")
	}
}
