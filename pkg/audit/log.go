package audit

import (
	"cmp"
	"context"
	"sort"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// DefaultLimit is how many entries GetAuditLog returns when asked for none.
const DefaultLimit = 100

// PageSize is how many entries one list call asks the API server for.
const PageSize = 500

// GetAuditLog returns the audit entries of namespace (all namespaces when
// empty), newest first: those of path only when path is set (a route key
// such as GET:/payments, flag:<key>, segment:<key>, __global__), at most
// limit of them (DefaultLimit when limit ≤ 0). The API server filters by
// spec.path, and, as entry names are in time order, the newest entries of a
// namespace are its first page: only what is returned is read.
func GetAuditLog(ctx context.Context, c client.Reader, namespace, path string, limit int) ([]waygatev1.AuditEntry, error) {
	page, err := Query{Namespace: namespace, Path: path, Limit: limit}.Run(ctx, c)
	return page.Entries, err
}

// Query selects audit entries. Empty fields select everything.
type Query struct {
	Namespace string
	// Path, Actor and Action must equal the entry's; the API server
	// filters by them (they are selectable fields).
	Path, Actor, Action string
	// Since keeps the entries at or after it.
	Since time.Time
	// Limit is how many of the newest to return (DefaultLimit when ≤ 0).
	Limit int
	// Continue reads on from an earlier Page's Continue (older entries).
	Continue string
}

// Page is one page of the log, newest first.
type Page struct {
	Entries []waygatev1.AuditEntry
	// ResourceVersion is the list's: a watch from it sees only newer
	// entries.
	ResourceVersion string
	// Continue reads the next, older page; empty at the end of the log.
	Continue string
}

// Run returns the first page of the entries q selects. In one namespace it
// reads the API server's pages in name order, which is time order, and
// stops when it has Limit entries (or reaches Since): the cost is the page,
// not the log. Across namespaces it reads the newest Limit of each
// namespace, latest hours and days first, and stops at the first period
// that holds Limit entries (across.go); that page has no Continue.
func (q Query) Run(ctx context.Context, c client.Reader) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	if q.Namespace == "" {
		return q.all(ctx, c)
	}
	var page Page
	for cont := q.Continue; ; {
		// Each read ends where the page ends, so that its Continue starts
		// right after the page's last entry.
		list, err := q.list(ctx, c, min(q.Limit-len(page.Entries), PageSize), cont)
		if err != nil {
			return Page{}, err
		}
		page.ResourceVersion = cmp.Or(page.ResourceVersion, list.ResourceVersion)
		for _, e := range list.Items {
			if q.Keeps(&e) {
				page.Entries = append(page.Entries, e)
			} else if timeKeyed(e.Name) {
				// Older than Since, and so is everything after it.
				page.Entries = newest(page.Entries, q.Limit)
				return page, nil
			}
		}
		if list.Continue == "" || len(page.Entries) >= q.Limit {
			// Only entries from before time-keyed names can be out of order.
			page.Entries, page.Continue = newest(page.Entries, q.Limit), list.Continue
			return page, nil
		}
		cont = list.Continue
	}
}

// list reads one page of at most size entries from cont.
func (q Query) list(ctx context.Context, c client.Reader, size int, cont string) (*waygatev1.AuditEntryList, error) {
	opts := []client.ListOption{client.InNamespace(q.Namespace), client.Limit(int64(size)), client.Continue(cont)}
	if f := q.Fields(); len(f) > 0 {
		opts = append(opts, f)
	}
	var list waygatev1.AuditEntryList
	return &list, c.List(ctx, &list, opts...)
}

// Fields is the field selector of q's Path, Actor and Action.
func (q Query) Fields() client.MatchingFields {
	f := client.MatchingFields{}
	for field, v := range map[string]string{"spec.path": q.Path, "spec.actor": q.Actor, "spec.action": q.Action} {
		if v != "" {
			f[field] = v
		}
	}
	return f
}

// Keeps tells whether e passes what the API server cannot filter: Since.
func (q Query) Keeps(e *waygatev1.AuditEntry) bool {
	return q.Since.IsZero() || !e.Spec.Timestamp.Time.Before(q.Since)
}

// newest sorts entries newest first and keeps limit of them.
func newest(entries []waygatev1.AuditEntry, limit int) []waygatev1.AuditEntry {
	sort.SliceStable(entries, func(i, j int) bool {
		return entries[j].Spec.Timestamp.Before(&entries[i].Spec.Timestamp)
	})
	if len(entries) > limit {
		entries = entries[:limit]
	}
	return entries
}
