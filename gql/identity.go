package gql

import (
	"bytes"
	"strconv"

	"github.com/fraised/fraised/internal/jsonx"
)

// This file decides which subscribers share bytes: two subscriptions join
// one registry group, and so get the one payload projected per event for
// the group, only when their operations have equal identities. A mistake
// here is a data leak (one tenant receiving another's events, or fields
// its selection did not ask for), so the rules are spelled out.
//
// An operation's identity is every input that decides which events it
// matches and the bytes it produces for them: the schema, the kind, the
// topic, the document text, the operation name, the coerced variables,
// every @filter with its path, its source (argument or claim, by name) and
// value, and with a resolver that declares it reads them
// (Resolver.Identity) the init payload and claims the resolver sees. A
// resolver that does not declare it gets neither (they are nil in its
// ResolveParams), so its output depends only on the event and the
// arguments, which the identity already covers: one call serves the group. Operations with equal identities are interchangeable; GroupKey is
// only its hash, and SameGroup compares the identities themselves.
//
// Env.Roles and Env.Scopes are not part of the identity, by design: they
// are read only by @auth, which refuses an operation whole (there is no
// field masking: a selection that reaches a field or type the Env may not
// have is an error, never a shorter result), and is checked again at every
// Compile, so no cache entry can hand an operation to an Env that may not
// have it. Every Env that gets an operation was admitted to the same
// selection, and members with different roles receive the same bytes. If
// @auth ever masks parts of a result instead, the roles and scopes it
// reads must join the identity.
//
// The identity is built in two parts so a repeat subscribe costs nothing:
// identityPrefix, once per compiled request (document, operation name,
// coerced variables), and appendEnvIdentity, once per operation (the
// parts the Env decides). GroupKey is a seeded hash of the whole identity
// and only finds candidate groups; SameGroup compares the identities byte
// for byte, so a collision, by chance or forged, never merges two groups.

// SameGroup reports whether op and o have the same identity, so that they
// match the same events and produce identical bytes for each: whether
// their subscribers may share one group. It compares the identities in
// full (after a pointer check: equal identities compiled by one Schema
// are usually one *Operation), never only the GroupKeys. It is safe for
// concurrent use.
func (op *Operation) SameGroup(o *Operation) bool {
	return op == o || bytes.Equal(op.identity, o.identity)
}

// identityPrefix encodes the part of the identity of r's operations that
// does not depend on the Env; appendEnvIdentity appends the rest. The
// encoding is unambiguous: strings are length-prefixed, and the number of
// variables is fixed by the document that precedes them.
func (c *compiler) identityPrefix(r *request) []byte {
	b := make([]byte, 0, 256+len(r.query)+len(r.vars))
	b = appendCanonInt(b, int64(c.s.id))
	b = appendCanonInt(b, int64(r.kind))
	b = appendCanonString(append(b, 's'), r.topic)
	b = appendCanonString(append(b, 's'), r.query)
	b = appendCanonString(append(b, 's'), c.op.Name)
	for _, vd := range c.op.VariableDefinitions {
		v, ok := c.vars[vd.Variable]
		b = appendCanonBool(b, ok)
		b = appendCanon(b, v)
	}
	return b
}

// appendEnvIdentity appends the part of the identity that the Env
// decides, with p the plan built for env: every filter of r, the argument
// or claim it reads, its path and its value (claim values from env; a
// missing one as such), and with a resolver that reads the identity the
// init payload and claims the resolver gets.
func (r *request) appendEnvIdentity(b []byte, env *Env, p *plan) []byte {
	b = appendCanonBool(b, p.never)
	b = appendCanonInt(b, int64(len(r.filters)))
	for i := range r.filters {
		sl := &r.filters[i]
		f, ok := sl.f, true
		if sl.claim != "" {
			b = appendCanonString(append(b, 'c'), sl.claim)
			v, has := env.Claims[sl.claim]
			f, ok = newFilter(sl.f.path, v, false)
			ok = ok && has
		} else {
			b = appendCanonString(append(b, 'a'), sl.arg)
		}
		b = appendCanonBool(appendFilterPath(b, f.path), ok)
		if ok {
			b = appendFilterValue(b, &f)
		}
	}
	if p.resolverIdentity {
		b = appendCanonBool(b, p.initPayload == nil)
		b = appendCanonString(append(b, 's'), jsonx.View(p.initPayload))
		b = appendCanonBool(b, p.claims == nil)
		b = appendCanon(b, p.claims)
	}
	return b
}

// envIdentityCap estimates the bytes appendEnvIdentity appends for r
// without a resolver: a few per filter besides its names and value.
func envIdentityCap(r *request) int {
	n := 16
	for i := range r.filters {
		sl := &r.filters[i]
		n += 64 + len(sl.arg) + len(sl.claim) + len(sl.f.str)
		for _, seg := range sl.f.path {
			n += 4 + len(seg)
		}
	}
	return n
}

// appendFilterPath appends the identity of a filter's event path.
func appendFilterPath(b []byte, path []string) []byte {
	b = appendCanonInt(b, int64(len(path)))
	for _, seg := range path {
		b = appendCanonString(append(b, 's'), seg)
	}
	return b
}

// appendFilterValue appends the identity of the value f compares with:
// every field Match reads.
func appendFilterValue(b []byte, f *filter) []byte {
	b = appendCanonInt(b, int64(f.kind))
	b = appendCanonString(append(b, 's'), f.str)
	b = append(strconv.AppendFloat(append(b, 'd'), f.num, 'g', -1, 64), ';')
	b = appendCanonBool(b, f.isInt)
	b = appendCanonInt(b, f.i) // large integers differ where their float64 does not
	return appendCanonBool(b, f.b)
}
