package gql

import (
	"testing"
)

func TestGroupKey(t *testing.T) {
	const q = `subscription($r: ID!, $a: ID) { messages(room: $r, author: $a) { seq } }`
	const tq = `subscription { tenantEvents { seq } }`
	acme := Env{Claims: map[string]any{"tenant_id": "acme", "sub": "u1"}}
	acme2 := Env{Claims: map[string]any{"sub": "u2", "tenant_id": "acme"}, Roles: []string{"x"}}
	evil := Env{Claims: map[string]any{"tenant_id": "evil", "sub": "u1"}}
	type side struct {
		query, opName, vars string
		env                 Env
	}
	tests := []struct {
		name  string
		a, b  side
		equal bool
	}{
		{"same request", side{q, "", `{"r":"x"}`, Env{}}, side{q, "", `{"r":"x"}`, Env{}}, true},
		{"variable order does not matter", side{q, "", `{"r":"x","a":"u"}`, Env{}}, side{q, "", `{"a":"u","r":"x"}`, Env{}}, true},
		{"undeclared variables do not matter", side{q, "", `{"r":"x"}`, Env{}}, side{q, "", `{"r":"x","zzz":1}`, Env{}}, true},
		{"ID given as number or string is the same value", side{q, "", `{"r":"7"}`, Env{}}, side{q, "", `{"r":7}`, Env{}}, true},
		{"different variable values", side{q, "", `{"r":"x","a":"u"}`, Env{}}, side{q, "", `{"r":"x","a":"v"}`, Env{}}, false},
		{"null and absent variables differ", side{q, "", `{"r":"x","a":null}`, Env{}}, side{q, "", `{"r":"x"}`, Env{}}, false},
		{"different topics", side{q, "", `{"r":"x"}`, Env{}}, side{q, "", `{"r":"y"}`, Env{}}, false},
		{"different document text", side{q, "", `{"r":"x"}`, Env{}}, side{q + " ", "", `{"r":"x"}`, Env{}}, false},
		{"different operation names", side{`subscription A { ping } subscription B { ping }`, "A", ``, Env{}},
			side{`subscription A { ping } subscription B { ping }`, "B", ``, Env{}}, false},
		{"same tenant shares", side{tq, "", ``, acme}, side{tq, "", ``, acme2}, true},
		{"different tenants never share", side{tq, "", ``, acme}, side{tq, "", ``, evil}, false},
		{"missing claim does not share with a tenant", side{tq, "", ``, Env{}}, side{tq, "", ``, acme}, false},
		{"claims do not matter without claim filters or resolvers", side{q, "", `{"r":"x"}`, acme}, side{q, "", `{"r":"x"}`, evil}, true},
		{"init payload does not matter without resolvers", side{q, "", `{"r":"x"}`, Env{InitPayload: []byte(`{"a":1}`)}}, side{q, "", `{"r":"x"}`, Env{}}, true},
	}
	s := rich(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, errs := s.Compile(Request{Query: tt.a.query, OperationName: tt.a.opName, Variables: []byte(tt.a.vars)}, tt.a.env)
			if errs != nil {
				t.Fatal(errs)
			}
			b, errs := s.Compile(Request{Query: tt.b.query, OperationName: tt.b.opName, Variables: []byte(tt.b.vars)}, tt.b.env)
			if errs != nil {
				t.Fatal(errs)
			}
			if (a.GroupKey == b.GroupKey) != tt.equal {
				t.Errorf("keys %x and %x: equal = %v, want %v", a.GroupKey, b.GroupKey, a.GroupKey == b.GroupKey, tt.equal)
			}
			if tt.a.query == tt.b.query && a.DocHash != b.DocHash {
				t.Errorf("same document, different DocHash")
			}
		})
	}
}

func TestGroupKeyWithResolver(t *testing.T) {
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{Resolvers: map[string]ResolverFunc{
		"Subscription.custom": func(ctxT, ResolveParams) (any, error) { return nil, nil },
	}})
	if err != nil {
		t.Fatal(err)
	}
	q := Request{Query: `subscription { custom(room: "r") { seq } }`}
	key := func(env Env) uint64 {
		op, errs := s.Compile(q, env)
		if errs != nil {
			t.Fatal(errs)
		}
		return op.GroupKey
	}
	base := key(Env{InitPayload: []byte(`{"t":1}`), Claims: map[string]any{"sub": "a"}})
	if base != key(Env{InitPayload: []byte(`{"t":1}`), Claims: map[string]any{"sub": "a"}, Roles: []string{"r"}}) {
		t.Error("same payload and claims: keys differ")
	}
	if base == key(Env{InitPayload: []byte(`{"t":2}`), Claims: map[string]any{"sub": "a"}}) {
		t.Error("different init payloads share a key")
	}
	if base == key(Env{InitPayload: []byte(`{"t":1}`), Claims: map[string]any{"sub": "b"}}) {
		t.Error("different claims share a key")
	}
	if key(Env{}) == key(Env{Claims: map[string]any{}}) {
		t.Error("anonymous and empty claims share a key")
	}
}
