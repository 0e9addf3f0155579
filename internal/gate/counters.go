package gate

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// Counters count requests against rate limits.
type Counters interface {
	// Take counts one request against each check in order and stops at the
	// first that refuses it, whose index it returns (-1 when every check
	// allowed it). results[i] is filled for every check counted. A request
	// refused by a later check still counts against the earlier ones, as
	// it reached them.
	Take(ctx context.Context, now time.Time, checks []Check, results []Result) (refused int, err error)
}

// memoryShards spreads counters over locks, so that concurrent decisions
// rarely wait for each other.
const memoryShards = 64

// MemoryCounters keeps counters in this process, for one replica. At most
// MaxKeys counters are kept: when a flood of distinct callers fills the
// table, the counter nearest to expiring (of a small sample) makes room, so
// memory stays bounded and the callers seen most recently keep theirs.
type MemoryCounters struct {
	seed   maphash.Seed
	shards [memoryShards]shard
	perCap int
}

type shard struct {
	mu sync.Mutex
	m  map[uint64]counterState
	_  [40]byte // keeps shards on separate cache lines
}

// NewMemoryCounters returns counters bounded to about maxKeys callers.
func NewMemoryCounters(maxKeys int) *MemoryCounters {
	mc := &MemoryCounters{seed: maphash.MakeSeed(), perCap: max(maxKeys/memoryShards, 1)}
	for i := range mc.shards {
		mc.shards[i].m = make(map[uint64]counterState)
	}
	return mc
}

// Take implements Counters; it never fails.
func (mc *MemoryCounters) Take(_ context.Context, now time.Time, checks []Check, results []Result) (int, error) {
	us := now.UnixMicro()
	for i := range checks {
		ch := &checks[i]
		k := mc.key(ch)
		s := &mc.shards[k%memoryShards]
		s.mu.Lock()
		st, ok := s.m[k]
		if !ok && len(s.m) >= mc.perCap {
			s.evict(us)
		}
		results[i] = take(ch, &st, us)
		s.m[k] = st
		s.mu.Unlock()
		if !results[i].Allowed {
			return i, nil
		}
	}
	return -1, nil
}

// Len is how many counters are kept.
func (mc *MemoryCounters) Len() int {
	n := 0
	for i := range mc.shards {
		s := &mc.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (mc *MemoryCounters) key(ch *Check) uint64 {
	var h maphash.Hash
	h.SetSeed(mc.seed)
	_, _ = h.WriteString(ch.Policy)
	_ = h.WriteByte(0)
	if ch.CallerAddr.IsValid() {
		a := ch.CallerAddr.As16()
		_, _ = h.Write(a[:])
	} else {
		_, _ = h.WriteString(ch.Caller)
	}
	return h.Sum64()
}

// evict removes the counter that expires first among a few (map iteration
// starts at a random place), preferring any already expired.
func (s *shard) evict(now int64) {
	var victim uint64
	first := int64(1<<63 - 1)
	n := 0
	for k, st := range s.m {
		if st.expires <= now {
			delete(s.m, k)
			return
		}
		if st.expires < first {
			victim, first = k, st.expires
		}
		if n++; n == 8 {
			break
		}
	}
	delete(s.m, victim)
}
