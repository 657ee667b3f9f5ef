package gql

import (
	"bytes"
	"runtime"
	"sync"
	"weak"
)

// interner makes compilations with the same identity (every input that
// decides an operation's matches and bytes, request.go) share one
// *Operation, so N subscribers of one group hold one plan instead of N.
// Operations are found by GroupKey and compared by identity in full: a key
// may hold several operations (a collision, by chance or forged), and
// never shares one across identities. Entries are weak: an operation no
// subscriber holds is collected and its entry removed. It is safe for
// concurrent use.
type interner struct {
	mu  sync.Mutex
	ops map[uint64][]weak.Pointer[Operation] // by GroupKey; almost always one each
	n   int                                  // entries across all keys
}

// newInterner returns an empty interner.
func newInterner() *interner {
	return &interner{ops: map[uint64][]weak.Pointer[Operation]{}}
}

// intern returns the live operation with op's identity, or registers op.
func (in *interner) intern(op *Operation) *Operation {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, wp := range in.ops[op.GroupKey] {
		if old := wp.Value(); old != nil && bytes.Equal(old.identity, op.identity) {
			return old
		}
	}
	in.ops[op.GroupKey] = append(in.ops[op.GroupKey], weak.Make(op))
	in.n++
	runtime.AddCleanup(op, in.forget, op.GroupKey)
	return op
}

// forget removes the dead entries of key once one of its operations is
// gone.
func (in *interner) forget(key uint64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	live := in.ops[key][:0]
	for _, wp := range in.ops[key] {
		if wp.Value() != nil {
			live = append(live, wp)
		}
	}
	in.n -= len(in.ops[key]) - len(live)
	clear(in.ops[key][len(live):])
	if len(live) == 0 {
		delete(in.ops, key)
		return
	}
	in.ops[key] = live
}

// len returns the number of entries.
func (in *interner) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.n
}
