package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// EntryName is "<time key>-<object name>-<hash of uid and id>", cut so
// that it is a valid name. The time key counts down from the year 2286 in
// microseconds, 16 digits, so that name order is time order, newest first:
// the API server lists a namespace's entries in name order, so its first
// page is the newest entries and `kubectl get ae` reads like `waygate audit`.
func EntryName(at time.Time, name, uid, id string) string {
	sum := sha256.Sum256([]byte(uid + "/" + id))
	prefix := TimeKey(at) + "-"
	suffix := "-" + hex.EncodeToString(sum[:])[:12]
	room := validation.DNS1123SubdomainMaxLength - len(prefix) - len(suffix)
	if len(name) > room {
		name = strings.TrimRight(name[:room], "-.")
	}
	return prefix + name + suffix
}

// lastMicro is the last microsecond time keys can count down from, and
// timeKeyLen the length of a time key.
const (
	lastMicro  = 9_999_999_999_999_999
	timeKeyLen = 16
)

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

// TimeKey is the name prefix of entries written at at: later times give
// smaller keys.
func TimeKey(at time.Time) string {
	return fmt.Sprintf("%016d", lastMicro-max(at.UnixMicro(), 0))
}

// Labels of every entry the operator writes: the UTC day and hour of its
// timestamp, so that the newest entries of the whole cluster are found by
// asking for the latest days and hours first (Query.Run across
// namespaces), not by reading every entry.
const (
	DayLabel  = "waygate.dev/day"  // 2026-12-02
	HourLabel = "waygate.dev/hour" // 2026-12-02T13
)

// TimeLabels are the day and hour labels of an entry written at at.
func TimeLabels(at time.Time) map[string]string {
	return map[string]string{DayLabel: day(at), HourLabel: hour(at)}
}

func day(at time.Time) string  { return at.UTC().Format("2006-01-02") }
func hour(at time.Time) string { return at.UTC().Format("2006-01-02T15") }

// NewEntry is an AuditEntry of namespace as the operator writes it: named
// after its time and the object name, with uid and id making the name
// unique and the same every time it is written (EntryName), and labelled
// with its day and hour (TimeLabels).
func NewEntry(namespace, name, uid, id string, spec waygatev1.AuditEntrySpec) *waygatev1.AuditEntry {
	at := spec.Timestamp.Time
	return &waygatev1.AuditEntry{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: EntryName(at, name, uid, id), Labels: TimeLabels(at)},
		Spec:       spec,
	}
}
