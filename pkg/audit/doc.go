// Package audit reads Waygate's audit log: the AuditEntry objects the
// operator writes, one per change of a route, rate limit, flag or segment,
// saying who changed what, when, from where, and what it was before. It is
// the Go form of the engine API users know from the Python library
// (get_audit_log(path=..., limit=...)): GetAuditLog for the last entries of
// a route, Query for the rest (by actor or action, since a time, across
// namespaces, page by page) and Query.Watch for new entries as they are
// written. The CLI (waygate audit), the dashboard's Audit tab and the
// operator's export read the log through it.
//
// Each entry's spec holds the fields of the log: path, action, actor,
// platform, oldStatus, newStatus, reason and timestamp (and target, the
// object changed). Entries are named so that the API server lists a
// namespace's newest first: the newest N cost one page to read, however
// long the log.
//
// It needs a controller-runtime client (client.New) whose scheme knows the
// Waygate kinds (api/v1alpha1's AddToScheme), and the right to list (and to
// watch, for Watch) auditentries in the namespaces read.
package audit
