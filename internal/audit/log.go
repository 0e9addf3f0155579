package audit

import (
	"context"
	"sort"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// DefaultLimit is how many entries GetAuditLog returns when asked for none.
const DefaultLimit = 100

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
// not the log. Across namespaces, whose entries the API server lists
// namespace by namespace, it reads them all and has no Continue.
func (q Query) Run(ctx context.Context, c client.Reader) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	opts := []client.ListOption{client.InNamespace(q.Namespace)}
	if f := q.Fields(); len(f) > 0 {
		opts = append(opts, f)
	}
	var page Page
	var list waygatev1.AuditEntryList
	for cont := q.Continue; ; {
		size := pageSize
		if q.Namespace != "" {
			// Pages end where this page ends, so that their Continue
			// starts right after its last entry.
			size = min(q.Limit-len(page.Entries), pageSize)
		}
		if err := c.List(ctx, &list, append(opts, client.Limit(int64(size)), client.Continue(cont))...); err != nil {
			return Page{}, err
		}
		if page.ResourceVersion == "" {
			page.ResourceVersion = list.ResourceVersion
		}
		older := false
		for _, e := range list.Items {
			if q.Keeps(&e) {
				page.Entries = append(page.Entries, e)
			} else if q.Namespace != "" && timeKeyed(e.Name) {
				older = true // and so is everything after it
			}
		}
		cont = list.Continue
		if q.Namespace == "" {
			page.Entries = newest(page.Entries, q.Limit)
		}
		if cont == "" || older || (q.Namespace != "" && len(page.Entries) >= q.Limit) {
			if q.Namespace != "" && !older {
				page.Continue = cont
			}
			// In one namespace only entries from before time-keyed names
			// can be out of order.
			page.Entries = newest(page.Entries, q.Limit)
			return page, nil
		}
	}
}

// timeKeyed tells whether an entry's name starts with a time key (entries
// written before names had one do not; they list after all that do).
func timeKeyed(name string) bool {
	if len(name) <= timeKeyLen || name[timeKeyLen] != '-' {
		return false
	}
	for _, r := range name[:timeKeyLen] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
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
