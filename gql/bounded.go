package gql

import "sync"

// boundedShards is the number of independently locked shards of a
// boundedCache: compilations on different event loops rarely wait for
// each other.
const boundedShards = 16

// boundedCache maps 64-bit hashes to values, holding at most a fixed
// number of entries and a fixed total cost (an estimate of the bytes an
// entry keeps alive); past either bound it evicts random entries of the
// shard. A hash says nothing certain: callers compare the full key kept in
// the value before using it, and a colliding put replaces the entry. It is
// safe for concurrent use.
type boundedCache[V any] struct {
	shards [boundedShards]boundedShard[V]
}

// boundedShard is one shard of a boundedCache.
type boundedShard[V any] struct {
	mu       sync.Mutex
	m        map[uint64]boundedItem[V]
	cost     int
	maxLen   int
	maxCost  int
	_padding [32]byte // keeps the locks of neighbouring shards apart
}

// boundedItem is a value and its cost.
type boundedItem[V any] struct {
	v    V
	cost int
}

// newBoundedCache returns a cache of at most entries values and total cost
// maxCost.
func newBoundedCache[V any](entries, maxCost int) *boundedCache[V] {
	c := &boundedCache[V]{}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.m = map[uint64]boundedItem[V]{}
		sh.maxLen = max(1, entries/boundedShards)
		sh.maxCost = max(1, maxCost/boundedShards)
	}
	return c
}

// shard returns the shard of hash h.
func (c *boundedCache[V]) shard(h uint64) *boundedShard[V] {
	return &c.shards[h>>60]
}

// get returns the value stored under h, if any.
func (c *boundedCache[V]) get(h uint64) (V, bool) {
	sh := c.shard(h)
	sh.mu.Lock()
	it, ok := sh.m[h]
	sh.mu.Unlock()
	return it.v, ok
}

// put stores v under h, replacing what was there, and evicts random
// entries of the shard while a bound is exceeded. A value costing more
// than a shard may hold is not stored.
func (c *boundedCache[V]) put(h uint64, v V, cost int) {
	sh := c.shard(h)
	if cost > sh.maxCost {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.m[h]; ok {
		sh.cost -= old.cost
		delete(sh.m, h)
	}
	for k, it := range sh.m { // map iteration starts at a random entry
		if len(sh.m) < sh.maxLen && sh.cost+cost <= sh.maxCost {
			break
		}
		delete(sh.m, k)
		sh.cost -= it.cost
	}
	sh.m[h] = boundedItem[V]{v: v, cost: cost}
	sh.cost += cost
}

// len returns the number of entries.
func (c *boundedCache[V]) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
