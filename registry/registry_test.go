package registry

import (
	"fmt"
	"testing"
)

func TestAddLookupRemove(t *testing.T) {
	r := New[string, int]()
	newGroup := func(s string) func() string { return func() string { return s } }
	a1 := r.Add("orders.1", 1, newGroup("g1"), 10)
	a2 := r.Add("orders.1", 1, newGroup("unused"), 11)
	b1 := r.Add("orders.1", 2, newGroup("g2"), 12)
	c1 := r.Add("orders.2", 1, newGroup("g3"), 13)

	if subs, groups, topics := r.Len(); subs != 4 || groups != 3 || topics != 2 {
		t.Fatalf("Len = %d,%d,%d; want 4,3,2", subs, groups, topics)
	}
	topic := r.Lookup([]byte("orders.1"))
	if topic == nil || len(topic.Groups()) != 2 {
		t.Fatalf("orders.1 groups = %v", topic)
	}
	if g := a1.Group(); g != a2.Group() || g.Data != "g1" || len(g.Subs()) != 2 {
		t.Fatalf("a1 and a2 must share group g1")
	}
	if r.Lookup([]byte("orders.3")) != nil {
		t.Fatal("unknown topic found")
	}

	r.Remove(a1)
	r.Remove(a1) // twice is a no-op
	if got := a2.Group().Subs(); len(got) != 1 || got[0] != a2 || got[0].idx != 0 {
		t.Fatalf("after removing a1, group holds %v", got)
	}
	r.Remove(a2)
	r.Remove(b1)
	if r.Lookup([]byte("orders.1")) != nil {
		t.Fatal("empty topic kept")
	}
	r.Remove(c1)
	if subs, groups, topics := r.Len(); subs != 0 || groups != 0 || topics != 0 {
		t.Fatalf("Len after removing all = %d,%d,%d", subs, groups, topics)
	}
}

func TestManyGroupsIndexed(t *testing.T) {
	r := New[int, int]()
	var subs []*Sub[int, int]
	for i := 0; i < 100; i++ {
		k := uint64(i % 40)
		subs = append(subs, r.Add("t", k, func() int { return int(k) }, i))
	}
	for i, s := range subs {
		if s.Group().Key != uint64(i%40) || s.Group().Data != i%40 {
			t.Fatalf("sub %d in group %d", i, s.Group().Key)
		}
	}
	for _, s := range subs[:60] {
		r.Remove(s)
	}
	topic := r.Lookup([]byte("t"))
	seen := 0
	for _, g := range topic.Groups() {
		seen += len(g.Subs())
		if topic.group(g.Key) != g {
			t.Fatalf("index lost group %d", g.Key)
		}
	}
	if seen != 40 {
		t.Fatalf("%d subscribers left, want 40", seen)
	}
}

// TestTopicHashChain checks topics sharing a hash bucket stay distinct by forcing a collision.
func TestTopicHashChain(t *testing.T) {
	r := New[int, int]()
	a := r.addTopic("a")
	b := &Topic[int, int]{Name: "b", hash: a.hash, next: r.topics[a.hash]}
	r.topics[a.hash] = b
	if r.topic("a") != a {
		t.Fatal("lookup behind a colliding topic failed")
	}
	r.removeTopic(a) // not the head of its chain
	if r.topic("a") != nil || r.topics[a.hash] != b || b.next != nil {
		t.Fatal("removing a chained topic broke the chain")
	}
	r.removeTopic(b)
	if len(r.topics) != 0 {
		t.Fatal("empty chain kept")
	}
}

var sink *Topic[int, int]

func BenchmarkLookup(b *testing.B) {
	r := New[int, int]()
	for i := 0; i < 10000; i++ {
		r.Add(fmt.Sprintf("topic.%d", i), 1, func() int { return 0 }, i)
	}
	name := []byte("topic.4242")
	b.ReportAllocs()
	for b.Loop() {
		sink = r.Lookup(name)
	}
}

// BenchmarkMillionSubs reports the registry's memory per subscription.
func BenchmarkMillionSubs(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r := New[int, int]()
		for i := 0; i < 1_000_000; i++ {
			r.Add("t", uint64(i%100), func() int { return 0 }, i)
		}
	}
}
