package ratelimit

import (
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/fraised/fraised/internal/shard"
)

// Counter counts concurrent holdings per key (connections per identity,
// subscriptions per identity) against a maximum. A key is tracked only while
// it holds something, so memory is bounded by what is held, which other
// limits bound. Sharded like Keyed. Safe for concurrent use.
type Counter struct {
	max int
	m   *shard.Map[string, int]
}

// NewCounter returns a Counter allowing max concurrent holdings per key;
// max <= 0 means unlimited (nothing is counted).
func NewCounter(max int) *Counter {
	return &Counter{max: max, m: shard.New[string, int](numShards, xxhash.Sum64String)}
}

// Acquire takes one holding for key and reports whether it was under the
// maximum; on false nothing was taken. Every true must be paired with one
// Release. O(1); no allocation when key already holds something. Safe for
// concurrent use.
func (c *Counter) Acquire(key string) bool {
	if c.max <= 0 {
		return true
	}
	s := c.m.Lock(key)
	defer s.Unlock()
	n, ok := s.Get(key)
	if n >= c.max {
		return false
	}
	if !ok {
		key = strings.Clone(key)
	}
	s.Set(key, n+1)
	return true
}

// Release gives back one holding of key. Releasing a key that holds nothing
// is a no-op. O(1). Safe for concurrent use.
func (c *Counter) Release(key string) {
	if c.max <= 0 {
		return
	}
	s := c.m.Lock(key)
	defer s.Unlock()
	switch n, _ := s.Get(key); {
	case n > 1:
		s.Set(key, n-1)
	case n == 1:
		s.Delete(key)
	}
}

// Count returns key's current holdings, for metrics and tests. Safe for
// concurrent use.
func (c *Counter) Count(key string) int {
	n, _ := c.m.Get(key)
	return n
}
