// Package shard is fraised's one sharded map: a map split over a fixed
// power-of-two number of shards, each a Go map behind its own mutex, so
// goroutines working on different keys (event loops admitting clients,
// compilations, the housekeeper) rarely wait for each other and no lock is
// shared by all of them.
//
// A key's shard is picked by the low bits of a hash the owner supplies:
// xxhash for strings (ratelimit), the key itself when it already is a hash
// (Cache), an address for pointers (the server's connection sets). Map
// offers the single-key operations and whole-map walks that lock for the
// caller; Lock hands out one locked shard for read-modify-write sequences
// and eviction policies of the owner's own. Cache adds entry and cost
// bounds with random eviction on top.
//
// Nothing here allocates on a hit: Get, Set of a present key, Delete and
// the locked-shard operations touch only the shard's map. Keys reach the
// hash through a function value, so the compiler treats them as escaping:
// convert a []byte key to a string once, not once per call.
package shard

import "sync"

// cacheLine is the padding after each shard, so that the lock and map of
// neighbouring shards never share a 64-byte cache line: false sharing
// would make shards contend as if they were one.
const cacheLine = 64

// Map is a map from K to V split over shards. The zero Map is not usable:
// make one with New or Init. Every method is safe for concurrent use.
type Map[K comparable, V any] struct {
	hash   func(K) uint64
	mask   uint64
	shards []Shard[K, V]
}

// Shard is one shard of a Map. Its methods require its lock, taken with
// Map.Lock and released with Unlock.
type Shard[K comparable, V any] struct {
	mu   sync.Mutex
	m    map[K]V
	cost int // Cache: the total cost of the shard's entries
	_    [cacheLine]byte
}

// New returns an empty Map of n shards (rounded up to a power of two, at
// least 1) that puts key k in the shard picked by the low bits of hash(k).
// hash must be fast, safe for concurrent use and spread keys evenly.
func New[K comparable, V any](n int, hash func(K) uint64) *Map[K, V] {
	m := &Map[K, V]{}
	m.Init(n, hash)
	return m
}

// Init makes m, a Map embedded by value, an empty Map as New does. Call it
// once, before m is shared.
func (m *Map[K, V]) Init(n int, hash func(K) uint64) {
	if hash == nil {
		panic("BUG: shard: Map without a hash function")
	}
	size := 1
	for size < n {
		size *= 2
	}
	m.hash, m.mask = hash, uint64(size-1)
	m.shards = make([]Shard[K, V], size)
	for i := range m.shards {
		m.shards[i].m = make(map[K]V)
	}
}

// Shards returns the number of shards.
func (m *Map[K, V]) Shards() int { return len(m.shards) }

// Index returns the number of the shard that holds k, in [0, Shards()).
func (m *Map[K, V]) Index(k K) int { return int(m.hash(k) & m.mask) }

// Lock locks the shard that holds k and returns it; the caller must
// Unlock it and must not lock another shard of m meanwhile.
func (m *Map[K, V]) Lock(k K) *Shard[K, V] {
	s := &m.shards[m.hash(k)&m.mask]
	s.mu.Lock()
	return s
}

// Get returns the value stored under k, if any.
func (m *Map[K, V]) Get(k K) (V, bool) {
	s := m.Lock(k)
	v, ok := s.m[k]
	s.mu.Unlock()
	return v, ok
}

// Set stores v under k, replacing what was there. k is kept: a string key
// that aliases a reused buffer must be cloned first.
func (m *Map[K, V]) Set(k K, v V) {
	s := m.Lock(k)
	s.m[k] = v
	s.mu.Unlock()
}

// Delete removes k, if present.
func (m *Map[K, V]) Delete(k K) {
	s := m.Lock(k)
	delete(s.m, k)
	s.mu.Unlock()
}

// Len returns the number of entries: the sum of each shard's count at the
// moment it was locked, not a snapshot of the whole map.
func (m *Map[K, V]) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Range calls f for the entries of each shard in turn, with that shard
// locked, until f returns false; it reports whether f saw every entry. f
// must not call back into m. Entries added or removed meanwhile in shards
// not yet visited may or may not be seen.
func (m *Map[K, V]) Range(f func(K, V) bool) bool {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		done := s.Range(f)
		s.mu.Unlock()
		if !done {
			return false
		}
	}
	return true
}

// AppendKeys appends the keys of m to dst, one shard at a time.
func (m *Map[K, V]) AppendKeys(dst []K) []K {
	m.Range(func(k K, _ V) bool {
		dst = append(dst, k)
		return true
	})
	return dst
}

// DeleteFunc removes every entry for which f returns true, one shard at a
// time with that shard locked; f must not call back into m.
func (m *Map[K, V]) DeleteFunc(f func(K, V) bool) {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for k, v := range s.m {
			if f(k, v) {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}

// Unlock releases s, locked by Map.Lock.
func (s *Shard[K, V]) Unlock() { s.mu.Unlock() }

// Get returns the value stored under k in s, if any. s must be locked.
func (s *Shard[K, V]) Get(k K) (V, bool) {
	v, ok := s.m[k]
	return v, ok
}

// Set stores v under k in s. k must belong to s (the shard Map.Lock(k)
// returned) and s must be locked.
func (s *Shard[K, V]) Set(k K, v V) { s.m[k] = v }

// Delete removes k from s. s must be locked.
func (s *Shard[K, V]) Delete(k K) { delete(s.m, k) }

// Len returns the number of entries of s. s must be locked.
func (s *Shard[K, V]) Len() int { return len(s.m) }

// Range calls f for the entries of s, in Go's randomised map order, until
// f returns false; it reports whether f saw every entry. s must be locked;
// f may delete the entry it is given.
func (s *Shard[K, V]) Range(f func(K, V) bool) bool {
	for k, v := range s.m {
		if !f(k, v) {
			return false
		}
	}
	return true
}
