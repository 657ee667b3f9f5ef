package gql

import (
	"bytes"
	"runtime"
	"sync"
	"weak"
)

// interner makes compilations with the same identity (every input that
// decides an operation's bytes and matches, as hashed into GroupKey) share
// one *Operation, so N subscribers of one group hold one plan instead of N.
// Entries are weak: an operation no subscriber holds is collected and its
// entry removed. Identities are compared in full, so a GroupKey collision
// never shares an operation. It is safe for concurrent use.
type interner struct {
	mu  sync.Mutex
	ops map[uint64]weak.Pointer[Operation]
}

// newInterner returns an empty interner.
func newInterner() *interner {
	return &interner{ops: map[uint64]weak.Pointer[Operation]{}}
}

// intern returns the live operation with op's identity, or registers op.
func (in *interner) intern(op *Operation) *Operation {
	in.mu.Lock()
	defer in.mu.Unlock()
	if wp, ok := in.ops[op.GroupKey]; ok {
		if old := wp.Value(); old != nil && bytes.Equal(old.identity, op.identity) {
			return old
		}
	}
	in.ops[op.GroupKey] = weak.Make(op)
	runtime.AddCleanup(op, in.forget, op.GroupKey)
	return op
}

// forget removes the entry for key once its operation is gone.
func (in *interner) forget(key uint64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if wp, ok := in.ops[key]; ok && wp.Value() == nil {
		delete(in.ops, key)
	}
}

// len returns the number of entries.
func (in *interner) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.ops)
}
