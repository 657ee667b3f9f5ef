package gql

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// compile plans the operation and resolves its root field(s).
func (c *compiler) compile(req Request) (*Operation, gqlerror.List) {
	root, kind := c.s.ast.Query, KindQuery
	if c.op.Operation == ast.Subscription {
		root, kind = c.s.ast.Subscription, KindSubscription
	}
	if root == nil {
		return nil, gqlerror.List{gqlerror.ErrorPosf(c.op.Position, "the schema has no %s type", c.op.Operation)}
	}
	c.authorize("type \""+root.Name+"\"", c.s.typeAuth[root.Name], []gqlerror.Location{location(c.op.Position)})
	sel := c.selection(root, false, []ast.SelectionSet{c.op.SelectionSet})
	if c.size > maxPlanFields {
		return nil, gqlerror.List{gqlerror.ErrorPosf(c.op.Position, "operation selects more than %d fields once fragments are expanded", maxPlanFields)}
	}
	p := &plan{
		kind: kind, fields: sel.fields, rootJSON: sel.typeJSON, logger: c.s.logger,
		initPayload: c.env.InitPayload, claims: c.env.Claims,
	}
	op := &Operation{Kind: kind, OperationName: c.op.Name, DocHash: xxhash.Sum64String(req.Query), plan: p}
	if kind == KindSubscription {
		c.subscription(op, root)
	} else {
		c.query(op, root)
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	op.identity = c.identity(req, op)
	op.GroupKey = xxhash.Sum64(op.identity)
	return c.s.ops.intern(op), nil
}

// subscription checks that exactly one root field is selected and resolves
// its topic, filters and resolver.
func (c *compiler) subscription(op *Operation, root *ast.Definition) {
	name := "Anonymous Subscription"
	if c.op.Name != "" {
		name = "Subscription " + strconv.Quote(c.op.Name)
	}
	var main *field
	for _, f := range op.plan.fields {
		switch {
		case f.typename:
		case main == nil:
			main = f
		default:
			c.errs = append(c.errs, &gqlerror.Error{Message: name + " must select only one top level field.", Locations: f.locs})
			return
		}
	}
	if main == nil {
		c.errs = append(c.errs, gqlerror.ErrorPosf(c.op.Position, "%s must select one top level field.", name))
		return
	}
	info := c.s.roots[root.Name+"."+main.name]
	if info == nil {
		c.errs = append(c.errs, &gqlerror.Error{Message: "cannot subscribe to " + root.Name + "." + main.name, Locations: main.locs})
		return
	}
	main.args = c.args(main)
	main.rkey, main.resolver = info.key, info.resolver
	op.Field = main.name
	op.plan.hasResolver = info.resolver != nil
	op.Topic = c.topic(info, main)
	c.filters(op.plan, info, main)
}

// query resolves the resolvers and arguments of the root fields.
func (c *compiler) query(op *Operation, root *ast.Definition) {
	for _, f := range op.plan.fields {
		if f.typename {
			continue
		}
		f.args = c.args(f)
		f.rkey = root.Name + "." + f.name
		if info := c.s.roots[f.rkey]; info != nil && info.resolver != nil {
			f.resolver = info.resolver
			op.plan.hasResolver = true
		}
	}
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
		return string(appendJSNumber(nil, v)), true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		return string(v), true
	}
	return "", false
}

// filters resolves the @filter values of info: arguments (skipped when
// absent or null) and claims (a missing claim matches nothing).
func (c *compiler) filters(p *plan, info *rootInfo, f *field) {
	for _, spec := range info.filters {
		if spec.claim != "" {
			v, ok := c.env.Claims[spec.claim]
			fl, valid := newFilter(spec.path, v, false)
			if !ok || !valid {
				p.never = true
				continue
			}
			p.filters = append(p.filters, fl)
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
		p.filters = append(p.filters, fl)
	}
	if len(p.filters) > 0 {
		p.match = newMatchTree(p.filters)
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
