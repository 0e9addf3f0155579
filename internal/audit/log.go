package audit

import (
	"context"
	"sort"

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
	if limit <= 0 {
		limit = DefaultLimit
	}
	opts := []client.ListOption{client.InNamespace(namespace), client.Limit(pageSize)}
	if path != "" {
		opts = append(opts, client.MatchingFields{"spec.path": path})
	}
	var out []waygatev1.AuditEntry
	var list waygatev1.AuditEntryList
	for cont := ""; ; {
		if err := c.List(ctx, &list, append(opts, client.Continue(cont))...); err != nil {
			return nil, err
		}
		out = newest(append(out, list.Items...), limit)
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
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
