package gql

import (
	"runtime"
	"testing"
)

func TestOperationsAreShared(t *testing.T) {
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		const q = `subscription($r: ID!) { messages(room: $r) { seq } }`
		a := mustCompile(t, s, q, `{"r":"x"}`, Env{Roles: []string{"a"}})
		b := mustCompile(t, s, q, `{"r":"x"}`, Env{Roles: []string{"b"}})
		c := mustCompile(t, s, q, `{"r":"y"}`, Env{})
		if a != b {
			t.Error("equal requests compiled to different operations")
		}
		if a == c || a.GroupKey == c.GroupKey {
			t.Error("different requests share an operation")
		}
		if n := s.ops.len(); n != 2 {
			t.Errorf("interner holds %d entries, want 2", n)
		}
	}()
	// Cleanups run after a collection, on another goroutine; give them a
	// bounded number of collections.
	for i := 0; i < 100 && s.ops.len() > 0; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if n := s.ops.len(); n != 0 {
		t.Errorf("interner holds %d entries after the operations died", n)
	}
}

func TestInternComparesIdentity(t *testing.T) {
	in := newInterner()
	a := &Operation{GroupKey: 1, identity: []byte("a")}
	b := &Operation{GroupKey: 1, identity: []byte("b")}
	if in.intern(a) != a || in.intern(b) != b {
		t.Fatal("a colliding key returned another operation")
	}
	if in.intern(&Operation{GroupKey: 1, identity: []byte("b")}) != b {
		t.Fatal("equal identity not shared")
	}
	runtime.KeepAlive(a)
}

// TestInternKeepsCollidingOperations: operations whose keys collide are
// all kept, each found by its own identity, and one dying leaves the
// others in place.
func TestInternKeepsCollidingOperations(t *testing.T) {
	in := newInterner()
	a := &Operation{GroupKey: 1, identity: []byte("a")}
	c := &Operation{GroupKey: 1, identity: []byte("c")}
	in.intern(a)
	func() {
		b := &Operation{GroupKey: 1, identity: []byte("b")}
		if in.intern(b) != b {
			t.Fatal("b not registered")
		}
	}()
	in.intern(c)
	for i := 0; i < 100 && in.len() > 2; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if n := in.len(); n != 2 {
		t.Fatalf("interner holds %d entries after b died, want 2", n)
	}
	for _, op := range []*Operation{a, c} {
		if got := in.intern(&Operation{GroupKey: 1, identity: op.identity}); got != op {
			t.Errorf("identity %q: got another operation", op.identity)
		}
	}
	if n := in.len(); n != 2 {
		t.Fatalf("interner holds %d entries, want 2", n)
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(c)
}
