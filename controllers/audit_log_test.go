package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
	auditlog "github.com/waygate-dev/waygate/pkg/audit"
)

// GetAuditLog reads entries newest first, filtered by path, limited; the
// retention prunes by count and by age and exports what it prunes.
func TestAuditLogAndRetention(t *testing.T) {
	ns := env.Namespace(t, "audit")
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).UTC()
	for i := range 6 {
		path := "GET:/payments"
		if i%2 == 1 {
			path = "POST:/refunds"
		}
		at := base.Add(time.Duration(i) * time.Minute)
		// Named as the operator names entries: time first.
		e := auditEntry(ns, auditlog.TimeKey(at)+fmt.Sprintf("-e%d", i), path, "alice")
		e.Spec.Timestamp = metav1.NewMicroTime(at)
		if err := operator.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	names := func(es []waygatev1.AuditEntry) string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name[strings.LastIndexByte(e.Name, '-')+1:])
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		path  string
		limit int
		want  string
	}{
		{"", 0, "e5,e4,e3,e2,e1,e0"},
		{"GET:/payments", 0, "e4,e2,e0"},
		{"", 2, "e5,e4"},
		{"POST:/refunds", 1, "e5"},
		{"flag:none", 0, ""},
	} {
		got, err := auditlog.GetAuditLog(ctx, operator, ns, tc.path, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if names(got) != tc.want {
			t.Errorf("GetAuditLog(%q, %d) = [%s], want [%s]", tc.path, tc.limit, names(got), tc.want)
		}
	}

	// Pages by continue token, each the next older entries; Since stops
	// the reading at the first older entry.
	q := auditlog.Query{Namespace: ns, Limit: 2}
	var pages []string
	for {
		page, err := q.Run(ctx, operator)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, names(page.Entries))
		if q.Continue = page.Continue; q.Continue == "" {
			break
		}
	}
	if got := strings.Join(pages, " | "); got != "e5,e4 | e3,e2 | e1,e0" {
		t.Errorf("pages [%s], want [e5,e4 | e3,e2 | e1,e0]", got)
	}
	page, err := auditlog.Query{Namespace: ns, Limit: 10, Since: base.Add(210 * time.Second)}.Run(ctx, operator)
	if err != nil || names(page.Entries) != "e5,e4" || page.Continue != "" {
		t.Errorf("since 3.5 minutes in: [%s] continue %q (%v), want [e5,e4] and no continue", names(page.Entries), page.Continue, err)
	}

	// A failed delete does not stop the others: all are tried, all reported.
	nobody, err := env.As("nobody")
	if err != nil {
		t.Fatal(err)
	}
	failing := &audit.Retention{Reader: operator, Client: nobody, Namespace: ns, MaxPerNamespace: 4, MaxAge: 58 * time.Minute}
	if n, err := failing.Prune(ctx, time.Now()); n != 0 || err == nil || strings.Count(err.Error(), "deleting audit entry") != 3 {
		t.Fatalf("pruning without the right to delete: %d pruned, %v; want 0 and three failures", n, err)
	}

	// With an export, only what it delivered is pruned: nothing before it
	// has delivered anything, then what is at or below its cursor. Each run
	// that prunes records it, as system:retention.
	versions := map[string]string{}
	all, err := auditlog.GetAuditLog(ctx, operator, ns, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		versions[names([]waygatev1.AuditEntry{e})] = e.ResourceVersion
	}
	cursor := ""
	r := &audit.Retention{Reader: operator, Client: operator, Namespace: ns, MaxPerNamespace: 4, MaxAge: 58 * time.Minute,
		Delivered: func(context.Context) (string, error) { return cursor, nil }}
	prune := func(want int, left string) []waygatev1.AuditEntry {
		t.Helper()
		n, err := r.Prune(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		entries, err := auditlog.GetAuditLog(ctx, operator, ns, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		var changes, records []waygatev1.AuditEntry
		for _, e := range entries {
			if e.Spec.Action == audit.ActionPruned {
				records = append(records, e)
			} else {
				changes = append(changes, e)
			}
		}
		if n != want || names(changes) != left {
			t.Fatalf("pruned %d, left [%s]; want %d pruned, [%s] left", n, names(changes), want, left)
		}
		return records
	}
	if records := prune(0, "e5,e4,e3,e2,e1,e0"); len(records) != 0 {
		t.Fatalf("nothing pruned, yet recorded: %v", records)
	}
	cursor = versions["e1"]
	records := prune(2, "e5,e4,e3,e2")
	if len(records) != 1 {
		t.Fatalf("%d audit_pruned entries, want 1", len(records))
	}
	if s := records[0].Spec; s.Actor != audit.RetentionActor || s.Platform != waygatev1.PlatformSystem || s.Path != audit.AuditPath ||
		!strings.HasPrefix(s.Reason, "pruned 2 entries written from "+base.Format(time.RFC3339)+" to "+base.Add(time.Minute).Format(time.RFC3339)) {
		t.Errorf("the pruning is recorded as %+v", s)
	}
	// Without an export: count keeps the record and e5..e3; age takes e2
	// (58+ minutes old) too.
	r.Delivered = nil
	if records := prune(1, "e5,e4,e3"); len(records) != 2 {
		t.Errorf("%d audit_pruned entries, want one a run", len(records))
	}
}
