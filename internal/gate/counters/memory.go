package counters

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// memoryShards spreads counters over locks, so that concurrent decisions
// rarely wait for each other.
const memoryShards = 64

// Memory keeps counters in this process, for one replica. At most
// about maxKeys counters are kept: when a flood of distinct callers fills
// the table, one of a small sample makes room, so memory stays bounded. The
// victim is an expired counter if the sample has one, else the one nearest
// to expiring among those not exhausted: a caller that was refused keeps
// its counter however many new callers come (unless the whole sample is
// exhausted too), so rotating addresses or keys cannot buy it a fresh one.
type Memory struct {
	seed   maphash.Seed
	shards [memoryShards]shard
	perCap int
}

type shard struct {
	mu sync.Mutex
	m  map[uint64]counterState
	_  [40]byte // keeps shards on separate cache lines
}

// NewMemory returns counters bounded to about maxKeys callers.
func NewMemory(maxKeys int) *Memory {
	mc := &Memory{seed: maphash.MakeSeed(), perCap: max(maxKeys/memoryShards, 1)}
	for i := range mc.shards {
		mc.shards[i].m = make(map[uint64]counterState)
	}
	return mc
}

// Take implements Store; it never fails.
func (mc *Memory) Take(_ context.Context, now time.Time, checks []Check, results []Result) (int, error) {
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
		st.exhausted = !results[i].Allowed || results[i].Remaining == 0
		s.m[k] = st
		s.mu.Unlock()
		if !results[i].Allowed {
			return i, nil
		}
	}
	return -1, nil
}

// Len is how many counters are kept.
func (mc *Memory) Len() int {
	n := 0
	for i := range mc.shards {
		s := &mc.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Kinds of caller, hashed before the caller so that no header value can
// name an address's counter (nor an IPv4 address an IPv6 one).
const (
	callerKey  = 'k'
	callerIPv4 = '4'
	callerIPv6 = '6'
)

func (mc *Memory) key(ch *Check) uint64 {
	var h maphash.Hash
	h.SetSeed(mc.seed)
	_, _ = h.WriteString(ch.Policy)
	_ = h.WriteByte(0)
	switch a := ch.CallerAddr; {
	case a.Is4():
		_ = h.WriteByte(callerIPv4)
		b := a.As4()
		_, _ = h.Write(b[:])
	case a.Is6():
		_ = h.WriteByte(callerIPv6)
		b := a.As16()
		_, _ = h.Write(b[:])
	default:
		_ = h.WriteByte(callerKey)
		_, _ = h.WriteString(ch.Caller)
	}
	return h.Sum64()
}

// evictSample is how many counters evict compares.
const evictSample = 8

// evict makes room in s by removing a counter among a few (map iteration
// starts at a random place): the first expired one, else the one nearest to
// expiring that is not exhausted, else the exhausted one nearest to
// expiring.
func (s *shard) evict(now int64) {
	var victim counterState
	var victimKey uint64
	n := 0
	for k, st := range s.m {
		if st.expires <= now {
			delete(s.m, k)
			return
		}
		if n == 0 || worseToEvict(&victim, &st) {
			victim, victimKey = st, k
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(s.m, victimKey)
}

// worseToEvict says whether evicting a costs more than evicting b.
func worseToEvict(a, b *counterState) bool {
	if a.exhausted != b.exhausted {
		return a.exhausted
	}
	return b.expires < a.expires
}
