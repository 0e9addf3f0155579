package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/pager"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// pageSize is how many entries one list call returns.
const pageSize = 500

// Retention prunes audit entries older than MaxAge and, per namespace, all
// but the newest MaxPerNamespace, after writing each one it prunes to Export
// as a JSON line. It pages through entries with an uncached reader (client-go's
// pager): entries are never held in an informer, nor all in memory.
type Retention struct {
	Reader client.Reader
	Client client.Client
	// MaxAge is how long entries are kept; 0 keeps them forever.
	MaxAge time.Duration
	// MaxPerNamespace is how many entries a namespace keeps; 0 is no limit.
	MaxPerNamespace int
	// Export receives every pruned entry as a JSON line; nil exports nothing.
	Export io.Writer
	// Interval is the time between prunes.
	Interval time.Duration
	// Namespace limits pruning to one namespace; empty prunes them all.
	Namespace string

	exportMu sync.Mutex
}

// +kubebuilder:rbac:groups=waygate.dev,resources=auditentries,verbs=get;list;delete

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

// Prune removes the entries retention says to remove at now, and returns
// how many it removed. A namespace lists its entries newest first (their
// names are in time order), so an entry is pruned as soon as it is read:
// past the namespace's first MaxPerNamespace, or older than MaxAge. Each
// costs one delete; a failure does not stop the others, and all failures
// are returned together.
func (r *Retention) Prune(ctx context.Context, now time.Time) (int, error) {
	if r.MaxAge == 0 && r.MaxPerNamespace == 0 {
		return 0, nil
	}
	entries := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		var list waygatev1.AuditEntryList
		err := r.Reader.List(ctx, &list, client.InNamespace(r.Namespace), &client.ListOptions{Raw: &opts})
		return &list, err
	})
	entries.PageSize = pageSize
	var (
		namespace string
		kept      int
		pruned    int
		failed    []error
	)
	err := entries.EachListItemWithAlloc(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		e := obj.(*waygatev1.AuditEntry)
		if e.Namespace != namespace {
			namespace, kept = e.Namespace, 0
		}
		tooMany := r.MaxPerNamespace > 0 && kept >= r.MaxPerNamespace
		tooOld := r.MaxAge > 0 && now.Sub(e.Spec.Timestamp.Time) > r.MaxAge
		if !tooMany && !tooOld {
			kept++
			return nil
		}
		if err := r.prune(ctx, e); err != nil {
			failed = append(failed, err)
			return nil
		}
		pruned++
		return nil
	})
	if err != nil {
		failed = append(failed, fmt.Errorf("listing audit entries: %w", err))
	}
	return pruned, errors.Join(failed...)
}

// prune exports one entry, then deletes it.
func (r *Retention) prune(ctx context.Context, e *waygatev1.AuditEntry) error {
	if r.Export != nil {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		r.exportMu.Lock()
		_, err = r.Export.Write(append(line, '\n'))
		r.exportMu.Unlock()
		if err != nil {
			// Keep the entry: it is not pruned before it is exported.
			return fmt.Errorf("exporting audit entry %s/%s: %w", e.Namespace, e.Name, err)
		}
	}
	if err := r.Client.Delete(ctx, e); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting audit entry %s/%s: %w", e.Namespace, e.Name, err)
	}
	return nil
}
