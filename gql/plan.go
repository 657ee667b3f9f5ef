package gql

import (
	"log/slog"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// A plan is the compiled form of one operation: the collected root fields
// and, below them, a tree of fields with their response keys pre-encoded.
// Plans are built once by Compile and only read afterwards.

// maxPlanFields bounds the size of one plan whatever the limits say, so an
// exponential document compiled with unlimited limits fails instead of
// exhausting memory.
const maxPlanFields = 10000

// leafKind says how a leaf value is serialised.
type leafKind uint8

const (
	leafNone leafKind = iota // object, interface or union
	leafInt
	leafFloat
	leafString
	leafBoolean
	leafID
	leafEnum
	leafCustom
)

// scalarKind maps a scalar type name to its leaf kind.
func scalarKind(name string) leafKind {
	switch name {
	case "Int":
		return leafInt
	case "Float":
		return leafFloat
	case "String":
		return leafString
	case "Boolean":
		return leafBoolean
	case "ID":
		return leafID
	}
	return leafCustom
}

// field is one collected field (all selections of one response key).
type field struct {
	key      string // `"alias":`
	respKey  string // the response key, for error paths
	name     string // the field name: the event property read
	parent   string // the parent type name, for messages
	typename bool   // __typename
	src      int    // index of name in the enclosing objPlan.names
	typ      *ast.Type
	named    string // the named type at the bottom of typ
	leaf     leafKind
	enum     map[string]struct{}
	obj      *objPlan
	locs     []gqlerror.Location

	// compile time only
	def  *ast.FieldDefinition
	node *ast.Field

	// root fields only
	rkey     string // "Query.serverTime"
	resolver ResolverFunc
	args     map[string]any
	intro    *Schema        // __schema, __type: the schema they describe (introspect.go)
	vars     map[string]any // __schema, __type: the request's variables, for arguments below them
}

// selection is the collected fields of one runtime object type.
type selection struct {
	typeName string // "" for the fallback selection of an abstract type
	typeJSON string // `"TypeName"`
	fields   []*field
	fast     *fastPlan // nil when the selection is not projected in one pass
}

// fastPlan says which fields of a selection read each event property, for
// projecting an object in one pass over its members (fast.go).
type fastPlan struct {
	bySrc     [][]uint8 // per index in objPlan.names: the fields reading it, ascending
	nsrc      int       // how many distinct properties the fields read
	typenames uint32    // bit i: field i is __typename
	nonNull   uint32    // bit i: field i reads a property and is non-null
}

// objPlan is the plan for a value of a composite type.
type objPlan struct {
	name     string   // the static type name
	abstract bool     // interface or union
	names    []string // distinct event properties read by any selection
	typeSrc  int      // index of "__typename" in names; -1 for object types
	sels     []*selection
	fallback *selection // abstract types: used when the type is unknown
	keys     keyIndex   // finds an event key in names
}

// plan is the compiled operation.
type plan struct {
	kind        Kind
	fields      []*field // root fields
	rootJSON    string   // `"Subscription"`, `"Query"`
	filters     []filter
	match       *matchNode // the filter paths as a tree; nil: test each filter alone
	never       bool       // a claim filter without its claim: nothing matches
	hasResolver bool
	// resolverIdentity: a resolver reads the identity (Resolver.Identity);
	// initPayload and claims are set only then.
	resolverIdentity bool
	initPayload      []byte         // for the resolvers that read the identity
	claims           map[string]any // for the resolvers that read the identity
	logger           *slog.Logger
}

// compiler builds a shape, or binds a request to one. It is used by one
// goroutine.
type compiler struct {
	s      *Schema
	doc    *ast.QueryDocument
	op     *ast.OperationDefinition
	vars   map[string]any
	errs   gqlerror.List
	checks []authCheck
	size   int
}

// group is the field nodes sharing one response key.
type group struct {
	key   string
	nodes []*ast.Field
}

// location converts a position to an error location.
func location(p *ast.Position) gqlerror.Location {
	if p == nil {
		return gqlerror.Location{}
	}
	return gqlerror.Location{Line: p.Line, Column: p.Column}
}

// selection collects the fields that sets select on typ and plans them.
// With fallback, typ is abstract and only fragments without a condition or
// on typ itself apply.
func (c *compiler) selection(typ *ast.Definition, fallback bool, sets []ast.SelectionSet) *selection {
	var groups []group
	visited := map[string]bool{}
	for _, ss := range sets {
		c.collect(&groups, typ, fallback, ss, visited)
	}
	sel := &selection{typeJSON: `"` + typ.Name + `"`}
	if !fallback {
		sel.typeName = typ.Name
	}
	for _, g := range groups {
		if f := c.field(typ, g); f != nil {
			sel.fields = append(sel.fields, f)
		}
	}
	return sel
}

// collect implements CollectFields: it appends the fields of ss that apply
// to typ to groups, merging equal response keys in first-seen order.
func (c *compiler) collect(groups *[]group, typ *ast.Definition, fallback bool, ss ast.SelectionSet, visited map[string]bool) {
	for _, sel := range ss {
		switch sel := sel.(type) {
		case *ast.Field:
			if c.included(sel.Directives) {
				addField(groups, sel)
			}
		case *ast.InlineFragment:
			if c.included(sel.Directives) && c.applies(sel.TypeCondition, typ, fallback) {
				c.collect(groups, typ, fallback, sel.SelectionSet, visited)
			}
		case *ast.FragmentSpread:
			if visited[sel.Name] || !c.included(sel.Directives) {
				continue
			}
			visited[sel.Name] = true
			frag := c.doc.Fragments.ForName(sel.Name)
			if frag != nil && c.applies(frag.TypeCondition, typ, fallback) {
				c.collect(groups, typ, fallback, frag.SelectionSet, visited)
			}
		}
	}
}

// addField adds f to the group of its response key.
func addField(groups *[]group, f *ast.Field) {
	key := f.Alias
	for i := range *groups {
		if (*groups)[i].key == key {
			(*groups)[i].nodes = append((*groups)[i].nodes, f)
			return
		}
	}
	*groups = append(*groups, group{key: key, nodes: []*ast.Field{f}})
}

// included evaluates @skip and @include.
func (c *compiler) included(dirs ast.DirectiveList) bool {
	if d := dirs.ForName("skip"); d != nil && c.ifArg(d) {
		return false
	}
	if d := dirs.ForName("include"); d != nil && !c.ifArg(d) {
		return false
	}
	return true
}

// ifArg returns the value of the if: argument of d.
func (c *compiler) ifArg(d *ast.Directive) bool {
	a := d.Arguments.ForName("if")
	return a != nil && ifValue(a.Value, c.vars)
}

// applies reports whether a fragment with type condition cond applies to
// typ (graphql-js doesFragmentConditionMatch).
func (c *compiler) applies(cond string, typ *ast.Definition, fallback bool) bool {
	if cond == "" || cond == typ.Name {
		return true
	}
	if fallback {
		return false
	}
	cd := c.s.ast.Types[cond]
	if cd == nil || (cd.Kind != ast.Interface && cd.Kind != ast.Union) {
		return false
	}
	for _, pt := range c.s.ast.PossibleTypes[cond] {
		if pt.Name == typ.Name {
			return true
		}
	}
	return false
}

// field plans one group of field nodes selected on parent.
func (c *compiler) field(parent *ast.Definition, g group) *field {
	n := g.nodes[0]
	f := &field{key: `"` + g.key + `":`, respKey: g.key, name: n.Name, parent: parent.Name, node: n, src: -1}
	for _, n := range g.nodes {
		f.locs = append(f.locs, location(n.Position))
	}
	if c.size++; c.size > maxPlanFields {
		return nil
	}
	if n.Name == "__typename" {
		f.typename = true
		return f
	}
	def := parent.Fields.ForName(n.Name)
	if def == nil {
		return nil
	}
	f.def, f.typ = def, def.Type
	c.authorize("field \""+parent.Name+"."+def.Name+"\"", c.s.fieldAuth[def], f.locs)
	named := c.s.ast.Types[def.Type.Name()]
	f.named = named.Name
	switch named.Kind {
	case ast.Scalar:
		f.leaf = scalarKind(named.Name)
	case ast.Enum:
		f.leaf, f.enum = leafEnum, c.s.enums[named.Name]
	default:
		var sets []ast.SelectionSet
		for _, n := range g.nodes {
			sets = append(sets, n.SelectionSet)
		}
		f.obj = c.object(named, sets, f.locs)
	}
	return f
}

// object plans a value of the composite type named. For an abstract type it
// plans one selection per possible object type plus the fallback.
func (c *compiler) object(named *ast.Definition, sets []ast.SelectionSet, locs []gqlerror.Location) *objPlan {
	o := &objPlan{name: named.Name, typeSrc: -1}
	if named.Kind == ast.Object {
		c.authorize("type \""+named.Name+"\"", c.s.typeAuth[named.Name], locs)
		o.sels = []*selection{c.selection(named, false, sets)}
		o.index()
		return o
	}
	o.abstract = true
	o.fallback = c.selection(named, true, sets)
	seen := map[string]bool{}
	for _, pt := range c.s.ast.PossibleTypes[named.Name] {
		if pt.Kind != ast.Object || seen[pt.Name] {
			continue
		}
		seen[pt.Name] = true
		c.authorize("type \""+pt.Name+"\"", c.s.typeAuth[pt.Name], locs)
		o.sels = append(o.sels, c.selection(pt, false, sets))
	}
	o.index()
	return o
}

// index lists the event properties the selections read and points each
// field at its property.
func (o *objPlan) index() {
	idx := func(name string) int {
		for i, n := range o.names {
			if n == name {
				return i
			}
		}
		o.names = append(o.names, name)
		return len(o.names) - 1
	}
	all := o.sels
	if o.fallback != nil {
		all = append(all[:len(all):len(all)], o.fallback)
	}
	for _, sel := range all {
		for _, f := range sel.fields {
			if !f.typename {
				f.src = idx(f.prop())
			}
		}
	}
	if o.abstract {
		o.typeSrc = idx("__typename")
	}
	o.keys = newKeyIndex(o.names)
	for _, sel := range all {
		sel.fast = newFastPlan(sel, len(o.names))
	}
}

// newFastPlan indexes the fields of sel by the property they read, or
// returns nil when sel is too large for one pass (fastMaxFields fields,
// 64 properties) or needs a runtime type it cannot know.
func newFastPlan(sel *selection, names int) *fastPlan {
	if len(sel.fields) > fastMaxFields || names > 64 {
		return nil
	}
	fp := &fastPlan{bySrc: make([][]uint8, names)}
	for i, f := range sel.fields {
		switch {
		case f.typename && sel.typeName == "":
			return nil
		case f.typename:
			fp.typenames |= 1 << i
		default:
			if f.typ.NonNull {
				fp.nonNull |= 1 << i
			}
			if fp.bySrc[f.src] == nil {
				fp.nsrc++
			}
			fp.bySrc[f.src] = append(fp.bySrc[f.src], uint8(i))
		}
	}
	return fp
}

// authorize records that what needs every requirement in reqs, for
// shape.authorize to check against each Env. Each thing is recorded once,
// with the locations where it is first reached.
func (c *compiler) authorize(what string, reqs []requirement, locs []gqlerror.Location) {
	if len(reqs) == 0 {
		return
	}
	for i := range c.checks {
		if c.checks[i].what == what {
			return
		}
	}
	c.checks = append(c.checks, authCheck{what: what, reqs: reqs, locs: locs})
}
