package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// pageSize is how many entries one list call returns.
const pageSize = 500

// Retention prunes audit entries older than MaxAge and, per namespace, all
// but the newest MaxPerNamespace, after writing each one it prunes to Export
// as a JSON line. It pages through entries with an uncached reader: entries
// are never held in an informer.
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

// Start prunes every Interval until ctx ends (a manager.Runnable; it runs on
// the leader only).
func (r *Retention) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("audit-retention")
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		if n, err := r.Prune(ctx, time.Now()); err != nil {
			log.Error(err, "pruning audit entries", "pruned", n)
		} else if n > 0 {
			log.Info("pruned audit entries", "pruned", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// NeedLeaderElection makes only the leader prune.
func (r *Retention) NeedLeaderElection() bool { return true }

type entryRef struct {
	namespace, name string
	at              time.Time
}

// Prune removes the entries retention says to remove at now, and returns
// how many it removed.
func (r *Retention) Prune(ctx context.Context, now time.Time) (int, error) {
	if r.MaxAge == 0 && r.MaxPerNamespace == 0 {
		return 0, nil
	}
	byNamespace := map[string][]entryRef{}
	var list waygatev1.AuditEntryList
	for cont := ""; ; {
		if err := r.Reader.List(ctx, &list, client.InNamespace(r.Namespace), client.Limit(pageSize), client.Continue(cont)); err != nil {
			return 0, fmt.Errorf("listing audit entries: %w", err)
		}
		for _, e := range list.Items {
			byNamespace[e.Namespace] = append(byNamespace[e.Namespace], entryRef{e.Namespace, e.Name, e.Spec.Timestamp.Time})
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	var prune []entryRef
	for _, refs := range byNamespace {
		sort.Slice(refs, func(i, j int) bool { return refs[i].at.Before(refs[j].at) })
		cut := 0
		if r.MaxPerNamespace > 0 && len(refs) > r.MaxPerNamespace {
			cut = len(refs) - r.MaxPerNamespace
		}
		for cut < len(refs) && r.MaxAge > 0 && now.Sub(refs[cut].at) > r.MaxAge {
			cut++
		}
		prune = append(prune, refs[:cut]...)
	}
	for i, ref := range prune {
		if err := r.prune(ctx, ref); err != nil {
			return i, err
		}
	}
	return len(prune), nil
}

// prune exports one entry, then deletes it.
func (r *Retention) prune(ctx context.Context, ref entryRef) error {
	var e waygatev1.AuditEntry
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: ref.namespace, Name: ref.name}, &e); err != nil {
		return client.IgnoreNotFound(err)
	}
	if r.Export != nil {
		line, err := json.Marshal(&e)
		if err != nil {
			return err
		}
		r.exportMu.Lock()
		_, err = r.Export.Write(append(line, '\n'))
		r.exportMu.Unlock()
		if err != nil {
			// Keep the entry: it is not pruned before it is exported.
			return fmt.Errorf("exporting audit entry %s/%s: %w", ref.namespace, ref.name, err)
		}
	}
	if err := r.Client.Delete(ctx, &e); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting audit entry %s/%s: %w", ref.namespace, ref.name, err)
	}
	return nil
}
