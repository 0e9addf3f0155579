package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/tools/pager"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	auditlog "github.com/waygate-dev/waygate/pkg/audit"
)

// ExportCursor is the ConfigMap, in the operator's namespace, that records
// how far the export has delivered the audit log: every entry whose
// resource version is at or below its resourceVersion was delivered.
const ExportCursor = "waygate-audit-export"

// cursorKey is the ConfigMap key of the cursor.
const cursorKey = "resourceVersion"

// A Sink receives audit entries: an OpenTelemetry collector (OTLP) or a
// stream of JSON lines.
type Sink interface {
	// Export delivers entries, or fails; a failed batch is sent again.
	Export(ctx context.Context, entries []waygatev1.AuditEntry) error
	// Shutdown flushes and closes the sink.
	Shutdown(ctx context.Context) error
}

// Exporter sends every audit entry to a Sink as it is written, at least
// once: it watches the entries of every namespace in the order the API
// server commits them, delivers them in batches, retrying with backoff
// while the sink is away, and then moves the cursor (ExportCursor) past
// them. The cursor is in the API, so a restarted operator or a new leader
// goes on where the last one stopped: the batch in flight when it stopped
// is sent again (each entry keeps its name, so a store can deduplicate).
// When the cursor is older than the API server's watch history, it reads
// the log from the start and sends what is past the cursor.
//
// Resource versions, not entry names, mark the place: an entry's name
// carries the time of the change, and a change is written some time after
// it was made, so names do not arrive in order; resource versions do.
type Exporter struct {
	// Client reads and watches entries without a cache, and keeps the
	// cursor.
	Client client.WithWatch
	// Namespace holds the cursor: the operator's.
	Namespace string
	Sink      Sink
	// BatchSize is the most entries sent at once; FlushInterval how long a
	// batch waits for more before it is sent.
	BatchSize     int
	FlushInterval time.Duration
	// Backoff is the first wait after a failed delivery, doubled up to
	// MaxBackoff.
	Backoff, MaxBackoff time.Duration
}

// +kubebuilder:rbac:groups=waygate.dev,resources=auditentries,verbs=list;watch
// +kubebuilder:rbac:groups="",namespace=waygate-system,resources=configmaps,verbs=get;update,resourceNames=waygate-audit-export
// +kubebuilder:rbac:groups="",namespace=waygate-system,resources=configmaps,verbs=create

// NeedLeaderElection makes only the leader export.
func (x *Exporter) NeedLeaderElection() bool { return true }

// Start exports until ctx ends (a manager.Runnable).
func (x *Exporter) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("audit-export")
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := x.Sink.Shutdown(shutdown); err != nil {
			log.Error(err, "closing the audit export")
		}
	}()
	wait := x.Backoff
	for relist := false; ctx.Err() == nil; {
		err := x.run(ctx, relist)
		if ctx.Err() != nil {
			return nil
		}
		if relist = errors.Is(err, auditlog.ErrExpired); relist {
			log.Info("the export cursor is older than the API server's watch history: reading the log past it")
			continue
		}
		log.Error(err, "exporting audit entries; trying again", "in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, x.MaxBackoff)
	}
	return nil
}

// run delivers what is written past the cursor, until ctx ends or the watch
// fails (auditlog.ErrExpired: the cursor is too old to watch from, and run
// must read the log past it, relist). Without a cursor, it reads the whole
// log first.
func (x *Exporter) run(ctx context.Context, relist bool) error {
	cursor, err := ReadCursor(ctx, x.Client, x.Namespace)
	if err != nil {
		return err
	}
	if cursor == "" || relist {
		if cursor, err = x.catchUp(ctx, ""); err != nil {
			return err
		}
	}
	entries := make(chan waygatev1.AuditEntry, x.BatchSize)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(entries)
		return auditlog.Query{}.Watch(gctx, x.Client, cursor, func(e *waygatev1.AuditEntry) error {
			select {
			case entries <- *e:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	g.Go(func() error { return x.send(gctx, entries) })
	return g.Wait()
}

// send delivers entries in batches, in order, moving the cursor after each.
func (x *Exporter) send(ctx context.Context, entries <-chan waygatev1.AuditEntry) error {
	for {
		var batch []waygatev1.AuditEntry
		select {
		case e, ok := <-entries:
			if !ok {
				return nil
			}
			batch = append(batch, e)
		case <-ctx.Done():
			return nil
		}
		flush := time.After(x.FlushInterval)
	fill:
		for len(batch) < x.BatchSize {
			select {
			case e, ok := <-entries:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			case <-flush:
				break fill
			}
		}
		if err := x.deliver(ctx, batch, batch[len(batch)-1].ResourceVersion); err != nil {
			return err
		}
		if len(entries) == 0 {
			exportLag.Set(0)
		}
	}
}

// catchUp delivers the entries past cursor (all when it is "") that the
// API server lists now, and moves the cursor to the list's version. A list
// comes in name order, not in the order entries were written, so the
// cursor moves only once all of it is delivered.
func (x *Exporter) catchUp(ctx context.Context, cursor string) (string, error) {
	var version string
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		var list waygatev1.AuditEntryList
		err := x.Client.List(ctx, &list, &client.ListOptions{Raw: &opts})
		if version == "" {
			version = list.ResourceVersion
		}
		return &list, err
	})
	p.PageSize = auditlog.PageSize
	var batch []waygatev1.AuditEntry
	err := p.EachListItemWithAlloc(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		e := obj.(*waygatev1.AuditEntry)
		if cursor != "" {
			if c, err := resourceversion.CompareResourceVersion(e.ResourceVersion, cursor); err != nil || c <= 0 {
				return err
			}
		}
		if batch = append(batch, *e); len(batch) < x.BatchSize {
			return nil
		}
		err := x.deliver(ctx, batch, "")
		batch = batch[:0]
		return err
	})
	if err == nil {
		err = x.deliver(ctx, batch, version)
	}
	if err != nil {
		return "", fmt.Errorf("reading the audit log to export it: %w", err)
	}
	return version, nil
}

// deliver sends batch until the sink takes it, waiting longer after each
// failure, then moves the cursor to next (unless it is "").
func (x *Exporter) deliver(ctx context.Context, batch []waygatev1.AuditEntry, next string) error {
	wait := x.Backoff
	for len(batch) > 0 {
		exportLag.Set(time.Since(batch[0].CreationTimestamp.Time).Seconds())
		err := x.Sink.Export(ctx, batch)
		if err == nil {
			now := time.Now()
			for _, e := range batch {
				exportDelay.Observe(now.Sub(e.CreationTimestamp.Time).Seconds())
			}
			exportDelivered.Add(float64(len(batch)))
			break
		}
		exportFailures.Inc()
		ctrl.LoggerFrom(ctx).Error(err, "exporting audit entries; sending them again", "entries", len(batch), "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, x.MaxBackoff)
	}
	if next == "" {
		return nil
	}
	return x.saveCursor(ctx, next)
}

// ReadCursor is how far the export has delivered ("" when it has not
// started).
func ReadCursor(ctx context.Context, c client.Reader, namespace string) (string, error) {
	var cm corev1.ConfigMap
	err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ExportCursor}, &cm)
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	return cm.Data[cursorKey], err
}

// saveCursor records that everything up to version was delivered.
func (x *Exporter) saveCursor(ctx context.Context, version string) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: x.Namespace, Name: ExportCursor}}
	data := map[string]string{cursorKey: version, "updated": time.Now().UTC().Format(time.RFC3339)}
	err := x.Client.Get(ctx, client.ObjectKeyFromObject(cm), cm)
	switch {
	case apierrors.IsNotFound(err):
		cm.Data = data
		err = x.Client.Create(ctx, cm)
	case err == nil:
		cm.Data = data
		err = x.Client.Update(ctx, cm)
	}
	if err != nil {
		return fmt.Errorf("saving the audit export's cursor in ConfigMap %s/%s: %w", x.Namespace, ExportCursor, err)
	}
	return nil
}
