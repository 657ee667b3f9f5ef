package gql

import (
	"sync"
	"weak"

	"github.com/cespare/xxhash/v2"
	"github.com/fraised/fraised/internal/jsonx"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Compile caches its work by what each part depends on, so that a repeat
// of a known subscribe costs a few hash lookups and a new variable value
// on a known document does not plan the selection again:
//
//   - docEntry (cache.go), by document text: the parse and validation;
//   - opInfo, by document and operation name: the operation, its limits;
//   - shape, by those and the outcome of every @skip/@include condition
//     that reads a variable: the selection plan and the @auth checks it
//     needs;
//   - request, by document, operation name and raw variables bytes: the
//     coerced variables, root arguments, topic, argument filters, and the
//     identity without its Env part;
//   - opEntry, by request and Env fingerprint (the claims read by claim
//     filters; the init payload and all claims when the root field has a
//     resolver): the *Operation, held weakly;
//   - interner (intern.go), by identity: the *Operation every compilation
//     with that identity shares.
//
// Every cache is found by a hash (seeded from crypto/rand, hashSeed) but
// compares its full key on a hit, so a hash collision, by chance or
// forged, never returns another request's or another tenant's work.

const (
	// requestCacheEntries bounds the requests kept compiled: a deployment
	// has a few dozen documents, each subscribed with a bounded set of
	// variable values (rooms, customers), and 4096 covers thousands of
	// connections without recompiling.
	requestCacheEntries = 4096
	// requestCacheBytes bounds their estimated size (requestCost), so a
	// client sending large distinct documents or variables cannot grow
	// memory without bound.
	requestCacheBytes = 16 << 20
	// opCacheEntries bounds the (request, Env fingerprint) pairs kept; an
	// entry holds its operation weakly, so it costs a few dozen bytes plus
	// its fingerprint.
	opCacheEntries = 4096
	// opCacheBytes bounds their estimated size (len(fp) + opEntryCost).
	opCacheBytes = 4 << 20
	// opEntryCost estimates an opEntry besides its fingerprint.
	opEntryCost = 128
	// compileCacheShards is the number of independently locked shards of
	// the request and operation caches: compilations on different event
	// loops rarely wait for each other.
	compileCacheShards = 16
	// maxShapes bounds the plans kept per operation of a document: one per
	// outcome of its variable @skip/@include conditions, rarely more than a
	// few in practice.
	maxShapes = 16
)

// opInfo is what a document and an operation name decide. It is immutable
// but for shapes, which mu guards.
type opInfo struct {
	op    *ast.OperationDefinition
	errs  gqlerror.List // returned for every request
	root  *ast.Definition
	kind  Kind
	conds []*ast.Value // the if: arguments of @skip/@include that are variables

	mu     sync.Mutex
	shapes map[string]*shape // by condKey
}

// shape is the plan of an operation for one outcome of its variable
// @skip/@include conditions: everything that does not depend on argument
// values or on the Env. It is immutable.
type shape struct {
	kind        Kind
	rootJSON    string
	fields      []*field  // root fields; their args are set on copies (request.fields)
	main        int       // subscriptions: the index of the root field in fields
	info        *rootInfo // subscriptions: the root field's directives
	hasResolver bool
	// resolverIdentity: a resolver of the operation reads the init
	// payload and claims (Resolver.Identity), so they join its identity.
	resolverIdentity bool
	checks           []authCheck
	errs             gqlerror.List // returned for every request
	post             gqlerror.List // returned after the @auth refusals
}

// authCheck is an @auth rule the selection reaches: what needs every
// requirement in reqs.
type authCheck struct {
	what string // `field "Subscription.secret"`, `type "Secret"`
	reqs []requirement
	locs []gqlerror.Location // where what was first reached
}

// request is a compiled (document, operation name, variables): an
// operation without its Env part. It is immutable.
type request struct {
	id                  uint64 // unique per Schema; keys opEntry without keeping the request alive
	query, opName, vars string // the key: Request.Query, OperationName and Variables

	errs  gqlerror.List // returned for every Env
	shape *shape
	post  gqlerror.List // returned after the @auth refusals

	kind         Kind
	field, topic string
	name         string // the operation's name
	docHash      uint64
	fields       []*field     // root fields with their arguments
	filters      []filterSlot // in @filter order
	claimFilters bool
	argFilters   []filter   // without claim filters: every operation's filters
	match        *matchNode // the match tree of all filters (claims resolved or not)
	identity     []byte     // the identity without its Env part (appendEnvIdentity)
}

// filterSlot is one @filter of a request: an argument filter resolved (arg
// set), or a claim filter (claim set; only f.path is).
type filterSlot struct {
	f          filter
	arg, claim string
}

// opEntry is a compiled operation of the request with id req for Envs
// with fingerprint fp.
type opEntry struct {
	req uint64
	fp  string
	op  weak.Pointer[Operation]
}

// request returns the compiled req, from the cache when it is known.
func (s *Schema) request(req Request) *request {
	h := s.requestHash(req)
	if r, ok := s.requests.Get(h); ok && r.is(req) {
		return r
	}
	r := s.newRequest(req)
	s.requests.Put(h, r, requestCost(r))
	return r
}

// requestHash hashes the cache key of req. The key is compared in full
// on a hit (request.is), so the separators need not be unambiguous.
func (s *Schema) requestHash(req Request) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(hashSeed)
	d.WriteString(req.Query)
	d.WriteString("\x00")
	d.WriteString(req.OperationName)
	d.WriteString("\x00")
	d.Write(req.Variables)
	return s.hash(d.Sum64())
}

// is reports whether r is the compilation of req.
func (r *request) is(req Request) bool {
	return r.query == req.Query && r.opName == req.OperationName && r.vars == jsonx.View(req.Variables)
}

// requestCost estimates the bytes r keeps alive: its key, its identity
// (another copy of the document and variables), and its fields and
// arguments.
func requestCost(r *request) int {
	return 2*len(r.query) + 2*len(r.vars) + len(r.opName) + 1024
}

// newRequest compiles req up to the Env: cached document, operation and
// shape, then the variables, arguments, topic and filters.
func (s *Schema) newRequest(req Request) *request {
	r := &request{id: s.requestIDs.Add(1), query: req.Query, opName: req.OperationName, vars: string(req.Variables)}
	e := s.document(req.Query)
	r.query = e.text // one copy of the text for the caches
	if len(e.errs) > 0 {
		r.errs = e.errs
		return r
	}
	info := s.operationInfo(e, req.OperationName)
	if len(info.errs) > 0 {
		r.errs = info.errs
		return r
	}
	vars, errs := s.variables(info.op, req.Variables)
	if len(errs) > 0 {
		r.errs = errs
		return r
	}
	if info.root == nil {
		r.errs = gqlerror.List{gqlerror.ErrorPosf(info.op.Position, "the schema has no %s type", info.op.Operation)}
		return r
	}
	sh := s.shape(e, info, vars)
	if r.shape, r.errs, r.post = sh, sh.errs, sh.post; len(r.errs)+len(r.post) > 0 {
		return r
	}
	c := &compiler{s: s, doc: e.doc, op: info.op, vars: vars}
	if c.bind(r, sh); len(c.errs) > 0 {
		r.post = c.errs
		return r
	}
	r.kind, r.name, r.docHash = sh.kind, info.op.Name, e.hash
	r.identity = c.identityPrefix(r)
	r.planFilters()
	return r
}

// planFilters prepares what the operations of r share of their filters:
// the match tree of all of them (it reads only their paths), and the
// filters themselves when none reads a claim.
func (r *request) planFilters() {
	if len(r.filters) == 0 {
		return
	}
	all := make([]filter, len(r.filters))
	for i := range r.filters {
		all[i] = r.filters[i].f
	}
	r.match = newMatchTree(all)
	if !r.claimFilters {
		r.argFilters = all
	}
}

// operationInfo returns what document e and the operation name decide,
// cached in e for names that select an operation.
func (s *Schema) operationInfo(e *docEntry, name string) *opInfo {
	e.mu.Lock()
	info := e.ops[name]
	e.mu.Unlock()
	if info != nil {
		return info
	}
	info = s.newOpInfo(e.doc, name)
	if info.op == nil {
		return info // an unknown name: not kept, so names cannot grow e
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.ops[name]; old != nil {
		return old
	}
	if e.ops == nil {
		e.ops = map[string]*opInfo{}
	}
	e.ops[name] = info
	return info
}

// newOpInfo selects the operation name of doc and checks it.
func (s *Schema) newOpInfo(doc *ast.QueryDocument, name string) *opInfo {
	op, err := selectOperation(doc, name)
	if err != nil {
		return &opInfo{errs: gqlerror.List{err}}
	}
	info := &opInfo{op: op, root: s.ast.Query, kind: KindQuery}
	switch op.Operation {
	case ast.Mutation:
		info.errs = gqlerror.List{gqlerror.ErrorPosf(op.Position, "mutations are not supported")}
		return info
	case ast.Subscription:
		info.root, info.kind = s.ast.Subscription, KindSubscription
	}
	if info.errs = s.limits.check(doc, op); len(info.errs) > 0 {
		return info
	}
	info.conds = condValues(doc, op)
	return info
}

// condValues returns the if: arguments of @skip and @include that are
// variables, in op and in every fragment of doc: the values the selection
// of op depends on besides the document.
func condValues(doc *ast.QueryDocument, op *ast.OperationDefinition) []*ast.Value {
	var out []*ast.Value
	var walk func(ss ast.SelectionSet)
	dirs := func(ds ast.DirectiveList) {
		for _, d := range ds {
			if d.Name != "skip" && d.Name != "include" {
				continue
			}
			for _, a := range d.Arguments {
				if a.Name == "if" && a.Value != nil && a.Value.Kind == ast.Variable {
					out = append(out, a.Value)
				}
			}
		}
	}
	walk = func(ss ast.SelectionSet) {
		for _, sel := range ss {
			switch sel := sel.(type) {
			case *ast.Field:
				dirs(sel.Directives)
				walk(sel.SelectionSet)
			case *ast.InlineFragment:
				dirs(sel.Directives)
				walk(sel.SelectionSet)
			case *ast.FragmentSpread:
				dirs(sel.Directives)
			}
		}
	}
	walk(op.SelectionSet)
	for _, f := range doc.Fragments {
		walk(f.SelectionSet)
	}
	return out
}

// ifValue evaluates the if: argument value v of @skip or @include.
func ifValue(v *ast.Value, vars map[string]any) bool {
	x, err := v.Value(vars)
	b, ok := x.(bool)
	return err == nil && ok && b
}

// condKey appends to b one bit per condition of info: its value with vars.
func (info *opInfo) condKey(b []byte, vars map[string]any) []byte {
	for i, v := range info.conds {
		if i%8 == 0 {
			b = append(b, 0)
		}
		if ifValue(v, vars) {
			b[len(b)-1] |= 1 << (i % 8)
		}
	}
	return b
}

// shape returns the plan of info's operation for the conditions of vars,
// cached in info.
func (s *Schema) shape(e *docEntry, info *opInfo, vars map[string]any) *shape {
	var buf [32]byte
	key := info.condKey(buf[:0], vars)
	info.mu.Lock()
	sh := info.shapes[string(key)]
	info.mu.Unlock()
	if sh != nil {
		return sh
	}
	sh = s.newShape(e.doc, info, vars)
	info.mu.Lock()
	defer info.mu.Unlock()
	if old := info.shapes[string(key)]; old != nil {
		return old
	}
	if info.shapes == nil {
		info.shapes = map[string]*shape{}
	}
	for k := range info.shapes {
		if len(info.shapes) < maxShapes {
			break
		}
		delete(info.shapes, k)
	}
	info.shapes[string(key)] = sh
	return sh
}

// authorize returns a "forbidden" error for every check of sh that env
// fails, naming the first requirement it lacks; nil when env passes all.
func (sh *shape) authorize(env *Env) gqlerror.List {
	var errs gqlerror.List
	for i := range sh.checks {
		ch := &sh.checks[i]
		for _, r := range ch.reqs {
			if !r.holds(env) {
				errs = append(errs, &gqlerror.Error{Message: "forbidden: " + ch.what + " requires " + r.text, Locations: ch.locs})
				break
			}
		}
	}
	return errs
}

// operation returns the operation of r for env: @auth checked, then the
// cached operation for env's fingerprint or a new one, interned.
func (s *Schema) operation(r *request, env *Env) (*Operation, gqlerror.List) {
	if refused := r.shape.authorize(env); len(refused) > 0 {
		return nil, append(refused, r.post...)
	}
	if len(r.post) > 0 {
		return nil, r.post
	}
	var buf [256]byte
	fp := r.fingerprint(buf[:0], env)
	h := s.opHash(r, fp)
	if e, ok := s.envOps.Get(h); ok && e.req == r.id && e.fp == string(fp) {
		if op := e.op.Value(); op != nil {
			return op, nil
		}
	}
	op := s.ops.intern(s.newOperation(r, env))
	s.envOps.Put(h, &opEntry{req: r.id, fp: string(fp), op: weak.Make(op)}, len(fp)+opEntryCost)
	return op, nil
}

// seededSum64 returns the XXH64 of b seeded with hashSeed; b does not
// escape.
func seededSum64(b []byte) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(hashSeed)
	_, _ = d.Write(b)
	return d.Sum64()
}

// opHash is the opEntry hash of r's operation for fingerprint fp; the
// entry is used only when its request id and fingerprint are equal too.
func (s *Schema) opHash(r *request, fp []byte) uint64 {
	return s.hash(r.id*0x9E3779B97F4A7C15 ^ seededSum64(fp))
}

// fingerprint appends to b what of env the operation of r depends on: the
// claims its claim filters read, and the init payload and claims when a
// root field's resolver reads them (Resolver.Identity). Equal fingerprints of one request give equal
// operations (equal identities).
func (r *request) fingerprint(b []byte, env *Env) []byte {
	if r.claimFilters {
		for i := range r.filters {
			if sl := &r.filters[i]; sl.claim != "" {
				v, ok := env.Claims[sl.claim]
				b = appendFingerprintValue(appendCanonBool(b, ok), v)
			}
		}
	}
	if r.shape.resolverIdentity {
		b = appendCanonBool(b, env.InitPayload == nil)
		b = appendCanonString(append(b, 's'), jsonx.View(env.InitPayload))
		b = appendCanonBool(b, env.Claims == nil)
		b = appendFingerprintValue(b, env.Claims)
	}
	return b
}

// appendFingerprintValue appends appendCanon's encoding of v; only values
// other than scalars go through a heap buffer, so b can stay on the stack.
func appendFingerprintValue(b []byte, v any) []byte {
	if out, ok := appendCanonScalar(b, v); ok {
		return out
	}
	return append(b, appendCanon(nil, v)...)
}

// newOperation builds the operation of r for env (not interned).
func (s *Schema) newOperation(r *request, env *Env) *Operation {
	sh := r.shape
	p := &plan{kind: r.kind, fields: r.fields, rootJSON: sh.rootJSON, logger: s.logger,
		hasResolver: sh.hasResolver, resolverIdentity: sh.resolverIdentity}
	if p.resolverIdentity {
		p.initPayload, p.claims = env.InitPayload, env.Claims
	}
	p.filters, p.match = r.argFilters, r.match
	if r.claimFilters {
		p.filters, p.never = r.envFilters(env)
		if len(p.filters) != len(r.filters) { // a claim is missing: never matches, but keep the tree right
			p.match = newMatchTree(p.filters)
		}
	}
	op := &Operation{Kind: r.kind, Field: r.field, Topic: r.topic, DocHash: r.docHash, OperationName: r.name, plan: p}
	op.identity = r.appendEnvIdentity(append(make([]byte, 0, len(r.identity)+envIdentityCap(r)), r.identity...), env, p)
	op.GroupKey = s.hash(seededSum64(op.identity))
	return op
}

// envFilters returns the filters of r with the claim values of env; never
// is true when a claim filter's claim is missing or not a scalar, and that
// filter is left out.
func (r *request) envFilters(env *Env) (filters []filter, never bool) {
	filters = make([]filter, 0, len(r.filters))
	for _, sl := range r.filters {
		if sl.claim == "" {
			filters = append(filters, sl.f)
			continue
		}
		v, ok := env.Claims[sl.claim]
		fl, valid := newFilter(sl.f.path, v, false)
		if !ok || !valid {
			never = true // a missing claim matches nothing, never everything
			continue
		}
		filters = append(filters, fl)
	}
	return filters, never
}
