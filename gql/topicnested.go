package gql

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Nested guards. @auth on a field or object type below a field's return
// type guards that part of each event: Order.customerEmail
// @auth(requires: ["scope:pii"]) keeps the "customerEmail" property from
// tokens without the scope. A second field on the same topic that returns
// another type reads the same property through its own fields, under its
// own guards. So for two fields that can subscribe to a common topic, the
// check walks both return types side by side, property by property (a
// field reads the event property of its name; list levels are
// transparent), and refuses the schema where one field reads a property
// with fewer guards than the other puts on it. Where a type is abstract,
// every member is compared with every member, and a leaf (a custom scalar
// such as JSON) facing an object exposes everything below it: both over-
// approximate, in the safe direction.

// exposure is a property one field reads with fewer guards than another.
type exposure struct {
	path    string  // "author.email"
	reader  string  // the field that reads it: "OrderLite.customerEmail"
	missing []guard // the guards the reader lacks
}

// fieldOption is one way a type reads a property: through field name of
// one of its object types.
type fieldOption struct {
	owner  string  // "Order.customerEmail"
	guards []guard // the field's @auth and its return types' @auth
	typ    string  // the named return type
}

// nestedWalk compares two fields' return types; seen stops cycles.
type nestedWalk struct {
	s       *Schema
	seen    map[string]bool
	subtree map[string][]guard
}

// nestedBypass returns a property weak reads with fewer guards than
// strong puts on it. It expects weak to have every top-level guard of
// strong.
func (s *Schema) nestedBypass(strong, weak *topicField) (exposure, bool) {
	w := &nestedWalk{s: s, seen: map[string]bool{}, subtree: map[string][]guard{}}
	return w.walk("", weak.key, strong.def.Type.Name(), weak.def.Type.Name(), strong.guards, weak.guards)
}

// walk compares the property at path, read as type sn under guards gs by
// the strong field and as type wn under gw by reader of the weak one.
func (w *nestedWalk) walk(path, reader, sn, wn string, gs, gw []guard) (exposure, bool) {
	key := sn + "\x00" + wn + "\x00" + guardKeys(gs) + "\x00" + guardKeys(gw)
	if w.seen[key] {
		return exposure{}, false
	}
	w.seen[key] = true
	if !w.s.composite(sn) {
		return exposure{}, false // the caller compared the leaf itself
	}
	if !w.s.composite(wn) { // the weak field reads the whole subtree as one value
		if m := missingGuards(unionGuards(gs, w.subtreeGuards(sn)), gw); len(m) > 0 {
			return exposure{path: strings.TrimSuffix(path, "."), reader: reader, missing: m}, true
		}
		return exposure{}, false
	}
	sf, wf := w.s.fieldOptions(sn), w.s.fieldOptions(wn)
	for _, name := range sortedKeys(sf) {
		for _, so := range sf[name] {
			for _, wo := range wf[name] {
				gs2, gw2 := unionGuards(gs, so.guards), unionGuards(gw, wo.guards)
				if m := missingGuards(gs2, gw2); len(m) > 0 {
					return exposure{path: path + name, reader: wo.owner, missing: m}, true
				}
				if e, ok := w.walk(path+name+".", wo.owner, so.typ, wo.typ, gs2, gw2); ok {
					return e, true
				}
			}
		}
	}
	return exposure{}, false
}

// subtreeGuards returns every @auth below the named type, itself included.
func (w *nestedWalk) subtreeGuards(named string) []guard {
	if g, ok := w.subtree[named]; ok {
		return g
	}
	var out []guard
	visited := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if visited[n] || !w.s.composite(n) {
			return
		}
		visited[n] = true
		for _, obj := range w.s.objectTypes(n) {
			out = unionGuards(out, w.s.typeGuards(obj))
		}
		opts := w.s.fieldOptions(n)
		for _, name := range sortedKeys(opts) {
			for _, o := range opts[name] {
				out = unionGuards(out, o.guards)
				visit(o.typ)
			}
		}
	}
	visit(named)
	w.subtree[named] = out
	return out
}

// composite reports whether named is an object, interface or union.
func (s *Schema) composite(named string) bool {
	def := s.ast.Types[named]
	return def != nil && (def.Kind == ast.Object || def.Kind == ast.Interface || def.Kind == ast.Union)
}

// fieldOptions lists, by property name, the fields a value of the named
// type may be projected through: its own fields and those of every
// possible object type.
func (s *Schema) fieldOptions(named string) map[string][]fieldOption {
	out := map[string][]fieldOption{}
	add := func(def *ast.Definition) {
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			owner := def.Name + "." + f.Name
			g := guardsFrom(s.fieldAuth[f], " on field "+owner)
			for _, obj := range s.objectTypes(f.Type.Name()) {
				g = unionGuards(g, s.typeGuards(obj))
			}
			out[f.Name] = append(out[f.Name], fieldOption{owner: owner, guards: g, typ: f.Type.Name()})
		}
	}
	if def := s.ast.Types[named]; def != nil && def.Kind == ast.Interface {
		add(def)
	}
	for _, obj := range s.objectTypes(named) {
		add(s.ast.Types[obj])
	}
	return out
}

// typeGuards returns the @auth of the named object type as guards.
func (s *Schema) typeGuards(named string) []guard {
	return guardsFrom(s.typeAuth[named], " on type "+named)
}

// guardsFrom turns requirements into sorted guards; on says where they
// come from.
func guardsFrom(reqs []requirement, on string) []guard {
	var out []guard
	for _, r := range reqs {
		out = unionGuards(out, []guard{{key: "auth\x00" + r.text, text: "@auth " + r.text + on}})
	}
	return out
}

// unionGuards merges two sorted guard lists; a guard in both keeps a's
// text.
func unionGuards(a, b []guard) []guard {
	out := make([]guard, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].key < b[j].key):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].key < a[i].key:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return out
}

// guardKeys identifies a guard list.
func guardKeys(gs []guard) string {
	keys := make([]string, len(gs))
	for i, g := range gs {
		keys[i] = g.key
	}
	return strings.Join(keys, "\x01")
}

// guardTexts lists guards as an error shows them.
func guardTexts(gs []guard) string {
	texts := make([]string, len(gs))
	for i, g := range gs {
		texts[i] = g.text
	}
	return strings.Join(texts, ", ")
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// nestedError describes how weak reads part of strong's events without
// the guards strong puts on it.
func nestedError(weak, strong *topicField, e exposure, topic string) *gqlerror.Error {
	what := fmt.Sprintf("the event property %q", e.path)
	if e.path == "" {
		what = "the whole event"
	}
	return gqlerror.ErrorPosf(weak.def.Position,
		"%s (%s) can read %s of the topics of %s (%s, %s) through %s without the guards %s puts on it (%s), for example on topic %q: "+
			"put the same @auth on %s, return the same type from both fields, or give %s a topic of its own",
		weak.key, topicDesc(weak), what, strong.key, positionText(strong.def.Position), topicDesc(strong), e.reader, strong.key,
		guardTexts(e.missing), topic, e.reader, weak.key)
}
