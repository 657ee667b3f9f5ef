// Package ring is a bounded lock-free multi-producer multi-consumer queue.
//
// It is Dmitry Vyukov's bounded MPMC array queue: every slot carries a
// sequence number that tells producers and consumers whose turn it is, so a
// push or a pop costs one CAS on the shared position plus one atomic store on
// the slot, and never takes a lock or allocates.
package ring

import (
	"math/bits"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// slot is one cell of the ring. seq == pos means the slot is free for the
// producer of position pos; seq == pos+1 means it holds the value pushed at
// pos, ready for the consumer of pos.
//
// Slots are not padded to a cache line: neighbouring slots are touched by
// successive operations anyway, and padding would multiply the memory of a
// ring of small values by up to 8.
type slot[T any] struct {
	seq atomic.Uint64
	val T
}

// Ring is a bounded FIFO queue safe for any number of concurrent producers and
// consumers. The zero value is not usable; create rings with New.
//
// Ordering: values pushed by one goroutine are popped in push order. With
// several consumers, "popped" means "claimed": two consumers may return their
// values to their callers in either order.
type Ring[T any] struct {
	_     cpu.CacheLinePad
	head  atomic.Uint64 // next position to pop; written by consumers
	_     cpu.CacheLinePad
	tail  atomic.Uint64 // next position to push; written by producers
	_     cpu.CacheLinePad
	mask  uint64    // len(slots)-1; read-only after New
	slots []slot[T] // read-only slice header after New
}

// New returns an empty ring holding up to capacity values, rounded up to a
// power of two. It panics if capacity < 2 or is too large to round.
func New[T any](capacity int) *Ring[T] {
	if capacity < 2 {
		panic("ring: capacity must be at least 2")
	}
	shift := bits.Len(uint(capacity - 1))
	if shift >= bits.UintSize-1 {
		panic("ring: capacity too large")
	}
	size := 1 << shift
	r := &Ring[T]{mask: uint64(size - 1), slots: make([]slot[T], size)}
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

// TryPush appends v and reports true, or reports false without blocking when
// the ring is full. It is safe for concurrent use.
//
// A push may also fail while the oldest value is being popped by a consumer
// that has claimed it but not yet released its slot.
func (r *Ring[T]) TryPush(v T) bool {
	pos := r.tail.Load()
	for {
		s := &r.slots[pos&r.mask]
		seq := s.seq.Load()
		switch dif := int64(seq - pos); {
		case dif == 0:
			if r.tail.CompareAndSwap(pos, pos+1) {
				s.val = v
				s.seq.Store(pos + 1)
				return true
			}
			pos = r.tail.Load()
		case dif < 0:
			return false // the slot still holds the value pushed one lap ago
		default:
			pos = r.tail.Load() // another producer took pos
		}
	}
}

// TryPop removes and returns the oldest value, or reports false without
// blocking when the ring is empty. It is safe for concurrent use. The slot is
// cleared, so the ring keeps no reference to popped values.
func (r *Ring[T]) TryPop() (T, bool) {
	var zero T
	pos := r.head.Load()
	for {
		s := &r.slots[pos&r.mask]
		seq := s.seq.Load()
		switch dif := int64(seq - (pos + 1)); {
		case dif == 0:
			if r.head.CompareAndSwap(pos, pos+1) {
				v := s.val
				s.val = zero
				s.seq.Store(pos + r.mask + 1)
				return v, true
			}
			pos = r.head.Load()
		case dif < 0:
			return zero, false // the value for pos is not pushed yet
		default:
			pos = r.head.Load() // another consumer took pos
		}
	}
}

// PopBatch removes up to len(dst) of the oldest values into dst[:n], in FIFO
// order, and returns n; n is 0 when the ring is empty or dst is. It is safe for
// concurrent use: the values are claimed with a single CAS, so a batch is
// never interleaved with another consumer's pops. Slots are cleared as in
// TryPop. dst is written only in dst[:n].
func (r *Ring[T]) PopBatch(dst []T) int {
	if len(dst) == 0 {
		return 0
	}
	pos := r.head.Load()
	for {
		n := r.ready(pos, len(dst))
		if n == 0 {
			s := &r.slots[pos&r.mask]
			if int64(s.seq.Load()-(pos+1)) < 0 {
				return 0 // empty
			}
			pos = r.head.Load() // another consumer took pos
			continue
		}
		if !r.head.CompareAndSwap(pos, pos+uint64(n)) {
			pos = r.head.Load()
			continue
		}
		r.take(pos, dst[:n])
		return n
	}
}

// ready counts the consecutive values, up to max, pushed and not yet claimed
// from position pos on. The count is a snapshot: the caller must claim the
// positions with a CAS on head before reading them.
func (r *Ring[T]) ready(pos uint64, max int) int {
	n := 0
	for n < max && r.slots[(pos+uint64(n))&r.mask].seq.Load() == pos+uint64(n)+1 {
		n++
	}
	return n
}

// take moves the values at positions pos.. into dst and frees their slots.
// The caller must own the positions (its CAS on head succeeded).
func (r *Ring[T]) take(pos uint64, dst []T) {
	var zero T
	for i := range dst {
		p := pos + uint64(i)
		s := &r.slots[p&r.mask]
		dst[i] = s.val
		s.val = zero
		s.seq.Store(p + r.mask + 1)
	}
}

// Len returns the number of values in the ring. It is safe for concurrent use
// but only approximate while other goroutines push or pop.
func (r *Ring[T]) Len() int {
	head := r.head.Load()
	tail := r.tail.Load()
	if tail <= head {
		return 0
	}
	return int(min(tail-head, r.mask+1))
}

// Cap returns the capacity of the ring, a power of two. It is safe for
// concurrent use.
func (r *Ring[T]) Cap() int {
	return int(r.mask + 1)
}
