// Package registry maps topics to subscription groups and groups to their
// subscribers.
//
// A group is the set of subscriptions that produce identical bytes for
// every event (same topic, document, variables and filter values), so the
// dispatcher projects and encodes each event once per group and only
// splices in each subscriber's id. Topics are keyed on a hash of their
// name seeded per registry (hash/maphash), so clients who choose topic
// names cannot build long chains of colliding ones, and compared by name.
// Groups are found by a 64-bit key, but a key only names candidates: a
// subscription joins a group only when the caller's equality check on the
// group's data says it belongs there, so two groups may share a key (a
// collision, chance or forged) and stay apart.
//
// A Registry is owned by one goroutine (the dispatcher): it takes no locks
// and is not safe for concurrent use. Other goroutines hand it changes
// through the dispatcher's control queue, which is what keeps the delivery
// path free of locks.
package registry

import (
	"hash/maphash"
	"unsafe"
)

// Registry holds topics, their groups and their subscribers. The zero
// value is not usable; call New. G is the group's shared data (the compiled
// operation), S a subscriber's data.
type Registry[G, S any] struct {
	seed   maphash.Seed // random: topic hashes cannot be predicted
	topics map[uint64]*Topic[G, S]
	subs   int
	groups int
}

// Topic is one topic with at least one group.
type Topic[G, S any] struct {
	Name   string
	hash   uint64
	next   *Topic[G, S] // next topic with the same hash
	groups []*Group[G, S]
	byKey  map[uint64]*Group[G, S] // built once a topic has many groups; heads of sameKey chains
}

// groupIndexAt is the group count from which a topic indexes its groups
// by key instead of scanning them.
const groupIndexAt = 16

// Group is a set of subscriptions of a topic that share a key and that
// the equality check given to Add put together.
type Group[G, S any] struct {
	Key     uint64
	Data    G
	topic   *Topic[G, S]
	sameKey *Group[G, S] // next group of the topic with this key, when indexed
	subs    []*Sub[G, S]
	idx     int32 // position in topic.groups
}

// Sub is one subscription. Its handle stays valid until Remove.
type Sub[G, S any] struct {
	Data  S
	group *Group[G, S]
	idx   int32 // position in group.subs
}

// New returns an empty registry.
func New[G, S any]() *Registry[G, S] {
	return &Registry[G, S]{seed: maphash.MakeSeed(), topics: make(map[uint64]*Topic[G, S])}
}

// Add subscribes data to topic in the group with key whose data same
// accepts, creating the topic and the group as needed; newGroup is called
// only when no group is accepted and supplies the new group's shared data.
// The key only narrows the search: same is called on every group of the
// topic with that key and decides, so it must compare everything that
// makes members interchangeable. Neither function is kept.
func (r *Registry[G, S]) Add(topic string, key uint64, same func(G) bool, newGroup func() G, data S) *Sub[G, S] {
	t := r.topic(topic)
	if t == nil {
		t = r.addTopic(topic)
	}
	g := t.group(key, same)
	if g == nil {
		g = &Group[G, S]{Key: key, Data: newGroup(), topic: t, idx: int32(len(t.groups))}
		t.addGroup(g)
		r.groups++
	}
	s := &Sub[G, S]{Data: data, group: g, idx: int32(len(g.subs))}
	g.subs = append(g.subs, s)
	r.subs++
	return s
}

// Remove unsubscribes s, dropping its group and topic when they empty;
// it reports whether the topic went with it (its last subscriber left).
// Removing a handle twice is a no-op.
func (r *Registry[G, S]) Remove(s *Sub[G, S]) (topicGone bool) {
	g := s.group
	if g == nil {
		return false
	}
	s.group = nil
	last := g.subs[len(g.subs)-1]
	g.subs[s.idx] = last
	last.idx = s.idx
	g.subs[len(g.subs)-1] = nil
	g.subs = g.subs[:len(g.subs)-1]
	r.subs--
	if len(g.subs) == 0 {
		return r.removeGroup(g)
	}
	return false
}

// removeGroup drops an empty group; it reports whether its topic emptied
// and went too.
func (r *Registry[G, S]) removeGroup(g *Group[G, S]) bool {
	t := g.topic
	last := t.groups[len(t.groups)-1]
	t.groups[g.idx] = last
	last.idx = g.idx
	t.groups[len(t.groups)-1] = nil
	t.groups = t.groups[:len(t.groups)-1]
	if t.byKey != nil {
		t.unindex(g)
	}
	r.groups--
	if len(t.groups) == 0 {
		r.removeTopic(t)
		return true
	}
	return false
}

// Has reports whether topic has at least one subscriber. It does not
// allocate.
func (r *Registry[G, S]) Has(topic string) bool { return r.topic(topic) != nil }

// Lookup returns the topic named name, or nil. It does not allocate.
func (r *Registry[G, S]) Lookup(name []byte) *Topic[G, S] {
	return r.topic(unsafe.String(unsafe.SliceData(name), len(name)))
}

func (r *Registry[G, S]) topic(name string) *Topic[G, S] {
	for t := r.topics[maphash.String(r.seed, name)]; t != nil; t = t.next {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (r *Registry[G, S]) addTopic(name string) *Topic[G, S] {
	h := maphash.String(r.seed, name)
	t := &Topic[G, S]{Name: name, hash: h, next: r.topics[h]}
	r.topics[h] = t
	return t
}

func (r *Registry[G, S]) removeTopic(t *Topic[G, S]) {
	head := r.topics[t.hash]
	if head == t {
		if t.next == nil {
			delete(r.topics, t.hash)
		} else {
			r.topics[t.hash] = t.next
		}
		return
	}
	for p := head; p != nil; p = p.next {
		if p.next == t {
			p.next = t.next
			return
		}
	}
}

// Len returns the number of subscriptions, groups and topics.
func (r *Registry[G, S]) Len() (subs, groups, topics int) {
	return r.subs, r.groups, len(r.topics)
}

func (t *Topic[G, S]) addGroup(g *Group[G, S]) {
	t.groups = append(t.groups, g)
	switch {
	case t.byKey != nil:
		t.index(g)
	case len(t.groups) >= groupIndexAt:
		t.byKey = make(map[uint64]*Group[G, S], len(t.groups))
		for _, g := range t.groups {
			t.index(g)
		}
	}
}

// index puts g at the head of the chain of its key.
func (t *Topic[G, S]) index(g *Group[G, S]) {
	g.sameKey = t.byKey[g.Key]
	t.byKey[g.Key] = g
}

// unindex takes g out of the chain of its key.
func (t *Topic[G, S]) unindex(g *Group[G, S]) {
	head := t.byKey[g.Key]
	switch {
	case head == g && g.sameKey == nil:
		delete(t.byKey, g.Key)
	case head == g:
		t.byKey[g.Key] = g.sameKey
	default:
		for p := head; p != nil; p = p.sameKey {
			if p.sameKey == g {
				p.sameKey = g.sameKey
				break
			}
		}
	}
	g.sameKey = nil
}

// group returns the group with key whose data same accepts, or nil.
func (t *Topic[G, S]) group(key uint64, same func(G) bool) *Group[G, S] {
	if t.byKey != nil {
		for g := t.byKey[key]; g != nil; g = g.sameKey {
			if same(g.Data) {
				return g
			}
		}
		return nil
	}
	for _, g := range t.groups {
		if g.Key == key && same(g.Data) {
			return g
		}
	}
	return nil
}

// Groups returns the topic's groups. The slice is valid until the next
// Add or Remove.
func (t *Topic[G, S]) Groups() []*Group[G, S] { return t.groups }

// Subs returns the group's subscribers. The slice is valid until the next
// Add or Remove.
func (g *Group[G, S]) Subs() []*Sub[G, S] { return g.subs }

// Topic returns the name of the group's topic.
func (g *Group[G, S]) Topic() string { return g.topic.Name }

// Group returns the group s belongs to, or nil after Remove.
func (s *Sub[G, S]) Group() *Group[G, S] { return s.group }
