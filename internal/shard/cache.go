package shard

// Cache maps 64-bit hashes to values, holding at most a fixed number of
// entries and a fixed total cost (an estimate of the bytes an entry keeps
// alive), both split evenly over its shards; past either bound of a shard
// it evicts random entries of that shard. A hash says nothing certain:
// callers compare the full key kept in the value before using it, and a
// colliding Put replaces the entry. Safe for concurrent use.
type Cache[V any] struct {
	m       Map[uint64, cacheItem[V]]
	maxLen  int // entries per shard
	maxCost int // cost per shard
}

// cacheItem is a value and its cost.
type cacheItem[V any] struct {
	v    V
	cost int
}

// NewCache returns a Cache of n shards (rounded up to a power of two)
// holding at most entries values and a total cost of maxCost. The low bits
// of a hash pick its shard, so hashes must be well mixed (xxhash is).
func NewCache[V any](n, entries, maxCost int) *Cache[V] {
	c := &Cache[V]{}
	c.m.Init(n, func(h uint64) uint64 { return h })
	c.maxLen = max(1, entries/c.m.Shards())
	c.maxCost = max(1, maxCost/c.m.Shards())
	return c
}

// Get returns the value stored under h, if any.
func (c *Cache[V]) Get(h uint64) (V, bool) {
	it, ok := c.m.Get(h)
	return it.v, ok
}

// Put stores v under h, replacing what was there, and evicts random
// entries of h's shard while a bound is exceeded. A value costing more
// than a shard may hold is not stored.
func (c *Cache[V]) Put(h uint64, v V, cost int) {
	if cost > c.maxCost {
		return
	}
	s := c.m.Lock(h)
	defer s.Unlock()
	if old, ok := s.m[h]; ok {
		s.cost -= old.cost
		delete(s.m, h)
	}
	for k, it := range s.m { // map iteration starts at a random entry
		if len(s.m) < c.maxLen && s.cost+cost <= c.maxCost {
			break
		}
		delete(s.m, k)
		s.cost -= it.cost
	}
	s.m[h] = cacheItem[V]{v: v, cost: cost}
	s.cost += cost
}

// Len returns the number of entries.
func (c *Cache[V]) Len() int { return c.m.Len() }
