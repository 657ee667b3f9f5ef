package registry

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// is returns an Add equality check accepting groups whose data is v, and
// the constructor of such a group.
func is[G comparable](v G) (same func(G) bool, newGroup func() G) {
	return func(g G) bool { return g == v }, func() G { return v }
}

// add adds data to topic in the group of key holding v.
func add[G comparable, S any](r *Registry[G, S], topic string, key uint64, v G, data S) *Sub[G, S] {
	same, newGroup := is(v)
	return r.Add(topic, key, same, newGroup, data)
}

func TestAddLookupRemove(t *testing.T) {
	r := New[string, int]()
	a1 := add(r, "orders.1", 1, "g1", 10)
	a2 := r.Add("orders.1", 1, func(string) bool { return true }, func() string { return "unused" }, 11)
	b1 := add(r, "orders.1", 2, "g2", 12)
	c1 := add(r, "orders.2", 1, "g3", 13)

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
		subs = append(subs, add(r, "t", k, int(k), i))
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
		if topic.group(g.Key, func(d int) bool { return d == g.Data }) != g {
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

// TestEqualKeysStayApart: groups whose keys collide are told apart by the
// equality check alone, whether the topic scans its groups or indexes
// them, and removing any of them leaves the others findable.
func TestEqualKeysStayApart(t *testing.T) {
	for _, n := range []int{3, groupIndexAt - 1, groupIndexAt, 3 * groupIndexAt} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			r := New[string, int]()
			var subs []*Sub[string, int]
			for i := 0; i < 2*n; i++ {
				subs = append(subs, add(r, "t", 7, "g"+strconv.Itoa(i%n), i))
			}
			if _, groups, _ := r.Len(); groups != n {
				t.Fatalf("%d groups, want %d", groups, n)
			}
			for i, s := range subs {
				if want := "g" + strconv.Itoa(i%n); s.Group().Data != want || len(s.Group().Subs()) != 2 {
					t.Fatalf("sub %d in group %q of %d, want %q of 2", i, s.Group().Data, len(s.Group().Subs()), want)
				}
			}
			for i := 0; i < n; i += 2 { // every other group, head and middle of the chain alike
				r.Remove(subs[i])
				r.Remove(subs[i+n])
			}
			for i := 1; i < n; i += 2 {
				s := add(r, "t", 7, "g"+strconv.Itoa(i), -i)
				if s.Group() != subs[i].Group() || len(s.Group().Subs()) != 3 {
					t.Fatalf("g%d not found again after its neighbours left", i)
				}
			}
			if _, groups, _ := r.Len(); groups != n/2 {
				t.Fatalf("%d groups, want %d", groups, n/2)
			}
		})
	}
}

// TestRegistryModel applies random adds and removes with few keys, so
// that most keys are shared by several groups, and checks every
// subscriber against a model after each step.
func TestRegistryModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := New[int, int]()
	type live struct {
		s    *Sub[int, int]
		data int
	}
	var subs []live
	for step := 0; step < 5000; step++ {
		if len(subs) > 0 && rng.IntN(5) < 2 {
			i := rng.IntN(len(subs))
			r.Remove(subs[i].s)
			subs[i] = subs[len(subs)-1]
			subs = subs[:len(subs)-1]
		} else {
			d := rng.IntN(3 * groupIndexAt) // group data
			subs = append(subs, live{add(r, "t", uint64(d%3), d, step), d})
		}
		byData := map[int]*Group[int, int]{}
		for _, l := range subs {
			g := l.s.Group()
			if g == nil || g.Data != l.data || g.Key != uint64(l.data%3) {
				t.Fatalf("step %d: sub of %d in group %v", step, l.data, g)
			}
			if prev, ok := byData[l.data]; ok && prev != g {
				t.Fatalf("step %d: two groups hold data %d", step, l.data)
			}
			byData[l.data] = g
		}
		if n, groups, _ := r.Len(); n != len(subs) || groups != len(byData) {
			t.Fatalf("step %d: Len %d subs %d groups, want %d %d", step, n, groups, len(subs), len(byData))
		}
	}
}

var sink *Topic[int, int]

func BenchmarkLookup(b *testing.B) {
	r := New[int, int]()
	for i := 0; i < 10000; i++ {
		add(r, fmt.Sprintf("topic.%d", i), 1, 0, i)
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
			add(r, "t", uint64(i%100), i%100, i)
		}
	}
}

// BenchmarkRegistryAdd adds a subscriber to an existing group of a topic
// with groups groups and removes it again.
func BenchmarkRegistryAdd(b *testing.B) {
	for _, groups := range []int{4, 64} {
		b.Run("groups="+strconv.Itoa(groups), func(b *testing.B) {
			r := New[*string, int]()
			data := make([]*string, groups)
			for g := range data {
				s := strconv.Itoa(g)
				data[g] = &s
				add(r, "t", uint64(g), data[g], -1)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				g := i % groups
				d := data[g]
				r.Remove(r.Add("t", uint64(g), func(x *string) bool { return x == d }, func() *string { return d }, i))
				i++
			}
		})
	}
}

// TestRemoveReportsTopicGone pins what the dispatcher's interest hook
// relies on: Remove reports true exactly when the topic's last subscriber
// leaves, and Has follows.
func TestRemoveReportsTopicGone(t *testing.T) {
	r := New[string, int]()
	if r.Has("t") {
		t.Fatal("Has on an empty registry")
	}
	a := add(r, "t", 1, "g1", 1)
	b := add(r, "t", 2, "g2", 2)
	c := add(r, "t", 2, "g2", 3)
	if !r.Has("t") {
		t.Fatal("Has after Add = false")
	}
	if r.Remove(a) || r.Remove(b) {
		t.Fatal("Remove reported the topic gone while subscribers remain")
	}
	if r.Remove(b) {
		t.Fatal("second Remove of a handle reported the topic gone")
	}
	if !r.Remove(c) {
		t.Fatal("Remove of the last subscriber did not report the topic gone")
	}
	if r.Has("t") {
		t.Fatal("Has after the last Remove = true")
	}
}
