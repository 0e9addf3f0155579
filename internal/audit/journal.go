// Package audit is the audit pipeline: the admission webhook captures each
// change with its real actor into a journal carried on the changed object,
// and the controllers drain that journal into AuditEntry objects with
// deterministic names, so a burst of edits between two reconciles yields one
// entry per change and a retry or restart never writes one twice.
package audit

import (
	"encoding/json"
	"fmt"
	"math"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

const (
	// JournalAnnotation holds the changes admitted but not yet written as
	// AuditEntries. Only the webhook and the operator write it: whatever else
	// a request puts there is replaced.
	JournalAnnotation = "waygate.dev/journal"
	// SuppressAnnotation "false" asks that a change not be audited; it is
	// honoured only for the identities the operator is configured to trust
	// (programmatic seeding), and ignored from anyone else.
	SuppressAnnotation = "waygate.dev/audit"
	// ReasonAnnotation gives the reason of a change for kinds without
	// spec.reason.
	ReasonAnnotation = "waygate.dev/reason"
	// ResetAnnotation: setting it is audited as rl_reset.
	ResetAnnotation = waygatev1.ResetAnnotation
	// Finalizer keeps a deleted object until its deletion is audited.
	Finalizer = "waygate.dev/audit"
	// MaxJournal and MaxJournalBytes bound the journal, by count and by its
	// size in the annotation (annotations share 256 KiB with kubectl's
	// last-applied configuration). A change that finds it full is refused
	// with 429 (and can be retried) rather than lost.
	MaxJournal      = 64
	MaxJournalBytes = 64 << 10
	// MaxRecordBytes bounds one record: a longer reason or list of changed
	// fields is cut, saying so.
	MaxRecordBytes = 2 << 10
)

// JournalFullError refuses a change while the object's journal is full.
type JournalFullError struct {
	Records, Bytes int
}

func (e *JournalFullError) Error() string {
	return fmt.Sprintf("the audit journal of this object holds %d changes (%d KiB) the operator has not recorded yet; "+
		"the operator is behind or not running: retry in a moment, and check the waygate-manager Deployment if this persists", e.Records, e.Bytes>>10)
}

// Record is one admitted change waiting in the journal.
type Record struct {
	// ID is the admission request's UID: the same change retried by the API
	// server keeps it, so it is recorded once.
	ID string `json:"id"`
	// Seq numbers the object's changes: the controller acknowledges them in
	// status.auditSequence, and the webhook then drops them from the journal.
	Seq        int64              `json:"seq"`
	Time       metav1.MicroTime   `json:"ts"`
	Actor      string             `json:"actor"`
	Platform   waygatev1.Platform `json:"platform"`
	Action     string             `json:"action"`
	Path       string             `json:"path"`
	Old        string             `json:"old,omitempty"`
	New        string             `json:"new,omitempty"`
	Reason     string             `json:"reason,omitempty"`
	Changes    []string           `json:"changes,omitempty"`
	Generation int64              `json:"gen,omitempty"`
	// Delete marks the record of a DELETE request.
	Delete bool `json:"delete,omitempty"`
	// NoEntry marks a change that is accounted for but has no entry: one a
	// trusted identity kept out of the log (SuppressAnnotation), or one that
	// changes no field the log describes but still makes a new generation.
	NoEntry bool `json:"noEntry,omitempty"`
	// Sig is the webhook's signature of the record (Keyring): a record
	// without a valid one was planted by another writer.
	Sig string `json:"sig,omitempty"`
}

// Journal reads the journal of obj. A journal that cannot be read is
// reported, never silently dropped.
func Journal(obj client.Object) ([]Record, error) {
	raw, ok := obj.GetAnnotations()[JournalAnnotation]
	if !ok || raw == "" {
		return nil, nil
	}
	var recs []Record
	if err := json.Unmarshal([]byte(raw), &recs); err != nil {
		return nil, fmt.Errorf("reading the audit journal of %s: %w", obj.GetName(), err)
	}
	return recs, nil
}

// SetJournal writes recs as obj's journal, removing the annotation when
// there are none.
func SetJournal(obj client.Object, recs []Record) error {
	ann := obj.GetAnnotations()
	if len(recs) == 0 {
		delete(ann, JournalAnnotation)
		obj.SetAnnotations(ann)
		return nil
	}
	raw, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	if ann == nil {
		ann = map[string]string{}
	}
	ann[JournalAnnotation] = string(raw)
	obj.SetAnnotations(ann)
	return nil
}

// Pending is the part of journal not yet written to the audit log: the
// records after audited, the object's status.auditSequence.
func Pending(journal []Record, audited int64) []Record {
	var out []Record
	for _, r := range journal {
		if r.Seq > audited {
			out = append(out, r)
		}
	}
	return out
}

// Append numbers rec after the journal's records and the audited ones and
// adds it, unless a record with its ID is there already. It fails when the
// journal is full.
func Append(journal []Record, audited int64, rec Record) ([]Record, error) {
	last := audited
	for _, r := range journal {
		if r.ID == rec.ID {
			return journal, nil
		}
		last = max(last, r.Seq)
	}
	if last > math.MaxInt64-MaxJournal {
		// Numbered past what the webhook ever numbers: written past it.
		return journal, fmt.Errorf("the audit journal of this object is numbered up to %d, which the audit webhook never numbers: "+
			"it was written past the webhook (see the object's audit_gap and audit_tampered entries); recreate the object to audit it again", last)
	}
	rec.Seq = last + 1
	compact(&rec)
	out := append(journal, rec)
	size := 0
	if raw, err := json.Marshal(out); err == nil {
		size = len(raw)
	}
	if len(out) > MaxJournal || size > MaxJournalBytes {
		journalFull.Inc()
		return journal, &JournalFullError{Records: len(journal), Bytes: size}
	}
	return out, nil
}

// compact cuts a record to MaxRecordBytes: first its list of changes (the
// last line says how many more there were), then its reason.
func compact(rec *Record) {
	size := func() int { raw, _ := json.Marshal(rec); return len(raw) }
	if size() <= MaxRecordBytes {
		return
	}
	all := rec.Changes
	for n := len(all) - 1; n >= 0 && size() > MaxRecordBytes; n-- {
		rec.Changes = append(all[:n:n], fmt.Sprintf("and %d more changes", len(all)-n))
	}
	if over := size() - MaxRecordBytes; over > 0 {
		r := []rune(rec.Reason)
		rec.Reason = string(r[:max(len(r)-over-len(" … (cut)"), 0)]) + " … (cut)"
	}
}
