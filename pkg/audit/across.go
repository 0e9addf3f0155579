package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// Reading the newest entries of every namespace. The API server lists a
// cluster's entries in namespace order, each namespace's newest first (their
// names are time keys), so the newest N of the cluster are among the newest
// N of each namespace: the reader takes those, and passes over the rest of
// each namespace (a skip scan). It asks for the latest days and hours first
// (TimeLabels): a namespace with no entry that recent costs nothing, and
// once a period holds N entries nothing older is read. It needs the right
// to list entries cluster-wide only, not to list namespaces.

// period selects the entries of one stretch of time: each is older than
// every entry of the periods before it.
type period struct {
	labels labels.Selector
	// since is the start of the period (zero: as old as it gets).
	since time.Time
	// ordered is false for entries without time keys: they are read in
	// full.
	ordered bool
}

// periods are the stretches of time the reader asks for, newest first, at
// now (the reader's clock; an hour or a day ahead is asked for too, for an
// operator whose clock is ahead): the hour, the last days, week, month and
// four months, then the rest of the labelled entries, then those written
// before entries were labelled.
func periods(now time.Time) []period {
	now = now.UTC()
	hours := []string{hour(now.Add(time.Hour)), hour(now), hour(now.Add(-time.Hour))}
	days := func(from, to int) []string { // days ago, from to to
		var out []string
		for d := from; d <= to; d++ {
			out = append(out, day(now.AddDate(0, 0, -d)))
		}
		return out
	}
	sel := func(reqs ...*labels.Requirement) labels.Selector {
		s := labels.NewSelector()
		for _, r := range reqs {
			s = s.Add(*r)
		}
		return s
	}
	req := func(key string, op selection.Operator, values []string) *labels.Requirement {
		r, err := labels.NewRequirement(key, op, values)
		if err != nil {
			panic(err) // the keys and values are ours, and valid
		}
		return r
	}
	startOfDay := func(d int) time.Time {
		y, m, dd := now.AddDate(0, 0, -d).Date()
		return time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)
	}
	const last = 128 // days
	return []period{
		{sel(req(HourLabel, selection.In, hours)), now.Add(-time.Hour).Truncate(time.Hour), true},
		{sel(req(DayLabel, selection.In, days(-1, 1)), req(HourLabel, selection.NotIn, hours)), startOfDay(1), true},
		{sel(req(DayLabel, selection.In, days(2, 8))), startOfDay(8), true},
		{sel(req(DayLabel, selection.In, days(9, 38))), startOfDay(38), true},
		{sel(req(DayLabel, selection.In, days(39, last))), startOfDay(last), true},
		{sel(req(DayLabel, selection.Exists, nil), req(DayLabel, selection.NotIn, days(-1, last))), time.Time{}, true},
		{sel(req(DayLabel, selection.DoesNotExist, nil)), time.Time{}, false},
	}
}

// all reads the newest entries q selects across every namespace.
func (q Query) all(ctx context.Context, c client.Reader) (Page, error) {
	var page Page
	past := false // the labelled periods left are older than q.Since
	for _, p := range periods(time.Now()) {
		if past && p.ordered {
			continue
		}
		found, version, err := q.scan(ctx, c, p, page.ResourceVersion)
		if err != nil {
			return Page{}, err
		}
		if page.ResourceVersion == "" {
			page.ResourceVersion = version
		}
		page.Entries = newest(append(page.Entries, found...), q.Limit)
		// Every later period is older than this one: enough entries end
		// the read. Since ends only the labelled periods: the entries
		// written before entries were labelled may be newer than Since.
		if len(page.Entries) >= q.Limit {
			break
		}
		past = past || !q.Since.IsZero() && p.since.Before(q.Since)
	}
	return page, nil
}

// scan reads the entries q selects in period p from every namespace: the
// newest q.Limit of each (all of them when p is not in time order). It
// reads at version (the first list's when ""), so that the pages are one
// snapshot, and returns that version.
func (q Query) scan(ctx context.Context, c client.Reader, p period, version string) ([]waygatev1.AuditEntry, string, error) {
	var found []waygatev1.AuditEntry
	taken := map[string]int{}
	for cont := ""; ; {
		var opts []client.ListOption
		if cont == "" && version != "" {
			// A continue token carries its version; the first list of a
			// period asks for the version of the periods before.
			opts = append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: version, ResourceVersionMatch: metav1.ResourceVersionMatchExact}})
		}
		opts = append(opts, client.Limit(int64(q.Limit)), client.Continue(cont), client.MatchingLabelsSelector{Selector: p.labels})
		if f := q.Fields(); len(f) > 0 {
			opts = append(opts, f)
		}
		var list waygatev1.AuditEntryList
		if err := c.List(ctx, &list, opts...); err != nil {
			return nil, "", err
		}
		if version == "" {
			version = list.ResourceVersion
		}
		done := ""
		for _, e := range list.Items {
			switch {
			case !p.ordered:
				if q.Keeps(&e) {
					found = append(found, e)
				}
			case taken[e.Namespace] >= q.Limit:
				done = e.Namespace
			case !q.Keeps(&e):
				// Older than Since, and so is the rest of the namespace.
				taken[e.Namespace], done = q.Limit, e.Namespace
			default:
				found = append(found, e)
				if taken[e.Namespace]++; taken[e.Namespace] == q.Limit {
					done = e.Namespace
				}
			}
		}
		if list.Continue == "" {
			return found, version, nil
		}
		cont = list.Continue
		if last := list.Items[len(list.Items)-1].Namespace; p.ordered && done == last {
			cont = skipNamespace(cont, last)
		}
	}
}

// skipNamespace turns cont, a continue token of a cluster-wide list, into
// one that goes on after the last entry of namespace ns. A token is
// base64 of {"v","rv","start"}, start the storage key to go on from,
// relative to the resource's: "<namespace>/<name>"; "<ns>/~" is after every
// name of ns (names are lower case letters, digits, '-' and '.') and before
// every later namespace. A token this does not recognise is kept: the
// reader then reads the rest of the namespace, which costs time, not
// correctness.
func skipNamespace(cont, ns string) string {
	raw, err := base64.RawURLEncoding.DecodeString(cont)
	if err != nil {
		return cont
	}
	var token map[string]any
	if err := json.Unmarshal(raw, &token); err != nil || token["v"] != "meta.k8s.io/v1" {
		return cont
	}
	start, _ := token["start"].(string)
	lead := "" // the API server's cache writes the key with a leading "/"
	if strings.HasPrefix(start, "/") {
		lead, start = "/", start[1:]
	}
	if !strings.HasPrefix(start, ns+"/") {
		return cont
	}
	token["start"] = lead + ns + "/~"
	out, err := json.Marshal(token)
	if err != nil {
		return cont
	}
	return base64.RawURLEncoding.EncodeToString(out)
}
