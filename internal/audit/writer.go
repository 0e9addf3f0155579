package audit

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/routes"
	auditlog "github.com/waygate-dev/waygate/pkg/audit"
)

// Actors of changes no person made.
const (
	// SchedulerActor makes the changes the clock makes: a maintenance
	// window's start and end, a disable's until.
	SchedulerActor = "system:scheduler"
	// UnknownActor is recorded for a deletion whose request the webhook did
	// not see (the webhook was not installed yet when it happened).
	UnknownActor = "unknown"
)

// parallelWrites bounds the entries one drain writes at once.
const parallelWrites = 8

// staleDelete is how long a recorded DELETE may wait for the object's
// deletion to start; after that the DELETE is taken to have failed.
const staleDelete = time.Minute

// Writer drains journals into AuditEntries. It never reads AuditEntries
// through an informer: it only creates them, under deterministic names.
type Writer struct {
	Client client.Client
	// Reader reads objects uncached: a change written past the webhook is
	// recorded only once the API server confirms it is still unaccounted
	// for (the cache may not show the status that accounted for it yet).
	Reader client.Reader
	// Keys verify journal records; without them records are trusted.
	Keys *Keyring
	// Clock tells how old a record is (the wall clock, or a test's).
	Clock clock.PassiveClock
}

// +kubebuilder:rbac:groups=waygate.dev,resources=auditentries,verbs=create
// +kubebuilder:rbac:groups=waygate.dev,resources=routegates;featureflags;segments;ratelimitpolicies,verbs=update;patch

// Object is an audited object: a Waygate kind, whose status acknowledges
// the changes written to the audit log.
type Object interface {
	client.Object
	Common() *waygatev1.CommonStatus
}

// Drain writes the changes in obj's journal that are not yet in the audit
// log as AuditEntries, and acknowledges them in obj's status.auditSequence
// (the caller writes the status; the webhook then drops them from the
// journal). It keeps the finalizer on live objects and removes it from
// deleted ones once their deletion is written. It returns when to look
// again, if a DELETE is still under way, and whether it wrote obj itself (its
// finalizer).
func (w *Writer) Drain(ctx context.Context, obj Object) (retryAfter time.Duration, updated bool, err error) {
	deleting := obj.GetDeletionTimestamp() != nil
	if !deleting && !controllerutil.ContainsFinalizer(obj, Finalizer) {
		// An object the webhook did not see created (from before it was
		// installed, or written past it): held first; that write brings it
		// back, to be drained.
		return 0, true, w.patchFinalizer(ctx, obj, controllerutil.AddFinalizer)
	}
	journal, err := Journal(obj)
	if err != nil {
		// An unreadable journal cannot be recovered; keep the object (and its
		// finalizer) so that the problem is seen, not papered over.
		return 0, false, err
	}
	status := obj.Common()
	pending := Pending(journal, status.AuditSequence)
	if w.Keys != nil {
		seen := time.Now() // keys read after this know every key obj was signed with
		now, prev := w.Clock.Now(), obj.GetCreationTimestamp().Time
		for i, rec := range pending {
			ok, err := w.Keys.VerifyCurrent(ctx, obj, rec, seen)
			if err != nil {
				return 0, false, err
			}
			if !ok {
				pending[i] = tampered(rec, now, prev)
			}
			prev = pending[i].Time.Time
		}
	}
	kind, err := apiutil.GVKForObject(obj, w.Client.Scheme())
	if err != nil {
		return 0, false, err
	}
	if len(pending) > 0 {
		journalDepth.Observe(float64(len(pending)))
		if waited, ok := oldestWait(pending, w.Clock.Now()); ok {
			drainLag.Observe(waited.Seconds())
		}
	}

	var todo []Record
	lastDelete := -1
	for i, rec := range pending {
		if rec.Delete {
			lastDelete = i
		}
	}
	// The generation up to which the spec's changes are accounted for: 0
	// is none on an object nothing was recorded of yet, and not known on
	// one whose changes were recorded before generations were counted.
	gen := status.AuditedGeneration
	known := gen > 0 || status.AuditSequence == 0
	for i, rec := range pending {
		if rec.Delete && !deleting {
			if age := w.Clock.Since(rec.Time.Time); age < staleDelete {
				// The DELETE is still under way: stop here, as acknowledging
				// later changes would acknowledge it too.
				retryAfter = staleDelete - age
				break
			}
			status.AuditSequence = rec.Seq // a DELETE that failed
			continue
		}
		if rec.Seq > status.AuditSequence+1 {
			todo = append(todo, gap(obj, kind.Kind, rec, "seq", status.AuditSequence+1, rec.Seq-1))
		}
		// Generations are counted from the webhook's records only, and not
		// once the object is being deleted (its deletion makes one; a
		// DELETE record comes here only then).
		if !deleting && rec.Action != ActionTampered {
			if known && rec.Generation > gen+1 {
				todo = append(todo, gap(obj, kind.Kind, rec, "gen", gen+1, rec.Generation-1))
			}
			gen, known = max(gen, rec.Generation), true
		}
		if (!rec.Delete || i == lastDelete) && !rec.NoEntry {
			todo = append(todo, rec)
		}
		status.AuditSequence = rec.Seq
	}
	status.AuditedGeneration = gen
	if !deleting && retryAfter == 0 {
		// A generation no record accounts for was written past the webhook,
		// at a time nothing tells: it is recorded as of when it is found
		// (a drain that fails before its status is written may record it
		// again).
		if known && obj.GetGeneration() > gen {
			missing, err := w.unaccounted(ctx, obj)
			if err != nil {
				return 0, false, err
			}
			if missing {
				last := Record{Time: metav1.NewMicroTime(w.Clock.Now().UTC()), Path: pathOf(obj)}
				todo = append(todo, gap(obj, kind.Kind, last, "gen", gen+1, obj.GetGeneration()))
			}
		}
		status.AuditedGeneration = max(gen, obj.GetGeneration())
	}
	if deleting && lastDelete < 0 {
		// Deleted before the webhook saw it: the deleter is unknown.
		now := w.Clock.Now()
		rec, err := Describe(obj, nil, now)
		if err != nil {
			return 0, false, err
		}
		rec.Actor, rec.Platform, rec.Time, rec.Delete, rec.Generation = UnknownActor, waygatev1.PlatformAPI, metav1.NewMicroTime(now), true, obj.GetGeneration()
		todo = append(todo, rec)
	}
	// Entries are independent objects: writing them side by side lets the
	// API server batch them.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelWrites)
	for _, rec := range todo {
		g.Go(func() error { return w.write(gctx, entryFor(obj, kind.Kind, rec)) })
	}
	if err := g.Wait(); err != nil {
		return 0, false, err
	}

	if deleting && controllerutil.ContainsFinalizer(obj, Finalizer) {
		return 0, true, w.patchFinalizer(ctx, obj, controllerutil.RemoveFinalizer)
	}
	return retryAfter, false, nil
}

// patchFinalizer adds or removes (change) the finalizer with a patch of the
// metadata alone, locked on obj's resource version: an update would write
// back the spec as this version of the kind reads it, which may differ from
// what is stored, and make a new generation.
func (w *Writer) patchFinalizer(ctx context.Context, obj client.Object, change func(client.Object, string) bool) error {
	read := obj.DeepCopyObject().(client.Object)
	change(obj, Finalizer)
	return w.Client.Patch(ctx, obj, client.MergeFromWithOptions(read, client.MergeFromWithOptimisticLock{}))
}

// ActionGap records changes of an object that are missing from its records:
// journal records removed, or generations of its spec written, by a writer
// the audit webhook does not see (the operator's identity, or a write while
// the webhook was removed). Who made them is not known.
const ActionGap = "audit_gap"

// gap is the record of what is missing from obj's records before next
// (the record after the gap, whose time and path it takes): journal records
// ("seq") or generations of the spec ("gen") from to to.
func gap(obj client.Object, kind string, next Record, what string, from, to int64) Record {
	span := fmt.Sprint(from)
	if to > from {
		span = fmt.Sprintf("%d to %d", from, to)
	}
	reason := fmt.Sprintf("journal records %s of %s %s/%s are missing: removed by a writer the audit webhook does not see "+
		"(the operator's identity, or while the webhook was removed)", span, kind, obj.GetNamespace(), obj.GetName())
	generation := next.Generation
	if what == "gen" {
		reason = fmt.Sprintf("generation %s of %s %s/%s was written past the audit webhook (with the operator's identity, "+
			"or while the webhook was removed or not yet installed): who changed it, and how, is not known", span, kind, obj.GetNamespace(), obj.GetName())
		generation = to
	}
	return Record{
		ID: fmt.Sprintf("gap/%s/%d-%d", what, from, to), Time: next.Time, Path: next.Path, Generation: generation,
		Actor: UnknownActor, Platform: waygatev1.PlatformAPI, Action: ActionGap, Reason: reason,
	}
}

// unaccounted tells whether obj's generation is still above the one its
// status accounts for, as the API server has it now: a reconcile from a
// cache that does not show the last status yet would record a gap twice.
func (w *Writer) unaccounted(ctx context.Context, obj Object) (bool, error) {
	if w.Reader == nil {
		return true, nil
	}
	fresh := obj.DeepCopyObject().(Object)
	if err := w.Reader.Get(ctx, client.ObjectKeyFromObject(obj), fresh); err != nil {
		return false, err
	}
	return fresh.Common().AuditedGeneration < obj.GetGeneration(), nil
}

// pathOf is obj's audit path.
func pathOf(obj client.Object) string {
	rec, err := Describe(obj, nil, time.Time{})
	if err != nil {
		return ""
	}
	return rec.Path
}

// oldestWait is how long the oldest of the pending records has waited at
// now. Records the webhook did not write are left out: the time they claim
// is anyone's.
func oldestWait(pending []Record, now time.Time) (time.Duration, bool) {
	for _, rec := range pending {
		if rec.Action != ActionTampered {
			return max(now.Sub(rec.Time.Time), 0), true
		}
	}
	return 0, false
}

// Write records changes of obj straight away, not through its journal: a
// change the clock made (an Unrecorded transition), or the deletion of an
// object no finalizer holds.
func (w *Writer) Write(ctx context.Context, obj client.Object, recs ...Record) error {
	kind, err := apiutil.GVKForObject(obj, w.Client.Scheme())
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if err := w.write(ctx, entryFor(obj, kind.Kind, rec)); err != nil {
			return err
		}
	}
	return nil
}

// transitions are the records, as the scheduler makes them, of the changes
// rg's own state makes by itself (its window's start and end, its disable's
// until) from since to upTo (both included): each at the Next of the state
// before it, as the gate and the status see them. Their IDs name the
// generation and the instant, so that the controller (after a reconcile)
// and the webhook (before an edit) record each once.
func transitions(rg *waygatev1.RouteGate, since, upTo time.Time) []Record {
	var recs []Record
	for before := routes.OwnState(&rg.Spec, since.Add(-time.Nanosecond)); !before.Next.IsZero() && !before.Next.After(upTo); {
		b := before.Next
		after := routes.OwnState(&rg.Spec, b)
		recs = append(recs, Record{
			ID:     fmt.Sprintf("scheduler/%d/%d", rg.Generation, b.Unix()),
			Path:   RoutePath(rg.Spec.Route, rg.Spec.Service),
			Action: RouteAction(rg.Spec.Route == waygatev1.AllRoutes, before.State, after.State),
			Old:    string(before.State), New: string(after.State), Reason: rg.Spec.Reason,
			Actor: SchedulerActor, Platform: waygatev1.PlatformSystem, Time: metav1.NewMicroTime(b.UTC()), Generation: rg.Generation,
		})
		before = after
	}
	return recs
}

// Unrecorded are the scheduler's transitions of rg (a window's start and
// end, a disable's until), as last stored, that passed before now and that
// no status of its generation shows: those since its status was computed
// (status.nextTransition; none when it expected none) or, when the status
// is of an older generation, since the edit that made this one (in
// journal). The controller records them before it writes a
// status; an edit records them first, so that a window boundary and an edit
// just after it are both in the log, in order, though the controller then
// computes the new generation only. Each transition's record has one ID,
// so whichever writes it first, it is one entry.
func Unrecorded(rg *waygatev1.RouteGate, journal []Record, now time.Time) []Record {
	var since time.Time
	if rg.Status.ObservedGeneration == rg.Generation {
		if rg.Status.NextTransition == nil {
			return nil
		}
		since = rg.Status.NextTransition.Time
	} else {
		for _, r := range journal {
			if r.Generation == rg.Generation && !r.Delete && r.Actor != SchedulerActor {
				since = r.Time.Time
			}
		}
	}
	if since.IsZero() {
		return nil
	}
	return transitions(rg, since, now)
}

// write creates an entry; one that exists already was written by an
// earlier attempt and is left alone.
func (w *Writer) write(ctx context.Context, e *waygatev1.AuditEntry) error {
	err := w.Client.Create(ctx, e)
	switch {
	case err == nil:
		entriesWritten.WithLabelValues(e.Spec.Action).Inc()
		return nil
	case apierrors.IsAlreadyExists(err):
		return nil
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		// The namespace is going away with its entries; nothing to keep.
		ctrl.LoggerFrom(ctx).Info("not recording a change in a terminating namespace", "entry", e.Name, "action", e.Spec.Action)
		return nil
	default:
		writeErrors.Inc()
		return fmt.Errorf("writing audit entry %s: %w", e.Name, err)
	}
}

// entryFor builds the AuditEntry of rec, named after its time, the object
// and a hash of the object's UID and the record's ID (the admission
// request), so that writing it again finds it already there.
func entryFor(obj client.Object, kind string, rec Record) *waygatev1.AuditEntry {
	id := rec.ID
	if rec.Delete {
		id = "delete" // one deletion per object
	}
	return auditlog.NewEntry(obj.GetNamespace(), obj.GetName(), string(obj.GetUID()), id, waygatev1.AuditEntrySpec{
		Path: rec.Path, Action: rec.Action, Actor: rec.Actor, Platform: rec.Platform,
		OldStatus: truncate(rec.Old, 256), NewStatus: truncate(rec.New, 256), Reason: truncate(rec.Reason, 1024),
		Timestamp: rec.Time, Changes: rec.Changes,
		Target: waygatev1.AuditTarget{Kind: kind, Name: obj.GetName(), Namespace: obj.GetNamespace(), UID: string(obj.GetUID()), Generation: rec.Generation},
	})
}
