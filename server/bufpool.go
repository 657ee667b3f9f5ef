package server

import "sync"

// Outbound buffers come from size-classed pools so an idle connection holds
// no buffer at all and a busy one reuses the same few.
var bufClasses = [...]int{4 << 10, 16 << 10, 64 << 10, 256 << 10}

var bufPools [len(bufClasses)]sync.Pool

// getBuf returns an empty buffer with capacity of at least n bytes.
func getBuf(n int) []byte {
	for i, size := range bufClasses {
		if n <= size {
			if p, ok := bufPools[i].Get().(*[]byte); ok {
				return (*p)[:0]
			}
			return make([]byte, 0, size)
		}
	}
	return make([]byte, 0, n)
}

// putBuf returns b to the pool of the largest class it can hold; buffers
// smaller than the smallest class or larger than the largest are dropped.
// The caller must not use b afterwards.
func putBuf(b []byte) {
	c := cap(b)
	for i := len(bufClasses) - 1; i >= 0; i-- {
		if c >= bufClasses[i] {
			if c > 2*bufClasses[len(bufClasses)-1] {
				return
			}
			b = b[:0]
			bufPools[i].Put(&b)
			return
		}
	}
}
