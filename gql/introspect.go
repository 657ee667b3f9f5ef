package gql

import (
	"cmp"
	"slices"
	"strings"

	"github.com/fraised/fraised/internal/jsonx"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Introspection (__schema and __type on the query type) runs on the query
// path like any root field with a resolver: the compiled plan selects
// __Schema, __Type, ... fields, the introspector writes the JSON of exactly
// that selection from the loaded schema's AST, and the projector completes
// it through the same plan (coercion, null checks, __typename). Objects of
// the introspection types are written keyed by response key, and the plan
// reads them by response key (field.prop), so two aliases of one field
// with different arguments (fields(includeDeprecated: true) and fields)
// each get their own value.

// IntrospectionDisabledCode is extensions.code of the error a query
// selecting __schema or __type gets when Options.DisableIntrospection is
// set.
const IntrospectionDisabledCode = "INTROSPECTION_DISABLED"

// fraisedDirectives are the directives fraised declares itself; they
// configure the server, not the client's documents, so introspection
// hides them unless Options.IntrospectFraisedDirectives is set.
var fraisedDirectives = map[string]bool{"topic": true, "filter": true, "auth": true, "history": true}

// unsupportedDirectives are declared by gqlparser's prelude but not
// executed by fraised (incremental delivery), so they are never shown.
var unsupportedDirectives = map[string]bool{"defer": true}

// specifiedDirectiveOrder lists the prelude's directives in the order
// graphql-js lists its specified directives.
var specifiedDirectiveOrder = []string{"include", "skip", "deprecated", "specifiedBy", "oneOf"}

// defaultDeprecationReason is @deprecated's default reason argument.
const defaultDeprecationReason = "No longer supported"

// isIntrospectionRoot reports whether name is a root introspection field.
func isIntrospectionRoot(name string) bool {
	return name == "__schema" || name == "__type"
}

// prop returns the property f reads from its parent's JSON value: its
// response key below the introspection types (the introspector writes
// them so), else the field name.
func (f *field) prop() string {
	if strings.HasPrefix(f.parent, "__") {
		return f.respKey
	}
	return f.name
}

// introspectionRoot marks the introspection root field f of a query, or
// records the INTROSPECTION_DISABLED error.
func (c *compiler) introspectionRoot(f *field) {
	if c.s.noIntrospection {
		c.errs = append(c.errs, &gqlerror.Error{
			Message:    "introspection is disabled on this server: " + f.name + " cannot be queried",
			Locations:  f.locs,
			Extensions: map[string]any{"code": IntrospectionDisabledCode},
		})
		return
	}
	f.intro = c.s
}

// introspector writes introspection JSON for one root field. It is used by
// one goroutine during one projection.
type introspector struct {
	s    *Schema
	vars map[string]any // the request's coerced variables, for arguments below the root
	dst  []byte
	max  int  // what is left of maxIntrospectionBytes for this answer
	over bool // dst passed max: stop writing
}

// introspect returns the JSON value of the introspection root field f.
// The introspection roots of one result share maxIntrospectionBytes, so
// aliases of __schema do not multiply it.
func (p *projector) introspect(f *field) (string, error) {
	in := introspector{s: f.intro, vars: f.vars, max: maxIntrospectionBytes - p.intro}
	defer func() { p.intro += len(in.dst) }()
	switch f.name {
	case "__schema":
		in.schema(f)
	case "__type":
		name, _ := f.args["name"].(string)
		if def := in.s.ast.Types[name]; def != nil {
			in.typ(f, typeRef{def: def})
		} else {
			in.null()
		}
	}
	if in.over {
		return "", errIntrospectionTooLarge
	}
	return jsonx.View(in.dst), nil
}

// full reports whether the answer passed its share of
// maxIntrospectionBytes, and marks it so.
func (in *introspector) full() bool {
	if len(in.dst) > in.max {
		in.over = true
	}
	return in.over
}

// typeRef is an introspected __Type: a named definition, or a list or
// non-null wrapper of t.
type typeRef struct {
	def *ast.Definition
	t   *ast.Type
}

// ref returns the typeRef of the type reference t.
func (in *introspector) ref(t *ast.Type) typeRef {
	if t.NonNull || t.Elem != nil {
		return typeRef{t: t}
	}
	return typeRef{def: in.s.ast.Types[t.NamedType]}
}

// inputValue is an argument or an input field.
type inputValue struct {
	name, desc string
	typ        *ast.Type
	def        *ast.Value
	dirs       ast.DirectiveList
}

// object writes the object selected by f, calling member for each of its
// fields other than __typename (which the projector writes).
func (in *introspector) object(f *field, member func(c *field)) {
	in.dst = append(in.dst, '{')
	n := 0
	for _, c := range f.obj.sels[0].fields {
		if c.typename {
			continue
		}
		if in.full() {
			return
		}
		if n > 0 {
			in.dst = append(in.dst, ',')
		}
		n++
		in.dst = append(in.dst, c.key...)
		member(c)
	}
	in.dst = append(in.dst, '}')
}

// list writes a JSON array of n items, calling item for each.
func (in *introspector) list(n int, item func(i int)) {
	in.dst = append(in.dst, '[')
	for i := 0; i < n && !in.full(); i++ {
		if i > 0 {
			in.dst = append(in.dst, ',')
		}
		item(i)
	}
	in.dst = append(in.dst, ']')
}

func (in *introspector) null()           { in.dst = append(in.dst, "null"...) }
func (in *introspector) str(s string)    { in.dst = jsonx.AppendString(in.dst, s) }
func (in *introspector) bool(b bool)     { in.dst = appendBool(in.dst, b) }
func (in *introspector) optStr(s string) { in.optional(s != "", s) }
func (in *introspector) optional(ok bool, s string) {
	if ok {
		in.str(s)
	} else {
		in.null()
	}
}

// appendBool appends true or false.
func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// includeDeprecated evaluates the includeDeprecated argument of c.
func (in *introspector) includeDeprecated(c *field) bool {
	v, _ := c.node.ArgumentMap(in.vars)["includeDeprecated"].(bool)
	return v
}

// schema writes the __Schema selected by f.
func (in *introspector) schema(f *field) {
	sch := in.s.ast
	in.object(f, func(c *field) {
		switch c.name {
		case "description":
			in.optStr(sch.Description)
		case "types":
			types := in.s.introTypeList
			in.list(len(types), func(i int) { in.typ(c, typeRef{def: types[i]}) })
		case "queryType":
			in.typ(c, typeRef{def: sch.Query})
		case "mutationType":
			in.optType(c, sch.Mutation)
		case "subscriptionType":
			in.optType(c, sch.Subscription)
		case "directives":
			dirs := in.s.introDirectiveList
			in.list(len(dirs), func(i int) { in.directive(c, dirs[i]) })
		default:
			in.null()
		}
	})
}

// optType writes def as a __Type, or null.
func (in *introspector) optType(c *field, def *ast.Definition) {
	if def == nil {
		in.null()
		return
	}
	in.typ(c, typeRef{def: def})
}

// typ writes the __Type t selected by f.
func (in *introspector) typ(f *field, t typeRef) {
	in.object(f, func(c *field) {
		if t.def == nil {
			in.wrapper(c, t.t)
			return
		}
		in.named(c, t.def)
	})
}

// wrapper writes field c of a list or non-null __Type.
func (in *introspector) wrapper(c *field, t *ast.Type) {
	switch c.name {
	case "kind":
		if t.NonNull {
			in.str("NON_NULL")
		} else {
			in.str("LIST")
		}
	case "ofType":
		if t.NonNull {
			cp := *t
			cp.NonNull = false
			in.typ(c, in.ref(&cp))
		} else {
			in.typ(c, in.ref(t.Elem))
		}
	default:
		in.null()
	}
}

// named writes field c of the named __Type def.
func (in *introspector) named(c *field, def *ast.Definition) {
	switch c.name {
	case "kind":
		in.str(string(def.Kind))
	case "name":
		in.str(def.Name)
	case "description":
		in.optStr(def.Description)
	case "specifiedByURL":
		in.specifiedBy(def)
	case "fields":
		in.fields(c, def)
	case "interfaces":
		in.interfaces(c, def)
	case "possibleTypes":
		in.possibleTypes(c, def)
	case "enumValues":
		in.enumValues(c, def)
	case "inputFields":
		in.inputFields(c, def)
	case "isOneOf":
		if def.Kind == ast.InputObject {
			in.bool(def.Directives.ForName("oneOf") != nil)
		} else {
			in.null()
		}
	default: // ofType
		in.null()
	}
}

// specifiedBy writes the @specifiedBy URL of a scalar, or null.
func (in *introspector) specifiedBy(def *ast.Definition) {
	d := def.Directives.ForName("specifiedBy")
	if def.Kind != ast.Scalar || d == nil {
		in.null()
		return
	}
	a := d.Arguments.ForName("url")
	in.optional(a != nil && a.Value != nil, argRaw(a))
}

// argRaw returns the raw value of a, "" when absent.
func argRaw(a *ast.Argument) string {
	if a == nil || a.Value == nil {
		return ""
	}
	return a.Value.Raw
}

// fields writes the fields of an object or interface type, or null.
func (in *introspector) fields(c *field, def *ast.Definition) {
	if def.Kind != ast.Object && def.Kind != ast.Interface {
		in.null()
		return
	}
	all := in.includeDeprecated(c)
	var fs []*ast.FieldDefinition
	for _, fd := range def.Fields {
		if !strings.HasPrefix(fd.Name, "__") && (all || !deprecated(fd.Directives)) {
			fs = append(fs, fd)
		}
	}
	in.list(len(fs), func(i int) { in.field(c, fs[i]) })
}

// field writes the __Field fd selected by f.
func (in *introspector) field(f *field, fd *ast.FieldDefinition) {
	in.object(f, func(c *field) {
		switch c.name {
		case "name":
			in.str(fd.Name)
		case "description":
			in.optStr(fd.Description)
		case "args":
			in.args(c, fd.Arguments)
		case "type":
			in.typ(c, in.ref(fd.Type))
		default:
			in.deprecation(c, fd.Directives)
		}
	})
}

// deprecation writes isDeprecated or deprecationReason from dirs.
func (in *introspector) deprecation(c *field, dirs ast.DirectiveList) {
	reason, ok := deprecationReason(dirs)
	switch c.name {
	case "isDeprecated":
		in.bool(ok)
	case "deprecationReason":
		in.optional(ok, reason)
	default:
		in.null()
	}
}

// deprecated reports whether dirs hold @deprecated.
func deprecated(dirs ast.DirectiveList) bool {
	return dirs.ForName("deprecated") != nil
}

// deprecationReason returns the reason of @deprecated in dirs.
func deprecationReason(dirs ast.DirectiveList) (string, bool) {
	d := dirs.ForName("deprecated")
	if d == nil {
		return "", false
	}
	if a := d.Arguments.ForName("reason"); a != nil && a.Value != nil && a.Value.Kind != ast.NullValue {
		return a.Value.Raw, true
	}
	return defaultDeprecationReason, true
}

// args writes the arguments ads selected by c.
func (in *introspector) args(c *field, ads ast.ArgumentDefinitionList) {
	all := in.includeDeprecated(c)
	var vs []inputValue
	for _, ad := range ads {
		if all || !deprecated(ad.Directives) {
			vs = append(vs, inputValue{name: ad.Name, desc: ad.Description, typ: ad.Type, def: ad.DefaultValue, dirs: ad.Directives})
		}
	}
	in.list(len(vs), func(i int) { in.inputValue(c, &vs[i]) })
}

// inputFields writes the fields of an input object type, or null.
func (in *introspector) inputFields(c *field, def *ast.Definition) {
	if def.Kind != ast.InputObject {
		in.null()
		return
	}
	all := in.includeDeprecated(c)
	var vs []inputValue
	for _, fd := range def.Fields {
		if all || !deprecated(fd.Directives) {
			vs = append(vs, inputValue{name: fd.Name, desc: fd.Description, typ: fd.Type, def: fd.DefaultValue, dirs: fd.Directives})
		}
	}
	in.list(len(vs), func(i int) { in.inputValue(c, &vs[i]) })
}

// inputValue writes the __InputValue v selected by f.
func (in *introspector) inputValue(f *field, v *inputValue) {
	in.object(f, func(c *field) {
		switch c.name {
		case "name":
			in.str(v.name)
		case "description":
			in.optStr(v.desc)
		case "type":
			in.typ(c, in.ref(v.typ))
		case "defaultValue":
			if v.def == nil {
				in.null()
			} else {
				in.str(v.def.String())
			}
		default:
			in.deprecation(c, v.dirs)
		}
	})
}

// interfaces writes the interfaces an object or interface implements.
func (in *introspector) interfaces(c *field, def *ast.Definition) {
	if def.Kind != ast.Object && def.Kind != ast.Interface {
		in.null()
		return
	}
	var defs []*ast.Definition
	for _, name := range def.Interfaces {
		if d := in.s.ast.Types[name]; d != nil {
			defs = append(defs, d)
		}
	}
	in.list(len(defs), func(i int) { in.typ(c, typeRef{def: defs[i]}) })
}

// possibleTypes writes the object types of an interface or union.
func (in *introspector) possibleTypes(c *field, def *ast.Definition) {
	if def.Kind != ast.Interface && def.Kind != ast.Union {
		in.null()
		return
	}
	var defs []*ast.Definition
	if def.Kind == ast.Union { // in member order, as the union declares them
		for _, name := range def.Types {
			if d := in.s.ast.Types[name]; d != nil {
				defs = append(defs, d)
			}
		}
	} else {
		for _, pt := range in.s.ast.PossibleTypes[def.Name] {
			if pt.Kind == ast.Object {
				defs = append(defs, pt)
			}
		}
		slices.SortStableFunc(defs, compareDefinitions)
	}
	in.list(len(defs), func(i int) { in.typ(c, typeRef{def: defs[i]}) })
}

// enumValues writes the values of an enum type, or null.
func (in *introspector) enumValues(c *field, def *ast.Definition) {
	if def.Kind != ast.Enum {
		in.null()
		return
	}
	all := in.includeDeprecated(c)
	var vs []*ast.EnumValueDefinition
	for _, v := range def.EnumValues {
		if all || !deprecated(v.Directives) {
			vs = append(vs, v)
		}
	}
	in.list(len(vs), func(i int) {
		v := vs[i]
		in.object(c, func(cc *field) {
			switch cc.name {
			case "name":
				in.str(v.Name)
			case "description":
				in.optStr(v.Description)
			default:
				in.deprecation(cc, v.Directives)
			}
		})
	})
}

// directive writes the __Directive d selected by f.
func (in *introspector) directive(f *field, d *ast.DirectiveDefinition) {
	in.object(f, func(c *field) {
		switch c.name {
		case "name":
			in.str(d.Name)
		case "description":
			in.optStr(d.Description)
		case "isRepeatable":
			in.bool(d.IsRepeatable)
		case "locations":
			in.list(len(d.Locations), func(i int) { in.str(string(d.Locations[i])) })
		case "args":
			in.args(c, d.Arguments)
		default:
			in.null()
		}
	})
}

// introTypes returns the types __schema lists: the built-in ones by name,
// then the schema's in source order (so a client that prints the schema
// prints it in the author's order).
func (s *Schema) introTypes() []*ast.Definition {
	out := make([]*ast.Definition, 0, len(s.ast.Types))
	for _, def := range s.ast.Types {
		out = append(out, def)
	}
	slices.SortFunc(out, compareDefinitions)
	return out
}

// compareDefinitions orders built-in definitions first by name, then the
// others by source position (a definition without one, such as the Query
// type fraised adds, last).
func compareDefinitions(a, b *ast.Definition) int {
	ab, bb := a.BuiltIn || builtInPos(a.Position), b.BuiltIn || builtInPos(b.Position)
	switch {
	case ab != bb:
		if ab {
			return -1
		}
		return 1
	case ab:
		return strings.Compare(a.Name, b.Name)
	}
	return comparePositions(a.Position, b.Position, a.Name, b.Name)
}

// builtInPos reports whether p is in a built-in source.
func builtInPos(p *ast.Position) bool {
	return p != nil && p.Src != nil && p.Src.BuiltIn
}

// comparePositions orders by source position; nil positions last, then
// by name.
func comparePositions(a, b *ast.Position, an, bn string) int {
	switch {
	case a == nil && b == nil:
		return strings.Compare(an, bn)
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	if c := cmp.Compare(a.Start, b.Start); c != 0 {
		return c
	}
	return strings.Compare(an, bn)
}

// introDirectives returns the directives __schema lists: the specified
// ones, then the schema's own in source order; fraised's own only with
// Options.IntrospectFraisedDirectives, and never those fraised does not
// execute.
func (s *Schema) introDirectives() []*ast.DirectiveDefinition {
	var out, user []*ast.DirectiveDefinition
	for _, name := range specifiedDirectiveOrder {
		if d := s.ast.Directives[name]; d != nil {
			out = append(out, d)
		}
	}
	specified := len(out)
	for name, d := range s.ast.Directives {
		switch {
		case slices.Contains(specifiedDirectiveOrder, name), unsupportedDirectives[name]:
		case fraisedDirectives[name] && builtInPos(d.Position):
			if s.showDirectives {
				out = append(out, d)
			}
		default:
			user = append(user, d)
		}
	}
	slices.SortFunc(out[specified:], func(a, b *ast.DirectiveDefinition) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(user, func(a, b *ast.DirectiveDefinition) int {
		return comparePositions(a.Position, b.Position, a.Name, b.Name)
	})
	return append(out, user...)
}

// indexBuiltInEnums records the values of the prelude's enums
// (__TypeKind, __DirectiveLocation), which indexType skips, so that the
// projector can complete introspection answers.
func (s *Schema) indexBuiltInEnums() {
	for name, def := range s.ast.Types {
		if def.BuiltIn && def.Kind == ast.Enum {
			set := make(map[string]struct{}, len(def.EnumValues))
			for _, v := range def.EnumValues {
				set[v.Name] = struct{}{}
			}
			s.enums[name] = set
		}
	}
}
