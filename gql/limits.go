package gql

import (
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Limits bounds what one client document may ask for. A zero field means the
// default named below; a negative field means unlimited.
//
// All counts are taken on the selected operation with every fragment spread
// expanded where it is used, before @skip/@include are applied:
//   - depth: fields on the longest path from the root; { a { b } } is 2.
//   - aliases: fields written with an alias different from their name.
//   - root fields: fields selected at the root (through fragments).
//   - fragment spreads: named spreads, counted at every expansion.
//   - complexity: each field costs 1 plus the cost of its selection, and
//     that sum is multiplied by 10 for every list level of the field's type;
//     the operation's complexity is the sum over its root fields. So
//     { events { author { name } } } costs 3, and with events: [Event] 30.
//
// The selection of __schema and __type counts only for aliases and
// fragment spreads; it is bounded by the introspection depth rule instead
// (introspect.go).
type Limits struct {
	MaxDocumentBytes, MaxDepth, MaxAliases, MaxRootFields, MaxFragmentSpreads, MaxComplexity int
}

const (
	// DefaultMaxDocumentBytes: real subscription documents are a few hundred
	// bytes; 32 KiB leaves room for generated ones while keeping parsing and
	// the document cache cheap.
	DefaultMaxDocumentBytes = 32 << 10
	// DefaultMaxDepth: event payloads are shallow; 15 allows generous nesting
	// but stops recursion bombs through self-referencing types.
	DefaultMaxDepth = 15
	// DefaultMaxAliases: aliases can multiply the work of one field; 30 is
	// well above hand-written use.
	DefaultMaxAliases = 30
	// DefaultMaxRootFields: a subscription has one root field; queries rarely
	// need more than a handful.
	DefaultMaxRootFields = 10
	// DefaultMaxFragmentSpreads: spreads expand at every use, so they are the
	// lever of exponential documents; 50 covers fragment-heavy clients.
	DefaultMaxFragmentSpreads = 50
	// DefaultMaxComplexity: about 1000 projected fields per event (list
	// fields counted ten times) keeps one event's projection in microseconds.
	DefaultMaxComplexity = 1000
)

// withDefaults replaces zero limits by their defaults.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxDocumentBytes, DefaultMaxDocumentBytes)
	def(&l.MaxDepth, DefaultMaxDepth)
	def(&l.MaxAliases, DefaultMaxAliases)
	def(&l.MaxRootFields, DefaultMaxRootFields)
	def(&l.MaxFragmentSpreads, DefaultMaxFragmentSpreads)
	def(&l.MaxComplexity, DefaultMaxComplexity)
	return l
}

// satMax caps measured counts so that exponential documents cannot overflow.
const satMax = 1 << 40

// sat returns x capped at satMax.
func sat(x int) int {
	return min(x, satMax)
}

// satMul returns a*b capped at satMax, for non-negative a and b.
func satMul(a, b int) int {
	if a != 0 && b > satMax/a {
		return satMax
	}
	return sat(a * b)
}

// measure holds the counts of one selection set.
type measure struct {
	depth, aliases, roots, spreads, cost int
}

// add merges the counts of a fragment selected at the same level.
func (m *measure) add(o measure) {
	m.depth = max(m.depth, o.depth)
	m.aliases = sat(m.aliases + o.aliases)
	m.roots = sat(m.roots + o.roots)
	m.spreads = sat(m.spreads + o.spreads)
	m.cost = sat(m.cost + o.cost)
}

// measurer measures selection sets, each fragment once (memoised), so that
// even exponential documents are measured in linear time.
type measurer struct {
	frags map[string]*ast.FragmentDefinition
	memo  map[string]measure
}

// selectionSet measures ss.
func (m *measurer) selectionSet(ss ast.SelectionSet) measure {
	var r measure
	for _, sel := range ss {
		switch sel := sel.(type) {
		case *ast.Field:
			c := m.selectionSet(sel.SelectionSet)
			if isIntrospectionRoot(sel.Name) {
				// The answer is bounded by the schema, the introspection
				// depth rule and maxIntrospectionBytes (introspect.go),
				// not by depth and complexity: count the field alone.
				c.depth, c.cost = 0, 0
			}
			c.depth++
			c.cost = satMul(listFactor(sel.Definition), c.cost+1)
			c.roots = 1
			if sel.Alias != sel.Name {
				c.aliases++
			}
			r.add(c)
		case *ast.InlineFragment:
			r.add(m.selectionSet(sel.SelectionSet))
		case *ast.FragmentSpread:
			c := m.fragment(sel.Name)
			c.spreads++
			r.add(c)
		}
	}
	return r
}

// fragment measures the named fragment once.
func (m *measurer) fragment(name string) measure {
	if r, ok := m.memo[name]; ok {
		return r
	}
	m.memo[name] = measure{} // breaks cycles (validation rejects them anyway)
	var r measure
	if f := m.frags[name]; f != nil {
		r = m.selectionSet(f.SelectionSet)
	}
	m.memo[name] = r
	return r
}

// listFactor is 10 to the number of list levels of the field's type.
func listFactor(def *ast.FieldDefinition) int {
	f := 1
	if def == nil {
		return f
	}
	for t := def.Type; t != nil && t.Elem != nil; t = t.Elem {
		f = satMul(f, 10)
	}
	return f
}

// check returns an error for every limit op exceeds.
func (l Limits) check(doc *ast.QueryDocument, op *ast.OperationDefinition) gqlerror.List {
	m := measurer{frags: map[string]*ast.FragmentDefinition{}, memo: map[string]measure{}}
	for _, f := range doc.Fragments {
		m.frags[f.Name] = f
	}
	r := m.selectionSet(op.SelectionSet)
	var errs gqlerror.List
	over := func(limit, got int, what string) {
		if limit >= 0 && got > limit {
			errs = append(errs, gqlerror.ErrorPosf(op.Position, "operation %s is %d, more than the limit of %d", what, got, limit))
		}
	}
	over(l.MaxDepth, r.depth, "depth")
	over(l.MaxAliases, r.aliases, "alias count")
	over(l.MaxRootFields, r.roots, "root field count")
	over(l.MaxFragmentSpreads, r.spreads, "fragment spread count")
	over(l.MaxComplexity, r.cost, "complexity")
	if len(errs) == 0 {
		errs = checkIntrospectionDepth(doc, op)
	}
	return errs
}
