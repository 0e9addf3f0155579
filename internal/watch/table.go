package watch

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Row is what a Table keeps of an object.
type Row[R any] interface {
	// Same tells whether two rows of one object hold the same for the
	// reader (the same generation, say): an update between them is not
	// signalled, and the older row stays.
	Same(R) bool
}

// Table keeps, in place of the objects of a kind, what keep makes of each
// (a row), by namespace and name. It is the store a reflector fills (a
// View's, for a Kind with a Table), for a reader that needs a part of each
// object and many objects: the objects themselves are decoded, kept from
// and dropped. Rows are replaced, never modified, so that readers may hold
// on to them.
type Table[O client.Object, R Row[R]] struct {
	keep    func(O) R
	changed func(obj any)
	mu      sync.RWMutex
	rows    map[string]map[string]R
	once    sync.Once
	listed  chan struct{}
}

// NewTable is a table of the rows keep makes.
func NewTable[O client.Object, R Row[R]](keep func(O) R) *Table[O, R] {
	return &Table[O, R]{keep: keep, rows: map[string]map[string]R{}, listed: make(chan struct{})}
}

// In is the rows of namespace ns (of every namespace for ""), in no order.
func (t *Table[O, R]) In(ns string) []R {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if ns != "" {
		return slices.Collect(maps.Values(t.rows[ns]))
	}
	var all []R
	for _, rows := range t.rows {
		all = slices.AppendSeq(all, maps.Values(rows))
	}
	return all
}

// Add, Update, Delete, Replace and Resync make the table a reflector's
// store. A change the reader sees (not Same) is told to changed.
func (t *Table[O, R]) Add(obj any) error { return t.Update(obj) }

func (t *Table[O, R]) Update(obj any) error {
	o, err := t.object(obj)
	if err != nil {
		return err
	}
	t.mu.Lock()
	changed := t.put(t.rows, t.rows, o)
	t.mu.Unlock()
	if changed {
		t.tell(obj)
	}
	return nil
}

func (t *Table[O, R]) Delete(obj any) error {
	o, err := t.object(obj)
	if err != nil {
		return err
	}
	t.mu.Lock()
	rows := t.rows[o.GetNamespace()]
	_, had := rows[o.GetName()]
	delete(rows, o.GetName())
	if had && len(rows) == 0 {
		delete(t.rows, o.GetNamespace())
	}
	t.mu.Unlock()
	if had {
		t.tell(obj)
	}
	return nil
}

// Replace puts in the rows of a list (the first, or a relist after the
// watch fell too far behind): the objects that are new or not Same, and
// those gone, are told to changed.
func (t *Table[O, R]) Replace(list []any, _ string) error {
	next := map[string]map[string]R{}
	var changed []any
	for _, obj := range list {
		o, err := t.object(obj)
		if err != nil {
			return err
		}
		// t.rows is written by this goroutine alone (the reflector's).
		if t.put(next, t.rows, o) {
			changed = append(changed, obj)
		}
	}
	t.mu.Lock()
	for ns, rows := range t.rows {
		for name := range rows {
			if _, ok := next[ns][name]; !ok {
				changed = append(changed, toolscache.DeletedFinalStateUnknown{Key: ns + "/" + name})
			}
		}
	}
	t.rows = next
	t.mu.Unlock()
	t.once.Do(func() { close(t.listed) })
	for _, obj := range changed {
		t.tell(obj)
	}
	return nil
}

func (t *Table[O, R]) Resync() error { return nil }

// put sets o's row in into, keeping its row in from if Same; it reports
// whether the row is not the one from held.
func (t *Table[O, R]) put(into, from map[string]map[string]R, o O) bool {
	ns, name, row := o.GetNamespace(), o.GetName(), t.keep(o)
	old, had := from[ns][name]
	same := had && old.Same(row)
	if same {
		row = old
	}
	if into[ns] == nil {
		into[ns] = map[string]R{}
	}
	into[ns][name] = row
	return !same
}

// object is obj as the table's kind.
func (t *Table[O, R]) object(obj any) (O, error) {
	o, ok := obj.(O)
	if !ok {
		return o, fmt.Errorf("a table of %T got %T", *new(O), obj)
	}
	return o, nil
}

func (t *Table[O, R]) tell(obj any) {
	if t.changed != nil {
		t.changed(obj)
	}
}

// The View's side of a table.
func (t *Table[O, R]) notify(changed func(obj any)) { t.changed = changed }
func (t *Table[O, R]) synced() <-chan struct{}      { return t.listed }

// table is what a View needs of a Table.
type table interface {
	toolscache.ReflectorStore
	notify(changed func(obj any))
	synced() <-chan struct{}
}
