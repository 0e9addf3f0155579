package controllers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
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
		e := auditEntry(ns, audit.TimeKey(at)+fmt.Sprintf("-e%d", i), path, "alice")
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
		got, err := audit.GetAuditLog(ctx, operator, ns, tc.path, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if names(got) != tc.want {
			t.Errorf("GetAuditLog(%q, %d) = [%s], want [%s]", tc.path, tc.limit, names(got), tc.want)
		}
	}

	// Pages by continue token, each the next older entries; Since stops
	// the reading at the first older entry.
	q := audit.Query{Namespace: ns, Limit: 2}
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
	page, err := audit.Query{Namespace: ns, Limit: 10, Since: base.Add(210 * time.Second)}.Run(ctx, operator)
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

	var exported bytes.Buffer
	r := &audit.Retention{Reader: operator, Client: operator, Namespace: ns, MaxPerNamespace: 4, MaxAge: 58 * time.Minute, Export: &exported}
	n, err := r.Prune(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Count keeps e2..e5; age (58 minutes) also takes e2 (58+ minutes old).
	left, err := audit.GetAuditLog(ctx, operator, ns, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || names(left) != "e5,e4,e3" {
		t.Fatalf("pruned %d, left [%s]; want 3 pruned, [e5,e4,e3] left", n, names(left))
	}
	lines := strings.Split(strings.TrimSpace(exported.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("exported %d lines, want 3:\n%s", len(lines), exported.String())
	}
	// Pruned as read: newest first.
	for i, want := range []string{"e2", "e1", "e0"} {
		var e waygatev1.AuditEntry
		if err := json.Unmarshal([]byte(lines[i]), &e); err != nil || !strings.HasSuffix(e.Name, "-"+want) || e.Spec.Actor != "alice" {
			t.Errorf("export line %d = %s (%v), want entry %s", i, lines[i], err, want)
		}
	}
}
