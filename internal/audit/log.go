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
// limit of them (DefaultLimit when limit ≤ 0). It pages through the API
// server and filters there by spec.path.
func GetAuditLog(ctx context.Context, c client.Reader, namespace, path string, limit int) ([]waygatev1.AuditEntry, error) {
	entries, _, err := Query{Namespace: namespace, Path: path, Limit: limit}.Run(ctx, c)
	return entries, err
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
}

// Run returns the entries q selects, newest first, and the resource
// version of the list, from which a watch sees only newer entries.
func (q Query) Run(ctx context.Context, c client.Reader) ([]waygatev1.AuditEntry, string, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	opts := []client.ListOption{client.InNamespace(q.Namespace), client.Limit(pageSize)}
	if f := q.Fields(); len(f) > 0 {
		opts = append(opts, f)
	}
	var out []waygatev1.AuditEntry
	var list waygatev1.AuditEntryList
	version := ""
	for cont := ""; ; {
		if err := c.List(ctx, &list, append(opts, client.Continue(cont))...); err != nil {
			return nil, "", err
		}
		if version == "" {
			version = list.ResourceVersion
		}
		for _, e := range list.Items {
			if q.Keeps(&e) {
				out = append(out, e)
			}
		}
		out = newest(out, q.Limit)
		if cont = list.Continue; cont == "" {
			return out, version, nil
		}
	}
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
