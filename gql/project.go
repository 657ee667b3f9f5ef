package gql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fraised/fraised/internal/jsonx"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Projection completes values as graphql-js's executor does: a value that
// cannot be completed (a null in a non-null position, a failed coercion)
// records one error at its path and "throws"; the nearest enclosing nullable
// position catches it and becomes null, discarding what was written for it.
// Each completion function returns ok=false when it throws; the bytes it
// wrote are discarded by the catcher, which truncates dst.

// pathStack is how many path steps a projector keeps without allocating;
// deeper paths spill to the heap.
const pathStack = 32

// gatherMax is how many event properties of one object are collected in a
// single pass; selections reading more fall back to one pass per property.
const gatherMax = 16

// pathSeg is one step of a response path: key, or idx when key is "".
type pathSeg struct {
	key string
	idx int
}

// projector holds the state of one projection. It lives on the stack of
// the call that projects and is used by one goroutine.
type projector struct {
	plan  *plan
	slow  bool // never take the fast path (tests compare both)
	fast  bool // in the fast path (fast.go): a failure sets abort instead
	abort bool
	errs  gqlerror.List
	n     int
	path  [pathStack]pathSeg
	extra []pathSeg
	intro int // bytes of introspection answers so far (introspect.go)

	// given: the resolver already answered (AppendResolved): givenRaw,
	// or givenErr, stands for its call.
	given    bool
	givenRaw string
	givenErr error

	call ResolverCaller // runs a query's resolvers; nil: called directly
}

// AppendResult appends to dst the result of the subscription for event:
// {"data":{...}} plus "errors":[...] when fields failed. The default
// resolver reads event as the value of the root field. It is safe for
// concurrent use, reads event only during the call (dst must not overlap
// it) and does not allocate beyond growing dst unless a field fails or the
// root field has a custom resolver.
func (op *Operation) AppendResult(dst, event []byte) []byte {
	if op.plan.kind != KindSubscription {
		return appendRequestError(dst, "AppendResult needs a subscription operation")
	}
	var p projector
	p.plan = op.plan
	return p.result(context.Background(), dst, event)
}

// AppendQueryResult runs the resolvers of a query operation with ctx and
// appends the single result. It is safe for concurrent use.
func (op *Operation) AppendQueryResult(ctx context.Context, dst []byte) []byte {
	if op.plan.kind != KindQuery {
		return appendRequestError(dst, "AppendQueryResult needs a query operation")
	}
	var p projector
	p.plan = op.plan
	return p.result(ctx, dst, nil)
}

// ResolverCaller calls a query field's resolver fn (key names it,
// "Query.serverTime") with ctx and p and returns what it returned: a
// caller may run it elsewhere and give up at ctx's deadline.
type ResolverCaller func(ctx context.Context, key string, fn ResolverFunc, p ResolveParams) (any, error)

// AppendQueryResultVia is AppendQueryResult with every resolver call made
// through call (resolve.Queries bounds them with --resolver-timeout). It
// is safe for concurrent use.
func (op *Operation) AppendQueryResultVia(ctx context.Context, dst []byte, call ResolverCaller) []byte {
	if op.plan.kind != KindQuery {
		return appendRequestError(dst, "AppendQueryResultVia needs a query operation")
	}
	var p projector
	p.plan, p.call = op.plan, call
	return p.result(ctx, dst, nil)
}

// appendRequestError appends a result holding only an error.
func appendRequestError(dst []byte, msg string) []byte {
	dst = append(dst, `{"errors":`...)
	dst = AppendErrors(dst, gqlerror.List{gqlerror.Errorf("%s", msg)})
	return append(dst, '}')
}

// result appends the whole result document.
func (p *projector) result(ctx context.Context, dst, event []byte) []byte {
	dst = append(dst, `{"data":`...)
	start := len(dst)
	dst = append(dst, '{')
	ok := true
	for i, f := range p.plan.fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, f.key...)
		p.push(pathSeg{key: f.respKey})
		dst, ok = p.root(ctx, dst, f, event)
		p.pop()
		if !ok {
			break
		}
	}
	if ok {
		dst = append(dst, '}')
	} else {
		dst = append(dst[:start], "null"...)
	}
	if len(p.errs) > 0 {
		dst = append(dst, `,"errors":`...)
		dst = AppendErrors(dst, p.errs)
	}
	return append(dst, '}')
}

// root completes one root field.
func (p *projector) root(ctx context.Context, dst []byte, f *field, event []byte) ([]byte, bool) {
	var raw string
	switch {
	case f.typename:
		return append(dst, p.plan.rootJSON...), true
	case f.intro != nil:
		v, err := p.introspect(f)
		if err != nil {
			p.fail(f, err.Error())
			return p.thrown(dst, f.typ)
		}
		raw = v
	case f.resolver != nil:
		v, err := p.givenOr(ctx, f, event)
		if err != nil {
			p.failResolver(f, err)
			return p.thrown(dst, f.typ)
		}
		raw = v
	case p.plan.kind == KindSubscription:
		raw = jsonx.RootValue(jsonx.View(event))
	default:
		p.fail(f, "field \""+f.rkey+"\" has no resolver")
		return p.thrown(dst, f.typ)
	}
	return p.complete(dst, f, raw)
}

// givenOr returns the resolver's answer given to AppendResolved, or calls
// the resolver.
func (p *projector) givenOr(ctx context.Context, f *field, event []byte) (string, error) {
	if p.given {
		return p.givenRaw, p.givenErr
	}
	return p.resolve(ctx, f, event)
}

// thrown finishes a position whose value threw: null if t is nullable,
// else the error propagates.
func (p *projector) thrown(dst []byte, t *ast.Type) ([]byte, bool) {
	if t.NonNull {
		return dst, false
	}
	return append(dst, "null"...), true
}

// caught completes raw at a field or list item position of type t and
// catches what it throws when t is nullable.
func (p *projector) caught(dst []byte, f *field, t *ast.Type, raw string) ([]byte, bool) {
	start := len(dst)
	dst, ok := p.value(dst, f, t, raw)
	if ok {
		return dst, true
	}
	return p.thrown(dst[:start], t)
}

// value completes raw (a raw JSON value, "" when absent) as type t.
func (p *projector) value(dst []byte, f *field, t *ast.Type, raw string) ([]byte, bool) {
	if jsonx.IsNull(raw) {
		if t.NonNull {
			p.fail(f, "Cannot return null for non-nullable field "+f.parent+"."+f.name+".")
			return dst, false
		}
		return append(dst, "null"...), true
	}
	switch {
	case t.Elem != nil:
		return p.list(dst, f, t.Elem, raw)
	case f.leaf != leafNone:
		return p.leaf(dst, f, raw)
	}
	return p.object(dst, f, raw)
}

// list completes a list whose items have type elem.
func (p *projector) list(dst []byte, f *field, elem *ast.Type, raw string) ([]byte, bool) {
	if raw[0] != '[' {
		p.fail(f, "Expected Iterable, but did not find one for field \""+f.parent+"."+f.name+"\".")
		return dst, false
	}
	dst = append(dst, '[')
	it := jsonx.NewElements(raw)
	for i := 0; ; i++ {
		v, more := it.Next()
		if !more {
			break
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		p.push(pathSeg{idx: i})
		var ok bool
		dst, ok = p.caught(dst, f, elem, v)
		p.pop()
		if !ok {
			return dst, false
		}
	}
	return append(dst, ']'), true
}

// props gives the raw values of the properties an objPlan reads from one
// event object, collected in one pass when there are few.
type props struct {
	obj   string
	names []string
	big   bool
	vals  [gatherMax]string
}

// gather collects the values of p.names from p.obj in one pass; the first
// member of a name wins.
func (p *props) gather() {
	p.big = len(p.names) > gatherMax
	if p.big || p.obj == "" {
		return
	}
	m := jsonx.NewMembers(p.obj)
	left := len(p.names)
	for left > 0 {
		k, esc, v, ok := m.Next()
		if !ok {
			return
		}
		for i, n := range p.names {
			if p.vals[i] == "" && jsonx.KeyIs(k, esc, n) {
				p.vals[i] = v
				left--
				break
			}
		}
	}
}

// get returns the raw value of property i, "" when absent.
func (p *props) get(i int) string {
	if !p.big {
		return p.vals[i]
	}
	v, _ := jsonx.Member(p.obj, p.names[i])
	return v
}

// object completes a value of a composite type. A value that is not a JSON
// object has no properties (graphql-js reads undefined from it).
func (p *projector) object(dst []byte, f *field, raw string) ([]byte, bool) {
	o := f.obj
	pr := props{names: o.names}
	if raw[0] == '{' {
		pr.obj = raw
	}
	pr.gather()
	tn := ""
	if o.abstract {
		tn = pr.get(o.typeSrc)
	}
	sel, ok := p.selectionFor(f, o, tn)
	if !ok {
		return dst, false
	}
	dst = append(dst, '{')
	for i, cf := range sel.fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, cf.key...)
		p.push(pathSeg{key: cf.respKey})
		if cf.typename {
			dst, ok = p.typename(dst, cf, o, sel)
		} else {
			dst, ok = p.caught(dst, cf, cf.typ, pr.get(cf.src))
		}
		p.pop()
		if !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

// selectionFor picks the selection for the runtime type of an object: the
// only one for object types; for abstract types the one named by the
// event's "__typename" (raw tn, "" when absent), else the only possible
// type, else the fallback.
func (p *projector) selectionFor(f *field, o *objPlan, tn string) (*selection, bool) {
	if !o.abstract {
		return o.sels[0], true
	}
	if jsonx.IsNull(tn) {
		if len(o.sels) == 1 {
			return o.sels[0], true
		}
		return o.fallback, true
	}
	if tn[0] != '"' {
		p.fail(f, fmt.Sprintf("Abstract type %q must resolve to an Object type at runtime for field \"%s.%s\". Received %s.", o.name, f.parent, f.name, inspect(tn)))
		return nil, false
	}
	content := tn[1 : len(tn)-1]
	esc := strings.IndexByte(content, '\\') >= 0
	for _, sel := range o.sels {
		if jsonx.KeyIs(content, esc, sel.typeName) {
			return sel, true
		}
	}
	p.fail(f, fmt.Sprintf("Runtime Object type %s is not a possible type for %q.", inspect(tn), o.name))
	return nil, false
}

// typename completes __typename inside an object of plan o.
func (p *projector) typename(dst []byte, f *field, o *objPlan, sel *selection) ([]byte, bool) {
	if sel.typeName != "" {
		return append(dst, sel.typeJSON...), true
	}
	p.fail(f, fmt.Sprintf("cannot resolve the runtime type of abstract type %q: the event has no \"__typename\"", o.name))
	return dst, false
}

// push enters a path step.
func (p *projector) push(s pathSeg) {
	if p.n < pathStack {
		p.path[p.n] = s
	} else {
		p.extra = append(p.extra, s)
	}
	p.n++
}

// pop leaves the last path step.
func (p *projector) pop() {
	p.n--
	if p.n >= pathStack {
		p.extra = p.extra[:len(p.extra)-1]
	}
}

// fail records a field error at the current path; in the fast path it
// only ends that path.
func (p *projector) fail(f *field, msg string) {
	if p.fast {
		p.abort = true
		return
	}
	path := make(ast.Path, 0, p.n)
	for i := 0; i < p.n; i++ {
		s := p.extraOr(i)
		if s.key != "" {
			path = append(path, ast.PathName(s.key))
		} else {
			path = append(path, ast.PathIndex(s.idx))
		}
	}
	p.errs = append(p.errs, &gqlerror.Error{Message: msg, Path: path, Locations: f.locs})
}

// failResolver records a resolver's error; a *gqlerror.Error keeps its
// message and extensions.
func (p *projector) failResolver(f *field, err error) {
	var ge *gqlerror.Error
	if !errors.As(err, &ge) {
		p.fail(f, err.Error())
		return
	}
	p.fail(f, ge.Message)
	p.errs[len(p.errs)-1].Extensions = ge.Extensions
}

// extraOr returns path step i.
func (p *projector) extraOr(i int) pathSeg {
	if i < pathStack {
		return p.path[i]
	}
	return p.extra[i-pathStack]
}
