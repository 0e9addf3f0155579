package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
	"github.com/waygate-dev/waygate/internal/audit"
)

// The API server does not call the audit webhook for the operator's own
// writes (a matchCondition added in config/webhook). It waits up to 10 s: a
// DELETE is recorded on the object, a write of its own. When another
// mutating webhook changes an object after this one, the API server calls
// this one again (IfNeeded), so the record describes the object as stored.
// +kubebuilder:webhook:path=/audit-waygate-dev-v1alpha1,mutating=true,failurePolicy=fail,sideEffects=NoneOnDryRun,groups=waygate.dev,resources=routegates;featureflags;segments;ratelimitpolicies,verbs=create;update;delete,versions=v1alpha1,name=audit.waygate.dev,admissionReviewVersions=v1,timeoutSeconds=10,reinvocationPolicy=IfNeeded

// Auditor captures every change to the audited kinds with the request's real
// user: into the object's journal on CREATE and UPDATE (whatever the request
// wrote there is replaced), and on DELETE into the live object, whose
// finalizer keeps it until the controller has written the entry.
type Auditor struct {
	// Client writes the deletion record onto the object; Reader reads the
	// latest object (uncached).
	Client client.Client
	Reader client.Reader
	Scheme *runtime.Scheme
	// Operator is the operator's own username: its writes are bookkeeping
	// (draining the journal, finalizers) and are not audited.
	Operator string
	// Suppressors may ask, with waygate.dev/audit: "false", that their
	// changes not be audited (programmatic seeding).
	Suppressors []string
	// Keys sign every record the webhook puts in a journal, so that the
	// controller trusts those records only.
	Keys *audit.Keyring
	// Clock is when changes happen (the wall clock, or a test's).
	Clock clock.PassiveClock
}

// Handle implements admission.Handler.
func (a *Auditor) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.UserInfo.Username == a.Operator {
		return admission.Allowed("operator bookkeeping is not audited")
	}
	gvk := schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind}
	decode := func(raw runtime.RawExtension) (client.Object, error) {
		if len(raw.Raw) == 0 {
			return nil, nil
		}
		o, err := a.Scheme.New(gvk)
		if err != nil {
			return nil, err
		}
		obj := o.(client.Object)
		return obj, json.Unmarshal(raw.Raw, obj)
	}
	obj, err := decode(req.Object)
	if err != nil {
		// A change the audit cannot read is refused, not let through
		// unrecorded.
		return a.unreadable(req, gvk, err)
	}
	old, err := decode(req.OldObject)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
		return a.admitWrite(ctx, req, old, obj)
	case admissionv1.Delete:
		if req.DryRun != nil && *req.DryRun {
			return admission.Allowed("dry run: nothing recorded")
		}
		if err := a.recordDelete(ctx, req, old); err != nil {
			return appendFailed(fmt.Errorf("recording the deletion for the audit log: %w", err))
		}
		return admission.Allowed("deletion recorded")
	}
	return admission.Allowed("")
}

// admitWrite puts the journal back as the operator last wrote it, appends
// this change, and keeps the finalizer.
func (a *Auditor) admitWrite(ctx context.Context, req admission.Request, old, obj client.Object) admission.Response {
	platform := audit.PlatformOf(fieldManager(req), req.UserInfo.Username)
	// The journal as the operator knows it, less what it has written.
	var journal []audit.Record
	var audited int64
	if old != nil {
		var err error
		if journal, err = audit.Journal(old); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		audited = old.(audit.Object).Common().AuditSequence
		journal = audit.Pending(journal, audited)
	}
	var ops []jsonpatch.Operation
	if old == nil && obj.GetName() == "" && obj.GetGenerateName() != "" {
		// The API server would name the object after admission, and the
		// record is signed over the name: name it here, as the API server
		// would, so that the controller verifies what was signed.
		name, err := a.generateName(ctx, obj)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		obj.SetName(name)
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata/name", name))
	}
	generation, err := nextGeneration(req, old)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	switch verdict := a.records(req, old, obj); {
	case verdict == suppressed || verdict == unchanged && generation > old.GetGeneration():
		// Not in the log, but accounted for, so that the controller tells
		// this generation from one written past the webhook (audit_gap).
		rec := audit.Record{ID: string(req.UID), Time: metav1.NewMicroTime(a.Clock.Now().UTC()), Generation: generation, NoEntry: true}
		if journal, err = a.appendSigned(obj, journal, audited, rec); err != nil {
			return appendFailed(err)
		}
	case verdict == recorded:
		now := a.Clock.Now()
		// A window boundary the controller has not recorded yet goes first.
		if rg, ok := old.(*waygatev1.RouteGate); ok {
			for _, t := range audit.Unrecorded(rg, journal, now) {
				if journal, err = a.appendSigned(obj, journal, audited, t); err != nil {
					return appendFailed(err)
				}
			}
		}
		rec, err := audit.Describe(old, obj, now)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		a.stamp(&rec, req, platform)
		rec.Generation = generation
		if journal, err = a.appendSigned(obj, journal, audited, rec); err != nil {
			return appendFailed(err)
		}
	}
	// Only the journal and the finalizer change: the request is patched as
	// sent, so that the schema judges exactly what the user wrote.
	meta := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Annotations: maps.Clone(obj.GetAnnotations()), Finalizers: slices.Clone(obj.GetFinalizers()),
	}}
	if err := audit.SetJournal(meta, journal); err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	// A platform for the next DELETE stays only if this writer's platform
	// is the one it names.
	if p, ok := meta.Annotations[audit.PlatformAnnotation]; ok && waygatev1.Platform(p) != platform {
		delete(meta.Annotations, audit.PlatformAnnotation)
	}
	// Keep the finalizer: on a deleting object too, if it was there, so that
	// nobody but the operator lets a deletion go before it is recorded.
	if obj.GetDeletionTimestamp() == nil || (old != nil && controllerutil.ContainsFinalizer(old, audit.Finalizer)) {
		controllerutil.AddFinalizer(meta, audit.Finalizer)
	}
	// Never an empty patch: the API server then decodes the object again
	// from JSON, as it decodes stored objects, so that a number sent as
	// 10.0 where 10 is stored is no change of the spec there either (the
	// generation this record names is the one the object gets).
	ops = append(ops, jsonpatch.NewOperation("test", "/kind", req.Kind.Kind))
	return admission.Patched("", append(ops, metaPatch(obj, meta)...)...)
}

// appendSigned appends rec to journal (audit.Append) and signs it there,
// numbered and cut as it is kept.
func (a *Auditor) appendSigned(obj client.Object, journal []audit.Record, audited int64, rec audit.Record) ([]audit.Record, error) {
	out, err := audit.Append(journal, audited, rec)
	if err == nil && len(out) > len(journal) {
		a.Keys.Sign(obj, &out[len(out)-1])
	}
	return out, err
}

// appendFailed refuses a change whose record could not be kept: while the
// journal is full with 429, to be retried shortly as clients retry
// throttled requests; otherwise with 500.
func appendFailed(err error) admission.Response {
	if full := (*audit.JournalFullError)(nil); !errors.As(err, &full) {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusTooManyRequests, Reason: metav1.StatusReasonTooManyRequests,
		Message: err.Error(), Details: &metav1.StatusDetails{RetryAfterSeconds: 5},
	}}}
}

// metaPatch is the JSON patch that gives obj the annotations and finalizers
// of want. "add" of an object member replaces it when it exists.
func metaPatch(obj client.Object, want *metav1.PartialObjectMetadata) []jsonpatch.Operation {
	var ops []jsonpatch.Operation
	set := func(path string, empty bool, value any) {
		if empty {
			ops = append(ops, jsonpatch.NewOperation("remove", path, nil))
		} else {
			ops = append(ops, jsonpatch.NewOperation("add", path, value))
		}
	}
	if !maps.Equal(obj.GetAnnotations(), want.Annotations) {
		set("/metadata/annotations", len(want.Annotations) == 0, want.Annotations)
	}
	if !slices.Equal(obj.GetFinalizers(), want.Finalizers) {
		set("/metadata/finalizers", len(want.Finalizers) == 0, want.Finalizers)
	}
	return ops
}

// verdict is what the audit makes of a CREATE or UPDATE.
type verdict int

const (
	// unchanged: nothing audited changed (metadata, say).
	unchanged verdict = iota
	// recorded: a change for the log.
	recorded
	// suppressed: a change a trusted identity asked to keep out of the log.
	suppressed
)

// records tells whether a CREATE or UPDATE is a change to audit (a new
// object, a changed spec or a counter reset), and whether a trusted
// identity suppressed it.
func (a *Auditor) records(req admission.Request, old, obj client.Object) verdict {
	if old != nil && equality.Semantic.DeepEqual(specOf(old), specOf(obj)) && !audit.ResetRequested(old, obj) {
		return unchanged
	}
	if obj.GetAnnotations()[audit.SuppressAnnotation] == "false" && slices.Contains(a.Suppressors, req.UserInfo.Username) {
		return suppressed
	}
	return recorded
}

// nextGeneration is the metadata.generation the API server gives the
// object this request writes: 1 for a new one; for an update, one more when
// anything outside metadata and status changes, as the API server counts.
func nextGeneration(req admission.Request, old client.Object) (int64, error) {
	if old == nil {
		return 1, nil
	}
	// Integers as int64, as the API server decodes them: float64 would take
	// two large integers a step apart for one. (A 10.0 sent where 10 is
	// stored reaches us as 10 on both sides; admitWrite's patch is never
	// empty, so that the API server compares them as decoded anew.)
	var before, after map[string]any
	if err := utiljson.Unmarshal(req.OldObject.Raw, &before); err != nil {
		return 0, err
	}
	if err := utiljson.Unmarshal(req.Object.Raw, &after); err != nil {
		return 0, err
	}
	for _, o := range []map[string]any{before, after} {
		delete(o, "metadata")
		delete(o, "status")
	}
	if equality.Semantic.DeepEqual(before, after) {
		return old.GetGeneration(), nil
	}
	return old.GetGeneration() + 1, nil
}

// generateName names a new object from its metadata.generateName as the
// API server does (the prefix, cut to leave room, and five random
// characters), trying again while the name is taken.
func (a *Auditor) generateName(ctx context.Context, obj client.Object) (string, error) {
	const suffix, maxName = 5, 63
	base := obj.GetGenerateName()
	if len(base) > maxName-suffix {
		base = base[:maxName-suffix]
	}
	probe := obj.DeepCopyObject().(client.Object)
	for range 8 {
		name := base + utilrand.String(suffix)
		err := a.Reader.Get(ctx, client.ObjectKey{Namespace: obj.GetNamespace(), Name: name}, probe)
		switch {
		case apierrors.IsNotFound(err):
			return name, nil
		case err != nil:
			return "", fmt.Errorf("naming the new object from generateName %q: %w", obj.GetGenerateName(), err)
		}
	}
	return "", fmt.Errorf("naming the new object from generateName %q: every name tried is taken; use a longer prefix", obj.GetGenerateName())
}

// recordDelete appends the deletion to the live object's journal, and makes
// sure the finalizer holds the object until the controller has written it.
func (a *Auditor) recordDelete(ctx context.Context, req admission.Request, old client.Object) error {
	if old == nil || old.GetDeletionTimestamp() != nil {
		return nil // already being deleted: recorded by the first DELETE
	}
	rec, err := audit.Describe(old, nil, a.Clock.Now())
	if err != nil {
		return err
	}
	a.stamp(&rec, req, audit.DeletePlatform(old, req.UserInfo.Username))
	rec.Generation, rec.Delete = old.GetGeneration(), true
	if !controllerutil.ContainsFinalizer(old, audit.Finalizer) {
		// Nothing holds the object (it is older than the webhook, or the
		// operator wrote it): the API server deletes it as soon as we
		// answer, whatever we write on it, so its journal and the deletion
		// are written as entries now.
		journal, err := audit.Journal(old)
		if err != nil {
			return err
		}
		pending := audit.Pending(journal, old.(audit.Object).Common().AuditSequence)
		return (&audit.Writer{Client: a.Client, Clock: a.Clock}).Write(ctx, old, append(pending, rec)...)
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live := old.DeepCopyObject().(client.Object)
		if err := a.Reader.Get(ctx, client.ObjectKeyFromObject(old), live); err != nil {
			return client.IgnoreNotFound(err)
		}
		read := live.DeepCopyObject().(client.Object)
		journal, err := audit.Journal(live)
		if err != nil {
			return err
		}
		audited := live.(audit.Object).Common().AuditSequence
		journal = audit.Pending(journal, audited)
		// The API server calls us again when our write races its delete: the
		// same user's pending deletion is already recorded.
		for _, r := range journal {
			if r.Delete && r.Actor == rec.Actor {
				return nil
			}
		}
		if journal, err = a.appendSigned(live, journal, audited, rec); err != nil {
			return err
		}
		if err := audit.SetJournal(live, journal); err != nil {
			return err
		}
		controllerutil.AddFinalizer(live, audit.Finalizer)
		// A patch of the metadata alone: an update would write back the
		// spec as this version of the kind reads it, which may differ from
		// what is stored (and make a new generation).
		return a.Client.Patch(ctx, live, client.MergeFromWithOptions(read, client.MergeFromWithOptimisticLock{}))
	})
}

// stamp sets who made the change, from where, and when.
func (a *Auditor) stamp(rec *audit.Record, req admission.Request, platform waygatev1.Platform) {
	rec.ID = string(req.UID)
	rec.Actor = req.UserInfo.Username
	rec.Platform = platform
	rec.Time = metav1.NewMicroTime(a.Clock.Now().UTC())
}

// unreadable refuses, as Invalid, an object that does not decode into its
// kind, naming the field that does not.
func (a *Auditor) unreadable(req admission.Request, gvk schema.GroupVersionKind, err error) admission.Response {
	field := "spec"
	if t, ok := a.Scheme.AllKnownTypes()[gvk]; ok {
		field = strings.TrimPrefix(locate(req.Object.Raw, t, ""), ".")
	}
	kind := strings.ToLower(req.Kind.Kind)
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid,
		Message: fmt.Sprintf("%s %q is invalid: %s: %v (`kubectl explain %s.%s` says what it takes)", req.Kind.Kind, req.Name, field, err, kind, field),
	}}}
}

// locate finds the field of the JSON object raw that does not decode into
// typ, decoding one field at a time and descending into structs:
// ".spec.window.start".
func locate(raw []byte, typ reflect.Type, path string) string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var fields map[string]json.RawMessage
	if typ.Kind() != reflect.Struct || json.Unmarshal(raw, &fields) != nil {
		return path
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		one, _ := json.Marshal(map[string]json.RawMessage{name: fields[name]})
		if json.Unmarshal(one, reflect.New(typ).Interface()) == nil {
			continue
		}
		if sub, ok := jsonField(typ, name); ok {
			return locate(fields[name], sub, path+"."+name)
		}
		return path + "." + name
	}
	return path
}

// jsonField is the type of typ's field that JSON names name, looking into
// embedded structs.
func jsonField(typ reflect.Type, name string) (reflect.Type, bool) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name {
			return f.Type, true
		}
		if f.Anonymous && tag == "" {
			if t, ok := jsonField(f.Type, name); ok {
				return t, true
			}
		}
	}
	return nil, false
}

// fieldManager reads options.fieldManager of a CREATE, UPDATE or PATCH.
func fieldManager(req admission.Request) string {
	var opts struct {
		FieldManager string `json:"fieldManager"`
	}
	_ = json.Unmarshal(req.Options.Raw, &opts)
	return opts.FieldManager
}

// specOf returns the Spec field of one of the audited kinds.
func specOf(obj client.Object) any {
	return reflect.ValueOf(obj).Elem().FieldByName("Spec").Interface()
}
