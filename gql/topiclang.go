package gql

import (
	"github.com/vektah/gqlparser/v2/ast"
)

// The topics a subscription field can subscribe to, as a nondeterministic
// automaton over bytes: literals are chains of single bytes, and each
// {arg} hole is the language of the strings topicValue can make of the
// argument's coerced value. Where a language is not known exactly it is
// over-approximated, never under: refusing a safe schema is a usability
// bug, accepting an unsafe one a security bug.

// byteSet is a set of bytes.
type byteSet [4]uint64

// add puts c in the set.
func (s *byteSet) add(c byte) { s[c>>6] |= 1 << (c & 63) }

// addRange puts lo..hi (inclusive) in the set.
func (s *byteSet) addRange(lo, hi byte) {
	for c := int(lo); c <= int(hi); c++ {
		s.add(byte(c))
	}
}

// has reports whether c is in the set.
func (s *byteSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }

// and returns the intersection of s and t.
func (s *byteSet) and(t *byteSet) byteSet {
	return byteSet{s[0] & t[0], s[1] & t[1], s[2] & t[2], s[3] & t[3]}
}

// empty reports whether the set has no byte.
func (s *byteSet) empty() bool { return s[0]|s[1]|s[2]|s[3] == 0 }

// witnessOrder lists the bytes an example topic is preferably made of, so
// that errors show readable topics.
const witnessOrder = "abcdefghijklmnopqrstuvwxyz0123456789.-_"

// pick returns a byte of the non-empty set, readable where possible.
func (s *byteSet) pick() byte {
	for i := 0; i < len(witnessOrder); i++ {
		if s.has(witnessOrder[i]) {
			return witnessOrder[i]
		}
	}
	for c := '!'; c <= '~'; c++ {
		if s.has(byte(c)) {
			return byte(c)
		}
	}
	for c := 0; c < 256; c++ {
		if s.has(byte(c)) {
			return byte(c)
		}
	}
	panic("BUG: pick on an empty byteSet")
}

// Byte classes of the hole languages.
var (
	anyByte    = byteSet{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	digits     = rangeSet('0', '9')
	nonZero    = rangeSet('1', '9')
	floatBytes = func() byteSet { // jsonx.AppendJSNumber writes -, digits, '.', 'e', '+'
		s := digits
		for _, c := range "-.e+" {
			s.add(byte(c))
		}
		return s
	}()
)

// rangeSet returns the set lo..hi.
func rangeSet(lo, hi byte) byteSet {
	var s byteSet
	s.addRange(lo, hi)
	return s
}

// single returns the set {c}.
func single(c byte) byteSet {
	var s byteSet
	s.add(c)
	return s
}

// nfaEdge reads one byte of on and moves to state to.
type nfaEdge struct {
	on byteSet
	to int
}

// topicNFA is an automaton with epsilon moves; state 0 starts, final
// accepts.
type topicNFA struct {
	edges [][]nfaEdge
	eps   [][]int
	final int
}

// state adds a state and returns it.
func (n *topicNFA) state() int {
	n.edges = append(n.edges, nil)
	n.eps = append(n.eps, nil)
	return len(n.edges) - 1
}

// edge adds a move from from to to on a byte of on.
func (n *topicNFA) edge(from, to int, on byteSet) {
	n.edges[from] = append(n.edges[from], nfaEdge{on: on, to: to})
}

// word adds a chain reading w from from and returns its last state.
func (n *topicNFA) word(from int, w string) int {
	for i := 0; i < len(w); i++ {
		next := n.state()
		n.edge(from, next, single(w[i]))
		from = next
	}
	return from
}

// topicLang builds the automaton of the topics subscription field f with
// template parts can subscribe to.
func (s *Schema) topicLang(f *ast.FieldDefinition, parts []topicPart) *topicNFA {
	n := &topicNFA{}
	cur := n.state()
	for _, p := range parts {
		if p.arg == "" {
			cur = n.word(cur, p.lit)
			continue
		}
		cur = s.hole(n, cur, f.Arguments.ForName(p.arg))
	}
	n.final = cur
	return n
}

// hole adds the language of argument a's topic values after state from
// and returns the state that ends it.
func (s *Schema) hole(n *topicNFA, from int, a *ast.ArgumentDefinition) int {
	var def *ast.Definition
	if a != nil && a.Type.Elem == nil {
		def = s.ast.Types[a.Type.NamedType]
	}
	switch {
	case def != nil && def.Kind == ast.Enum:
		words := make([]string, len(def.EnumValues))
		for i, v := range def.EnumValues {
			words[i] = v.Name
		}
		return n.words(from, words)
	case def != nil && def.Name == "Boolean":
		return n.words(from, []string{"true", "false"})
	case def != nil && def.Name == "Int":
		return n.integer(from)
	case def != nil && def.Name == "Float":
		end := n.state() // a superset: non-empty strings of floatBytes
		n.edge(from, end, floatBytes)
		n.edge(end, end, floatBytes)
		return end
	}
	// String, ID and custom scalars (whose JSON value topicValue prints
	// as it comes): any string, the empty one included, since an empty
	// argument is accepted and only an empty whole topic is not.
	end := n.state()
	n.eps[from] = append(n.eps[from], end)
	n.edge(end, end, anyByte)
	return end
}

// words adds the alternatives ws after from and returns their end.
func (n *topicNFA) words(from int, ws []string) int {
	end := n.state()
	for _, w := range ws {
		last := n.word(from, w)
		n.eps[last] = append(n.eps[last], end)
	}
	return end
}

// integer adds strconv.FormatInt's language, "0" or -?[1-9][0-9]*, after
// from and returns its end.
func (n *topicNFA) integer(from int) int {
	end, minus, more := n.state(), n.state(), n.state()
	n.edge(from, end, single('0'))
	n.edge(from, minus, single('-'))
	n.edge(from, more, nonZero)
	n.edge(minus, more, nonZero)
	n.edge(more, more, digits)
	n.eps[more] = append(n.eps[more], end)
	return end
}

// intersect reports whether a and b accept a common non-empty topic (the
// server refuses to publish to an empty one) and returns the shortest such
// topic found by a breadth-first search of the product automaton.
func intersect(a, b *topicNFA) (string, bool) {
	var sc productScratch
	return sc.intersect(a, b)
}

// productNode is a state of the product automaton: a state of each side,
// and whether a byte was read yet.
type productNode struct{ p, q, full int }

// productScratch holds intersect's buffers, reused from pair to pair.
type productScratch struct {
	prev  []int   // index of the parent + 1; 0 = unseen, -1 = the start
	via   []int16 // byte read from the parent, -1 for an epsilon move
	queue []productNode
}

// intersect is the function intersect with the buffers of sc.
func (sc *productScratch) intersect(a, b *topicNFA) (string, bool) {
	nb := len(b.edges)
	index := func(x productNode) int { return (x.p*nb+x.q)*2 + x.full }
	size := len(a.edges) * nb * 2
	if cap(sc.prev) < size {
		sc.prev, sc.via = make([]int, size), make([]int16, size)
	}
	prev, via := sc.prev[:size], sc.via[:size]
	clear(prev)
	start := productNode{}
	prev[index(start)] = -1
	queue := append(sc.queue[:0], start)
	defer func() { sc.queue = queue[:0] }()
	visit := func(from, to productNode, c int16) {
		if i := index(to); prev[i] == 0 {
			prev[i], via[i] = index(from)+1, c
			queue = append(queue, to)
		}
	}
	for head := 0; head < len(queue); head++ {
		x := queue[head]
		if x.full == 1 && x.p == a.final && x.q == b.final {
			return witness(prev, via, index(x)), true
		}
		for _, p := range a.eps[x.p] {
			visit(x, productNode{p, x.q, x.full}, -1)
		}
		for _, q := range b.eps[x.q] {
			visit(x, productNode{x.p, q, x.full}, -1)
		}
		for _, ea := range a.edges[x.p] {
			for _, eb := range b.edges[x.q] {
				if on := ea.on.and(&eb.on); !on.empty() {
					visit(x, productNode{ea.to, eb.to, 1}, int16(on.pick()))
				}
			}
		}
	}
	return "", false
}

// literalsDisjoint reports whether two templates cannot meet because
// their literal prefixes or suffixes differ: a quick test before the
// product search, which most pairs of a real schema never need.
func literalsDisjoint(a, b []topicPart) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	differ := func(x, y string, fromEnd bool) bool {
		n := min(len(x), len(y))
		if fromEnd {
			return x[len(x)-n:] != y[len(y)-n:]
		}
		return x[:n] != y[:n]
	}
	if a[0].arg == "" && b[0].arg == "" && differ(a[0].lit, b[0].lit, false) {
		return true
	}
	la, lb := a[len(a)-1], b[len(b)-1]
	return la.arg == "" && lb.arg == "" && differ(la.lit, lb.lit, true)
}

// witness reads the topic spelled on the path from the start to node i.
func witness(prev []int, via []int16, i int) string {
	var rev []byte
	for prev[i] > 0 {
		if via[i] >= 0 {
			rev = append(rev, byte(via[i]))
		}
		i = prev[i] - 1
	}
	for l, r := 0, len(rev)-1; l < r; l, r = l+1, r-1 {
		rev[l], rev[r] = rev[r], rev[l]
	}
	return string(rev)
}
