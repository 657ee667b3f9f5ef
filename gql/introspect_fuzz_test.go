package gql

import (
	"encoding/json"
	"testing"
)

// FuzzIntrospect compiles arbitrary documents against a schema with every
// kind of type and runs the queries among them: introspection must never
// panic, and every result must be JSON with data or errors.
func FuzzIntrospect(f *testing.F) {
	for _, q := range []string{
		`{ __schema { types { kind name fields(includeDeprecated: true) { name args { name defaultValue type { kind name ofType { kind name } } } } } } }`,
		`{ __schema { queryType { name } subscriptionType { fields { name } } directives { name locations isRepeatable args { name } } } }`,
		`query($n: String!, $d: Boolean!) { t: __type(name: $n) { enumValues(includeDeprecated: $d) { name } inputFields { name } possibleTypes { name } interfaces { name } ofType { name } } }`,
		`{ a: __type(name: "Event") { ...T } } fragment T on __Type { fields { type { ...R } } } fragment R on __Type { kind ofType { kind ofType { kind } } }`,
		`{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }`,
		`{ __typename x: __type(name: "__Type") { fields { name } } }`,
	} {
		f.Add(q, []byte(`{"n":"Filter","d":true}`))
	}
	s, err := LoadSchema("intro.graphql", introSDL, Options{Resolvers: map[string]ResolverFunc{"Query.serverTime": func(ctxT, ResolveParams) (any, error) { return "now", nil }}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query string, vars []byte) {
		op, errs := s.Compile(Request{Query: query, Variables: vars}, Env{})
		if len(errs) > 0 || op.Kind != KindQuery {
			return
		}
		out := op.AppendQueryResult(bg(), nil)
		var v map[string]json.RawMessage
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("result is not JSON: %v\n%s", err, out)
		}
		if _, ok := v["data"]; !ok {
			t.Fatalf("result has no data: %s", out)
		}
	})
}
