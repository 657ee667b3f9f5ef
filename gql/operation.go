package gql

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/fraised/fraised/internal/jsonx"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// newShape plans the selection of info's operation with the @skip/@include
// conditions of vars and records the @auth checks it needs.
func (s *Schema) newShape(doc *ast.QueryDocument, info *opInfo, vars map[string]any) *shape {
	c := &compiler{s: s, doc: doc, op: info.op, vars: vars}
	root := info.root
	sh := &shape{kind: info.kind, rootJSON: `"` + root.Name + `"`, main: -1}
	c.authorize("type \""+root.Name+"\"", s.typeAuth[root.Name], []gqlerror.Location{location(info.op.Position)})
	sel := c.selection(root, false, []ast.SelectionSet{info.op.SelectionSet})
	if c.size > maxPlanFields {
		sh.errs = gqlerror.List{gqlerror.ErrorPosf(info.op.Position, "operation selects more than %d fields once fragments are expanded", maxPlanFields)}
		return sh
	}
	sh.fields, sh.checks = sel.fields, c.checks
	if sh.kind == KindSubscription {
		c.subscriptionRoot(sh, root)
	} else {
		c.queryRoots(sh, root)
	}
	sh.post = c.errs
	return sh
}

// subscriptionRoot checks that exactly one root field is selected and
// finds its directives and resolver.
func (c *compiler) subscriptionRoot(sh *shape, root *ast.Definition) {
	name := "Anonymous Subscription"
	if c.op.Name != "" {
		name = "Subscription " + strconv.Quote(c.op.Name)
	}
	main := -1
	for i, f := range sh.fields {
		switch {
		case f.typename:
		case main < 0:
			main = i
		default:
			c.errs = append(c.errs, &gqlerror.Error{Message: name + " must select only one top level field.", Locations: f.locs})
			return
		}
	}
	if main < 0 {
		c.errs = append(c.errs, gqlerror.ErrorPosf(c.op.Position, "%s must select one top level field.", name))
		return
	}
	f := sh.fields[main]
	info := c.s.roots[root.Name+"."+f.name]
	if info == nil {
		c.errs = append(c.errs, &gqlerror.Error{Message: "cannot subscribe to " + root.Name + "." + f.name, Locations: f.locs})
		return
	}
	f.rkey, f.resolver = info.key, info.resolver
	sh.main, sh.info, sh.hasResolver = main, info, info.resolver != nil
	sh.resolverIdentity = info.resolver != nil && info.identity
}

// queryRoots finds the resolvers of the root fields.
func (c *compiler) queryRoots(sh *shape, root *ast.Definition) {
	for _, f := range sh.fields {
		if f.typename {
			continue
		}
		f.rkey = root.Name + "." + f.name
		if isIntrospectionRoot(f.name) {
			c.introspectionRoot(f)
			continue
		}
		if info := c.s.roots[f.rkey]; info != nil && info.resolver != nil {
			f.resolver = info.resolver
			sh.hasResolver = true
			sh.resolverIdentity = sh.resolverIdentity || info.identity
		}
	}
}

// bind gives the root fields of sh their arguments (on copies, as sh is
// shared by requests) and resolves a subscription's topic and argument
// filters.
func (c *compiler) bind(r *request, sh *shape) {
	r.fields = append([]*field(nil), sh.fields...)
	for i, f := range r.fields {
		if f.typename || (sh.kind == KindSubscription && i != sh.main) {
			continue
		}
		cp := *f
		cp.args = c.args(&cp)
		if cp.intro != nil {
			cp.vars = c.vars
		}
		r.fields[i] = &cp
	}
	if sh.kind != KindSubscription {
		return
	}
	main := r.fields[sh.main]
	r.field = main.name
	r.topic = c.topic(sh.info, main)
	c.filters(r, sh.info, main)
}

// args coerces the arguments of a root field, applying defaults. Absent
// arguments without a default are left out.
func (c *compiler) args(f *field) map[string]any {
	out := make(map[string]any, len(f.def.Arguments))
	for _, ad := range f.def.Arguments {
		var v any
		has := false
		a := f.node.Arguments.ForName(ad.Name)
		switch {
		case a != nil && a.Value.Kind == ast.Variable:
			v, has = c.vars[a.Value.Raw]
		case a != nil:
			v, has = c.literal(ad, a.Value)
		}
		if !has && ad.DefaultValue != nil {
			v, has = c.literal(ad, ad.DefaultValue)
		}
		if has {
			out[ad.Name] = v
		}
	}
	return out
}

// literal coerces the literal value v of argument ad.
func (c *compiler) literal(ad *ast.ArgumentDefinition, v *ast.Value) (any, bool) {
	raw, err := v.Value(c.vars)
	if err == nil {
		var cv any
		if cv, err = coerceInput(c.s.ast, ad.Type, raw); err == nil {
			return cv, true
		}
	}
	c.errs = append(c.errs, gqlerror.ErrorPosf(v.Position, "Argument %q has invalid value %s: %v", ad.Name, v.String(), err))
	return nil, false
}

// topic fills the topic template of info with the arguments of f.
func (c *compiler) topic(info *rootInfo, f *field) string {
	var b strings.Builder
	for _, p := range info.topic {
		if p.arg == "" {
			b.WriteString(p.lit)
			continue
		}
		s, ok := topicValue(f.args[p.arg])
		if !ok {
			c.errs = append(c.errs, &gqlerror.Error{Message: "argument \"" + p.arg + "\" of " + info.key + " needs a value: the topic is built from it", Locations: f.locs})
			return ""
		}
		b.WriteString(s)
	}
	return b.String()
}

// topicValue formats an argument value for a topic: strings as is, numbers
// in decimal.
func topicValue(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case int64:
		return strconv.FormatInt(v, 10), true
	case float64:
		return string(jsonx.AppendJSNumber(nil, v)), true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		return string(v), true
	}
	return "", false
}

// filters resolves the argument filters of info (skipped when the argument
// is absent or null) and lists its claim filters, in @filter order.
func (c *compiler) filters(r *request, info *rootInfo, f *field) {
	for _, spec := range info.filters {
		if spec.claim != "" {
			r.filters = append(r.filters, filterSlot{f: filter{path: spec.path}, claim: spec.claim})
			r.claimFilters = true
			continue
		}
		v := f.args[spec.arg]
		if v == nil {
			continue
		}
		fl, ok := newFilter(spec.path, v, f.def.Arguments.ForName(spec.arg).Type.Name() == "ID")
		if !ok {
			c.errs = append(c.errs, &gqlerror.Error{Message: "argument \"" + spec.arg + "\" of " + info.key + " must be a scalar to filter events", Locations: f.locs})
			continue
		}
		r.filters = append(r.filters, filterSlot{f: fl, arg: spec.arg})
	}
}

// newFilter builds a filter comparing the event value at path with v. ok is
// false when v is not a string, number or boolean.
func newFilter(path []string, v any, isID bool) (filter, bool) {
	fl := filter{path: path}
	switch v := v.(type) {
	case string:
		fl.kind, fl.str = filterString, v
		if isID {
			fl.kind = filterID
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				fl.setInt(n)
			}
		}
		return fl, true
	case bool:
		fl.kind, fl.b = filterBool, v
		return fl, true
	case json.Number:
		fl.kind = filterNumber
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			fl.setInt(n)
			return fl, true
		}
		f, err := strconv.ParseFloat(string(v), 64)
		fl.setFloat(f)
		return fl, err == nil
	}
	if f, ok := number(v); ok && !math.IsNaN(f) {
		fl.kind = filterNumber
		if n, isInt := v.(int64); isInt {
			fl.setInt(n)
		} else {
			fl.setFloat(f)
		}
		return fl, true
	}
	return fl, false
}
