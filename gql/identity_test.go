package gql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
)

// collide is an Options.HashForTests that makes every hash the schema
// computes equal: its caches, its interner and GroupKey see nothing but
// collisions, so only full comparisons can keep operations apart.
func collide(uint64) uint64 { return 0xc0111de }

// identitySchema loads the rich schema with a Subscription.custom
// resolver whose result shows the init payload and the "sub" claim it
// saw; hash is Options.HashForTests.
func identitySchema(t testing.TB, hash func(uint64) uint64) *Schema {
	t.Helper()
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{HashForTests: hash, Resolvers: map[string]ResolverFunc{
		"Subscription.custom": func(_ context.Context, p ResolveParams) (any, error) {
			text, _ := json.Marshal(fmt.Sprintf("%s|%v", p.InitPayload, p.Claims["sub"]))
			return json.RawMessage(`{"seq":1,"text":` + string(text) + `}`), nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// identityCase is one compilation: distinct cases must never share an
// operation or a group.
type identityCase struct {
	name, query, opName, vars string
	env                       Env
}

const (
	roomQuery   = `subscription($r: ID!, $a: ID) { messages(room: $r, author: $a) { seq author { ... on User { id } } } }`
	tenantDoc   = `subscription($k: String) { tenantEvents(kind: $k) { seq text } }`
	customQuery = `subscription { custom(room: "r") { seq text } }`
	twoOps      = `subscription A { ping } subscription B { ping }`
)

var distinctCases = []identityCase{
	{"room x", roomQuery, "", `{"r":"x"}`, Env{}},
	{"room x, author u", roomQuery, "", `{"r":"x","a":"u"}`, Env{}},
	{"room x, author v", roomQuery, "", `{"r":"x","a":"v"}`, Env{}},
	{"room x, author null", roomQuery, "", `{"r":"x","a":null}`, Env{}},
	{"room y", roomQuery, "", `{"r":"y"}`, Env{}},
	{"room x, other text", roomQuery + " ", "", `{"r":"x"}`, Env{}},
	{"operation A", twoOps, "A", ``, Env{}},
	{"operation B", twoOps, "B", ``, Env{}},
	{"tenant acme", tenantDoc, "", ``, Env{Claims: map[string]any{"tenant_id": "acme"}}},
	{"tenant evil", tenantDoc, "", ``, Env{Claims: map[string]any{"tenant_id": "evil"}}},
	{"no tenant", tenantDoc, "", ``, Env{Claims: map[string]any{}}},
	{"tenant acme, kind acme", tenantDoc, "", `{"k":"acme"}`, Env{Claims: map[string]any{"tenant_id": "acme"}}},
	{"tenant 2^53", tenantDoc, "", ``, Env{Claims: map[string]any{"tenant_id": json.Number("9007199254740992")}}},
	{"tenant 2^53+1", tenantDoc, "", ``, Env{Claims: map[string]any{"tenant_id": json.Number("9007199254740993")}}},
	{"author 2^53", roomQuery, "", `{"r":"x","a":9007199254740992}`, Env{}},
	{"author 2^53+1", roomQuery, "", `{"r":"x","a":9007199254740993}`, Env{}},
	{"seq 7", `subscription($s: Int) { bySeq(seq: $s) { seq } }`, "", `{"s":7}`, Env{}},
	{"score 7", `subscription($s: Float) { bySeq(score: $s) { seq } }`, "", `{"s":7}`, Env{}},
	{"resolver, payload 1, sub a", customQuery, "", ``, Env{InitPayload: []byte(`{"t":1}`), Claims: map[string]any{"sub": "a"}}},
	{"resolver, payload 2, sub a", customQuery, "", ``, Env{InitPayload: []byte(`{"t":2}`), Claims: map[string]any{"sub": "a"}}},
	{"resolver, payload 1, sub b", customQuery, "", ``, Env{InitPayload: []byte(`{"t":1}`), Claims: map[string]any{"sub": "b"}}},
	{"resolver, anonymous", customQuery, "", ``, Env{}},
}

// identityEvents exercise every filter of distinctCases.
var identityEvents = []string{
	`{"seq":1,"author":{"__typename":"User","id":"u"},"tenant":"acme","kind":"acme"}`,
	`{"seq":2,"author":{"__typename":"User","id":"v"},"tenant":"evil","kind":"deploy"}`,
	`{"seq":3,"tenant":"acme","kind":"deploy"}`,
	`{"seq":4,"tenant":9007199254740992,"author":{"__typename":"User","id":9007199254740992}}`,
	`{"seq":5,"tenant":9007199254740993,"author":{"__typename":"User","id":9007199254740993}}`,
	`{"seq":7,"score":1}`,
	`{"seq":1,"score":7}`,
}

func (c identityCase) compile(t *testing.T, s *Schema) *Operation {
	t.Helper()
	op, errs := s.Compile(Request{Query: c.query, OperationName: c.opName, Variables: []byte(c.vars)}, c.env)
	if errs != nil {
		t.Fatalf("%s: %v", c.name, errs)
	}
	return op
}

// behaves fails unless op matches and projects every identity event as
// want does, and has its topic.
func behaves(t *testing.T, name string, op, want *Operation) {
	t.Helper()
	if op.Topic != want.Topic {
		t.Errorf("%s: topic %q, want %q", name, op.Topic, want.Topic)
	}
	for _, ev := range identityEvents {
		if got, exp := op.Match([]byte(ev)), want.Match([]byte(ev)); got != exp {
			t.Errorf("%s: Match(%s) = %v, want %v", name, ev, got, exp)
		}
		if got, exp := op.AppendResult(nil, []byte(ev)), want.AppendResult(nil, []byte(ev)); !bytes.Equal(got, exp) {
			t.Errorf("%s: AppendResult(%s) = %s, want %s", name, ev, got, exp)
		}
	}
}

// TestConstantHashKeepsOperationsApart: with every hash equal, distinct
// requests and Envs still compile to distinct operations that behave as
// they do without collisions, on the first compilation and on cache hits,
// and equal ones still share.
func TestConstantHashKeepsOperationsApart(t *testing.T) {
	s, ref := identitySchema(t, collide), identitySchema(t, nil)
	ops := make([]*Operation, len(distinctCases))
	for i, c := range distinctCases {
		ops[i] = c.compile(t, s)
		behaves(t, c.name, ops[i], c.compile(t, ref))
	}
	for i, a := range ops {
		for j, b := range ops[:i] {
			if a.GroupKey != b.GroupKey {
				t.Fatalf("HashForTests not applied: keys %x and %x", a.GroupKey, b.GroupKey)
			}
			if a == b || a.SameGroup(b) || b.SameGroup(a) {
				t.Errorf("%q and %q share a group", distinctCases[i].name, distinctCases[j].name)
			}
		}
	}
	for i := len(distinctCases) - 1; i >= 0; i-- { // every cache hit is a collision too
		c := distinctCases[i]
		if op := c.compile(t, s); op != ops[i] {
			t.Errorf("%s: compiled again to another operation", c.name)
			behaves(t, c.name+" again", op, ops[i])
		}
	}
	if n := s.ops.len(); n != len(ops) {
		t.Errorf("interner holds %d operations, want %d", n, len(ops))
	}
	runtime.KeepAlive(ops)
}

// TestConstantHashStillShares: equal identities share one operation when
// every hash collides.
func TestConstantHashStillShares(t *testing.T) {
	s := identitySchema(t, collide)
	for _, tt := range []struct {
		name string
		a, b identityCase
	}{
		{"variable order", identityCase{"", roomQuery, "", `{"r":"x","a":"u"}`, Env{}}, identityCase{"", roomQuery, "", `{"a":"u","r":"x"}`, Env{}}},
		{"ID as number or string", identityCase{"", roomQuery, "", `{"r":"7"}`, Env{}}, identityCase{"", roomQuery, "", `{"r":7}`, Env{}}},
		{"same tenant, other subject", identityCase{"", tenantDoc, "", ``, Env{Claims: map[string]any{"tenant_id": "acme", "sub": "1"}}},
			identityCase{"", tenantDoc, "", ``, Env{Claims: map[string]any{"tenant_id": "acme", "sub": "2"}}}},
		{"roles and scopes", identityCase{"", roomQuery, "", `{"r":"x"}`, Env{Roles: []string{"admin"}}},
			identityCase{"", roomQuery, "", `{"r":"x"}`, Env{Scopes: []string{"orders:read"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.a.compile(t, s), tt.b.compile(t, s)
			if a != b || !a.SameGroup(b) {
				t.Error("equal identities did not share an operation")
			}
		})
	}
}

// TestRolesAdmitButDoNotShape: roles and scopes decide whether Compile
// returns an operation, never what it produces, so Envs with different
// roles that are admitted share one operation, and an Env without the
// role is refused even when the operation is cached and every hash
// collides.
func TestRolesAdmitButDoNotShape(t *testing.T) {
	s := identitySchema(t, collide)
	const q = `subscription { scoped { seq text } }`
	admin := Env{Roles: []string{"admin"}, Scopes: []string{"orders:read"}}
	more := Env{Roles: []string{"admin", "ops"}, Scopes: []string{"orders:read", "orders:write"}, Claims: map[string]any{"sub": "x"}}
	a := mustCompile(t, s, q, ``, admin)
	if b := mustCompile(t, s, q, ``, more); b != a {
		t.Error("admitted Envs with different roles got different operations")
	}
	for _, env := range []Env{{}, {Roles: []string{"admin"}}, {Scopes: []string{"orders:read"}}, {Roles: []string{"ops"}, Scopes: []string{"orders:read"}}} {
		if op, errs := s.Compile(Request{Query: q}, env); op != nil || errs == nil {
			t.Errorf("roles %v scopes %v: admitted to a cached operation", env.Roles, env.Scopes)
		}
	}
	runtime.KeepAlive(a)
}

// TestIdentityNamesEveryFilter: a filter's identity holds its source (an
// argument or a claim, by name) and its path as well as its value, so
// filters that compare the same value elsewhere or from elsewhere never
// share an operation even on an otherwise equal request.
func TestIdentityNamesEveryFilter(t *testing.T) {
	acme, _ := newFilter([]string{"tenant"}, "acme", false)
	acmeAB, _ := newFilter([]string{"a", "b"}, "acme", false)
	acmeDotted, _ := newFilter([]string{"a.b"}, "acme", false)
	env := &Env{Claims: map[string]any{"tenant": "acme", "org": "acme"}}
	id := func(slots ...filterSlot) string {
		r := &request{filters: slots}
		for _, sl := range slots {
			r.claimFilters = r.claimFilters || sl.claim != ""
		}
		return string(r.appendEnvIdentity(nil, env, &plan{}))
	}
	claim := func(name string, path ...string) filterSlot {
		return filterSlot{f: filter{path: path}, claim: name}
	}
	ids := map[string]string{
		"arg tenant":          id(filterSlot{f: acme, arg: "tenant"}),
		"arg org":             id(filterSlot{f: acme, arg: "org"}),
		"claim tenant":        id(claim("tenant", "tenant")),
		"claim org":           id(claim("org", "tenant")),
		"claim missing":       id(claim("nobody", "tenant")),
		"path a, b":           id(filterSlot{f: acmeAB, arg: "tenant"}),
		"path a.b":            id(filterSlot{f: acmeDotted, arg: "tenant"}),
		"two filters":         id(filterSlot{f: acme, arg: "tenant"}, claim("tenant", "tenant")),
		"two filters swapped": id(claim("tenant", "tenant"), filterSlot{f: acme, arg: "tenant"}),
		"none":                id(),
	}
	seen := map[string]string{}
	for name, b := range ids {
		if other, ok := seen[b]; ok {
			t.Errorf("%q and %q have the same identity %q", name, other, b)
		}
		seen[b] = name
	}
}

// FuzzIdentityUnderCollisions compiles two requests on a schema whose
// hashes all collide and on one whose hashes do not: the operations must
// behave alike on both, and share on the colliding schema exactly when
// they share on the other (sharing means equal identities).
func FuzzIdentityUnderCollisions(f *testing.F) {
	f.Add(roomQuery, []byte(`{"r":"x","a":"u"}`), roomQuery, []byte(`{"a":"u","r":"x"}`), "acme", "evil")
	f.Add(roomQuery, []byte(`{"r":"x","a":"u"}`), roomQuery, []byte(`{"r":"x","a":"v"}`), "acme", "acme")
	f.Add(tenantDoc, []byte(`{"k":"acme"}`), tenantDoc, []byte(`{}`), "acme", "acme")
	f.Add(tenantDoc, []byte(nil), tenantDoc, []byte(nil), "acme", "evil")
	f.Add(tenantDoc, []byte(nil), tenantDoc+"#x", []byte(nil), "acme", "acme")
	f.Add(customQuery, []byte(nil), customQuery, []byte(nil), "a", "b")
	f.Add(`subscription($s: Int, $f: Float) { bySeq(seq: $s, score: $f) { seq } }`, []byte(`{"s":7}`),
		`subscription($s: Int, $f: Float) { bySeq(seq: $s, score: $f) { seq } }`, []byte(`{"f":7}`), "", "")
	s, ref := identitySchema(f, collide), identitySchema(f, nil)
	env := func(tenant string) Env {
		if tenant == "" {
			return Env{}
		}
		return Env{InitPayload: []byte(`{"t":"` + tenant + `"}`), Claims: map[string]any{"tenant_id": tenant, "sub": tenant}}
	}
	f.Fuzz(func(t *testing.T, q1 string, v1 []byte, q2 string, v2 []byte, t1, t2 string) {
		compile := func(s *Schema, q string, v []byte, tenant string) *Operation {
			op, _ := s.Compile(Request{Query: q, Variables: v}, env(tenant))
			if op == nil || op.Kind != KindSubscription {
				return nil
			}
			return op
		}
		a, b := compile(s, q1, v1, t1), compile(s, q2, v2, t2)
		ra, rb := compile(ref, q1, v1, t1), compile(ref, q2, v2, t2)
		if (a == nil) != (ra == nil) || (b == nil) != (rb == nil) {
			t.Fatal("the colliding schema compiles what the other refuses, or the reverse")
		}
		if a == nil || b == nil {
			return
		}
		behaves(t, "first", a, ra)
		behaves(t, "second", b, rb)
		if (a == b) != (ra == rb) || a.SameGroup(b) != (a == b) {
			t.Fatalf("colliding schema shares: %v (SameGroup %v); the other: %v", a == b, a.SameGroup(b), ra == rb)
		}
	})
}
