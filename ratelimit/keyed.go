package ratelimit

import (
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/fraised/fraised/internal/shard"
)

// Sizing of Keyed and Counter. 64 shards keep lock contention negligible on
// any core count fraised targets; DefaultMaxKeys bounds a Keyed at roughly
// 6 MiB (about 90 bytes per IPv6 key with map overhead) however many source
// addresses an attacker sprays.
const (
	numShards      = 64
	DefaultMaxKeys = 1 << 16
)

// evictScan is how many entries a full shard inspects for a full bucket
// before evicting an arbitrary one, which keeps inserts O(1).
const evictScan = 8

// Keyed is a set of token buckets keyed by a string (a source IP, an
// identity), sharded by xxhash into 64 shards, each with its own mutex. At
// most MaxKeys keys are tracked (MaxKeys/64 per shard). Entries whose bucket
// has refilled are equivalent to absent ones and are dropped by Sweep, or
// lazily when a shard is full; if a full shard has no refilled entry among
// the few it inspects, an arbitrary one is evicted, which at worst hands
// that key a fresh burst. Safe for concurrent use.
type Keyed struct {
	limit    Limit
	perShard int
	m        *shard.Map[string, Bucket]
}

// NewKeyed returns a Keyed applying l per key, tracking at most
// DefaultMaxKeys keys.
func NewKeyed(l Limit) *Keyed {
	return NewKeyedSize(l, DefaultMaxKeys)
}

// NewKeyedSize is NewKeyed with a bound on tracked keys (rounded up to a
// multiple of 64; at least 64).
func NewKeyedSize(l Limit, maxKeys int) *Keyed {
	return &Keyed{
		limit:    l,
		perShard: max(1, (maxKeys+numShards-1)/numShards),
		m:        shard.New[string, Bucket](numShards, xxhash.Sum64String),
	}
}

// Allow takes a token from key's bucket at now (unixnano). O(1); no
// allocation when key is already tracked (one copy of key when it is new:
// key may alias a reused buffer). Safe for concurrent use.
func (k *Keyed) Allow(key string, now int64) bool {
	if k.limit.Unlimited() {
		return true
	}
	s := k.m.Lock(key)
	defer s.Unlock()
	b, ok := s.Get(key)
	if !ok {
		if s.Len() >= k.perShard {
			evict(s, now)
		}
		key = strings.Clone(key)
	}
	allowed := b.Allow(k.limit, now)
	s.Set(key, b)
	return allowed
}

// evict frees one slot: a full bucket among the first evictScan entries
// Go's randomised map iteration visits, else the first one visited.
// Called with s locked.
func evict(s *shard.Shard[string, Bucket], now int64) {
	var victim string
	n := 0
	s.Range(func(key string, b Bucket) bool {
		if b.Full(now) {
			victim = key
			return false
		}
		if n == 0 {
			victim = key
		}
		n++
		return n < evictScan
	})
	s.Delete(victim)
}

// Sweep drops every key whose bucket has refilled by now, so idle keys do
// not pin memory. O(keys); call it from a timer goroutine (every few
// seconds to a minute), not from an event loop. Safe for concurrent use.
func (k *Keyed) Sweep(now int64) {
	k.m.DeleteFunc(func(_ string, b Bucket) bool { return b.Full(now) })
}

// Len returns the number of tracked keys, for metrics. Safe for concurrent
// use.
func (k *Keyed) Len() int { return k.m.Len() }
