package ratelimit

import (
	"strings"
	"sync"
)

// Counter counts concurrent holdings per key (connections per identity,
// subscriptions per identity) against a maximum. A key is tracked only while
// it holds something, so memory is bounded by what is held, which other
// limits bound. Sharded like Keyed. Safe for concurrent use.
type Counter struct {
	max    int
	shards [numShards]counterShard
}

type counterShard struct {
	mu sync.Mutex
	m  map[string]int
	_  [64 - 16]byte // one shard per 64-byte cache line
}

// NewCounter returns a Counter allowing max concurrent holdings per key;
// max <= 0 means unlimited (nothing is counted).
func NewCounter(max int) *Counter {
	c := &Counter{max: max}
	for i := range c.shards {
		c.shards[i].m = make(map[string]int)
	}
	return c
}

// Acquire takes one holding for key and reports whether it was under the
// maximum; on false nothing was taken. Every true must be paired with one
// Release. O(1); no allocation when key already holds something. Safe for
// concurrent use.
func (c *Counter) Acquire(key string) bool {
	if c.max <= 0 {
		return true
	}
	s := &c.shards[shardOf(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.m[key]
	if n >= c.max {
		return false
	}
	if !ok {
		key = strings.Clone(key)
	}
	s.m[key] = n + 1
	return true
}

// Release gives back one holding of key. Releasing a key that holds nothing
// is a no-op. O(1). Safe for concurrent use.
func (c *Counter) Release(key string) {
	if c.max <= 0 {
		return
	}
	s := &c.shards[shardOf(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	switch n := s.m[key]; {
	case n > 1:
		s.m[key] = n - 1
	case n == 1:
		delete(s.m, key)
	}
}

// Count returns key's current holdings, for metrics and tests. Safe for
// concurrent use.
func (c *Counter) Count(key string) int {
	s := &c.shards[shardOf(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}
