package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// KeySecret holds the keys that sign journal records, in the operator's
// namespace: "keys" is one base64 key per line; the first signs, every one
// verifies. To rotate, put a new key first and drop the old one a few
// minutes later (journals drain in seconds).
const KeySecret = "waygate-audit-key"

// ActionTampered records a journal record the audit webhook did not write:
// unsigned or badly signed (written with the operator's own identity, or
// while the webhook was removed). The change it claims is not trusted.
const ActionTampered = "audit_tampered"

// +kubebuilder:rbac:groups="",namespace=waygate-system,resources=secrets,verbs=create

// Keyring signs the records the webhook writes into journals and verifies
// them before the controller writes them as entries. Only the operator can
// read its key, so a record planted by any other writer is told apart.
type Keyring struct {
	// source reads the keys line of KeySecret; where names it in errors.
	source func(ctx context.Context) ([]byte, error)
	where  string
	// reading serializes reads, so that callers that need fresh keys at
	// once share one.
	reading sync.Mutex
	keys    atomic.Pointer[[][]byte]
	// read is when the read of the keys in hand began (Unix ns).
	read atomic.Int64
}

// LoadKeyring reads the keys from KeySecret in namespace, creating it with
// a new key when there is none yet.
func LoadKeyring(ctx context.Context, c client.Client, reader client.Reader, namespace string) (*Keyring, error) {
	k := &Keyring{where: "Secret " + namespace + "/" + KeySecret, source: func(ctx context.Context) ([]byte, error) {
		var s corev1.Secret
		err := reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: KeySecret}, &s)
		return s.Data["keys"], err
	}}
	err := k.load(ctx)
	if apierrors.IsNotFound(err) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: KeySecret},
			Data:       map[string][]byte{"keys": []byte(base64.StdEncoding.EncodeToString(key) + "\n")},
		}
		if err := c.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the audit signing key (Secret %s/%s): %w", namespace, KeySecret, err)
		}
		err = k.load(ctx) // ours, or another replica's
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keyring) load(ctx context.Context) error {
	k.reading.Lock()
	defer k.reading.Unlock()
	return k.loadLocked(ctx)
}

func (k *Keyring) loadLocked(ctx context.Context) error {
	began := time.Now()
	raw, err := k.source(ctx)
	if err != nil {
		return err
	}
	var keys [][]byte
	for _, line := range bytes.Fields(raw) {
		key, err := base64.StdEncoding.DecodeString(string(line))
		if err != nil || len(key) < 16 {
			return fmt.Errorf("the audit signing keys (%s): every line of keys must be a base64 key of 16 bytes or more", k.where)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return fmt.Errorf("the audit signing keys (%s): no keys", k.where)
	}
	k.keys.Store(&keys)
	k.read.Store(began.UnixNano())
	return nil
}

// Start re-reads the keys every minute, for rotations (a manager.Runnable,
// on every replica).
func (k *Keyring) Start(ctx context.Context) error {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := k.load(ctx); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "re-reading the audit signing keys; keeping the ones read before")
		}
	}, time.Minute)
	return nil
}

// NeedLeaderElection is false: every replica serves the webhook.
func (k *Keyring) NeedLeaderElection() bool { return false }

// Sign signs rec as a record of obj.
func (k *Keyring) Sign(obj client.Object, rec *Record) {
	rec.Sig = ""
	rec.Sig = base64.RawStdEncoding.EncodeToString(mac((*k.keys.Load())[0], obj, rec))
}

// VerifyCurrent is Verify with keys read after seen, the time the caller
// read rec: a rotation reaches replicas minutes apart, and the webhook
// replica that signed rec may have read a key this one has not. When none of
// the keys in hand verifies rec and they were read before seen, it reads
// them again (callers at once share one read) and tries those. A record is
// taken for tampered only when keys newer than it do not verify it, so a
// rotation in any order raises no false alarm; a read that fails is an
// error, not a verdict.
func (k *Keyring) VerifyCurrent(ctx context.Context, obj client.Object, rec Record, seen time.Time) (bool, error) {
	if k.Verify(obj, rec) {
		return true, nil
	}
	k.reading.Lock()
	defer k.reading.Unlock()
	if k.read.Load() < seen.UnixNano() {
		if err := k.loadLocked(ctx); err != nil {
			return false, fmt.Errorf("re-reading the audit signing keys to verify a journal record: %w", err)
		}
	}
	return k.Verify(obj, rec), nil
}

// Verify reports whether rec, a record of obj, was signed with one of the
// keys.
func (k *Keyring) Verify(obj client.Object, rec Record) bool {
	sig, err := base64.RawStdEncoding.DecodeString(rec.Sig)
	if err != nil || rec.Sig == "" {
		return false
	}
	rec.Sig = ""
	for _, key := range *k.keys.Load() {
		if hmac.Equal(sig, mac(key, obj, &rec)) {
			return true
		}
	}
	return false
}

// mac binds a record to its object (kind, namespace and name: the UID is
// not yet known when a creation is admitted).
func mac(key []byte, obj client.Object, rec *Record) []byte {
	h := hmac.New(sha256.New, key)
	raw, _ := json.Marshal(rec)
	_, _ = fmt.Fprintf(h, "%T\n%s\n%s\n", obj, obj.GetNamespace(), obj.GetName())
	_, _ = h.Write(raw)
	return h.Sum(nil)
}

// tampered is what the log says of a record the webhook did not write.
// It keeps the time the record claims unless that is after now (a record
// dated ahead would head the log): then it takes prev, the time of the
// record before it, so that writing it again names it alike.
func tampered(rec Record, now, prev time.Time) Record {
	at := rec.Time
	if at.After(now) {
		at = metav1.NewMicroTime(prev)
	}
	return Record{
		ID: rec.ID, Seq: rec.Seq, Time: at, Path: rec.Path, Generation: rec.Generation,
		Actor: UnknownActor, Platform: waygatev1.PlatformAPI, Action: ActionTampered,
		Reason: truncate(fmt.Sprintf("a journal record the audit webhook did not write (unsigned or badly signed), claiming %s by %s at %s: not trusted",
			rec.Action, rec.Actor, rec.Time.UTC().Format(time.RFC3339)), 512),
	}
}
