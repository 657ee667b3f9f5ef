package outbox

import "sync"

// Outbound buffers come from size-classed pools so an idle connection holds
// no buffer at all and a busy one reuses the same few. Buffers travel as
// *[]byte so putting one back allocates nothing.
//
// The smallest class fits one typical next frame: a fan-out to tens of
// thousands of connections holds one buffer per connection until the
// batch is flushed, so that first buffer must be small. Larger classes
// serve bursts, growing by 4x.
var bufClasses = [...]int{256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10}

var bufPools [len(bufClasses)]sync.Pool

// getBuf returns a pooled buffer, emptied, with capacity of at least n bytes.
func getBuf(n int) *[]byte {
	for i, size := range bufClasses {
		if n <= size {
			if p, ok := bufPools[i].Get().(*[]byte); ok {
				*p = (*p)[:0]
				return p
			}
			b := make([]byte, 0, size)
			return &b
		}
	}
	b := make([]byte, 0, n)
	return &b
}

// putBuf returns p to the pool of the largest class its buffer can hold;
// buffers smaller than the smallest class or far larger than the largest
// are dropped. The caller must not use p or its buffer afterwards.
func putBuf(p *[]byte) {
	c := cap(*p)
	if c > 2*bufClasses[len(bufClasses)-1] {
		return
	}
	for i := len(bufClasses) - 1; i >= 0; i-- {
		if c >= bufClasses[i] {
			*p = (*p)[:0]
			bufPools[i].Put(p)
			return
		}
	}
}
