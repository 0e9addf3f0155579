package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/pager"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	auditlog "github.com/waygate-dev/waygate/pkg/audit"
)

// Retention prunes audit entries older than MaxAge and, per namespace, all
// but the newest MaxPerNamespace; with an export, only those the export has
// delivered. Each run that prunes in a namespace records it there, as an
// audit_pruned entry (how many, written when), so that a flush of the log
// is itself on the record; those records are pruned by age only, and do not
// count against MaxPerNamespace. It pages through entries with an uncached reader
// (client-go's pager): entries are never held in an informer, nor all in
// memory.
type Retention struct {
	Reader client.Reader
	Client client.Client
	// MaxAge is how long entries are kept; 0 keeps them forever.
	MaxAge time.Duration
	// MaxPerNamespace is how many entries a namespace keeps; 0 is no limit.
	MaxPerNamespace int
	// Delivered, with an export, tells how far it has delivered (its
	// cursor, "" when nothing yet): entries past it are kept. Nil without
	// an export.
	Delivered func(context.Context) (string, error)
	// Interval is the time between prunes.
	Interval time.Duration
	// Namespace limits pruning to one namespace; empty prunes them all.
	Namespace string
	// Clock stamps the audit_pruned entries (the wall clock when nil).
	Clock clock.PassiveClock
}

// +kubebuilder:rbac:groups=waygate.dev,resources=auditentries,verbs=get;list;delete;create

// Start prunes at once and then every Interval until ctx ends (a
// manager.Runnable; it runs on the leader only).
func (r *Retention) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("audit-retention")
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if n, err := r.Prune(ctx, time.Now()); err != nil {
			log.Error(err, "pruning audit entries", "pruned", n)
		} else if n > 0 {
			log.Info("pruned audit entries", "pruned", n)
		}
	}, r.Interval)
	return nil
}

// NeedLeaderElection makes only the leader prune.
func (r *Retention) NeedLeaderElection() bool { return true }

// pruned is what one run pruned in a namespace.
type pruned struct {
	count          int
	oldest, newest time.Time
	tooOld         int
}

// Prune removes the entries retention says to remove at now, and returns
// how many it removed. A namespace lists its entries newest first (their
// names are in time order), so an entry is pruned as soon as it is read:
// past the namespace's first MaxPerNamespace, or older than MaxAge, unless
// the export has not delivered it. Each costs one delete; a failure does
// not stop the others, and all failures are returned together.
func (r *Retention) Prune(ctx context.Context, now time.Time) (int, error) {
	if r.MaxAge == 0 && r.MaxPerNamespace == 0 {
		return 0, nil
	}
	delivered, exporting := "", r.Delivered != nil
	if exporting {
		var err error
		if delivered, err = r.Delivered(ctx); err != nil {
			return 0, fmt.Errorf("reading how far the export has delivered: %w", err)
		}
		if delivered == "" {
			return 0, nil // the export has delivered nothing yet
		}
	}
	entries := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		var list waygatev1.AuditEntryList
		err := r.Reader.List(ctx, &list, client.InNamespace(r.Namespace), &client.ListOptions{Raw: &opts})
		return &list, err
	})
	entries.PageSize = auditlog.PageSize
	var (
		namespace string
		kept      int
		failed    []error
		done      = map[string]*pruned{}
	)
	err := entries.EachListItemWithAlloc(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		e := obj.(*waygatev1.AuditEntry)
		if e.Namespace != namespace {
			namespace, kept = e.Namespace, 0
		}
		tooOld := r.MaxAge > 0 && now.Sub(e.Spec.Timestamp.Time) > r.MaxAge
		// The records of pruning are kept until they are old: a flood of
		// changes cannot flush the evidence that it flushed the log.
		record := e.Spec.Action == ActionPruned
		tooMany := !record && r.MaxPerNamespace > 0 && kept >= r.MaxPerNamespace
		if !tooMany && !tooOld {
			if !record {
				kept++
			}
			return nil
		}
		if exporting {
			if !deliveredYet(e, delivered, &failed) {
				kept++ // kept until it is delivered
				return nil
			}
		}
		if err := r.Client.Delete(ctx, e); err != nil && !apierrors.IsNotFound(err) {
			failed = append(failed, fmt.Errorf("deleting audit entry %s/%s: %w", e.Namespace, e.Name, err))
			return nil
		}
		entriesPruned.Inc()
		p := done[e.Namespace]
		if p == nil {
			p = &pruned{oldest: e.Spec.Timestamp.Time, newest: e.Spec.Timestamp.Time}
			done[e.Namespace] = p
		}
		p.count++
		if t := e.Spec.Timestamp.Time; t.Before(p.oldest) {
			p.oldest = t
		} else if t.After(p.newest) {
			p.newest = t
		}
		if tooOld {
			p.tooOld++
		}
		return nil
	})
	if err != nil {
		failed = append(failed, fmt.Errorf("listing audit entries: %w", err))
	}
	total := 0
	for ns, p := range done {
		total += p.count
		if err := r.record(ctx, ns, p); err != nil {
			failed = append(failed, err)
		}
	}
	return total, errors.Join(failed...)
}

// deliveredYet tells whether the export has delivered e (its resource
// version is at or below the cursor delivered); an entry whose version
// cannot be compared is not, and the failure joins failed.
func deliveredYet(e *waygatev1.AuditEntry, delivered string, failed *[]error) bool {
	c, err := resourceversion.CompareResourceVersion(e.ResourceVersion, delivered)
	if err != nil {
		*failed = append(*failed, fmt.Errorf("audit entry %s/%s: %w", e.Namespace, e.Name, err))
		return false
	}
	return c <= 0
}

// record writes the audit_pruned entry of a run in namespace.
func (r *Retention) record(ctx context.Context, namespace string, p *pruned) error {
	c := r.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	now := metav1.NewMicroTime(c.Now().UTC())
	why := []string{}
	if p.tooOld > 0 {
		why = append(why, fmt.Sprintf("%d older than %v", p.tooOld, r.MaxAge))
	}
	if n := p.count - p.tooOld; n > 0 {
		why = append(why, fmt.Sprintf("%d past the newest %d of the namespace", n, r.MaxPerNamespace))
	}
	e := auditlog.NewEntry(namespace, "audit-pruned", "retention", now.Format(time.RFC3339Nano), waygatev1.AuditEntrySpec{
		Path: AuditPath, Action: ActionPruned, Actor: RetentionActor, Platform: waygatev1.PlatformSystem,
		Reason: fmt.Sprintf("pruned %d entries written from %s to %s (%s)", p.count,
			p.oldest.UTC().Format(time.RFC3339), p.newest.UTC().Format(time.RFC3339), strings.Join(why, ", ")),
		Timestamp: now,
		Target:    waygatev1.AuditTarget{Kind: "AuditEntry", Name: "entries", Namespace: namespace},
	})
	if err := r.Client.Create(ctx, e); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("recording the pruning of %d audit entries in %s: %w", p.count, namespace, err)
	}
	entriesWritten.WithLabelValues(ActionPruned).Inc()
	return nil
}
