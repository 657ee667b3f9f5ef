package gql

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

const introSDL = `
"An event."
type Event {
  seq: Int!
  old: String @deprecated(reason: "gone")
  matrix: [[Int!]]!
}
enum Color { RED GREEN @deprecated }
input Filter { min: Int = 3, legacy: Int @deprecated }
type Query {
  serverTime: String
  find(f: Filter, legacy: Int @deprecated(reason: "no")): Event
}
type Subscription {
  events(topic: String!): Event! @topic(name: "{topic}")
}
`

// introQuery compiles and runs query against a schema of introSDL.
func introQuery(t *testing.T, opts Options, query, vars string) string {
	t.Helper()
	if opts.Resolvers == nil {
		opts.Resolvers = map[string]ResolverFunc{"Query.serverTime": func(ctxT, ResolveParams) (any, error) { return "now", nil }}
	}
	s, err := LoadSchema("intro.graphql", introSDL, opts)
	if err != nil {
		t.Fatal(err)
	}
	op, errs := s.Compile(Request{Query: query, Variables: []byte(vars)}, Env{})
	if len(errs) > 0 {
		return errorsText(errs)
	}
	return string(op.AppendQueryResult(bg(), nil))
}

func TestIntrospectionSchemaRoots(t *testing.T) {
	got := introQuery(t, Options{}, `{ serverTime __schema { __typename queryType { __typename name kind fields { name } } mutationType { name } subscriptionType { name } } }`, "")
	want := `{"data":{"serverTime":"now","__schema":{"__typename":"__Schema","queryType":{"__typename":"__Type","name":"Query","kind":"OBJECT","fields":[{"name":"serverTime"},{"name":"find"}]},"mutationType":null,"subscriptionType":{"name":"Subscription"}}}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestIntrospectionDeprecated: each alias gets the answer for its own
// includeDeprecated argument, literal or variable.
func TestIntrospectionDeprecated(t *testing.T) {
	q := `query($all: Boolean!) { __type(name: "Event") {
		a: fields { name isDeprecated }
		b: fields(includeDeprecated: true) { name isDeprecated deprecationReason }
		c: fields(includeDeprecated: $all) { name }
	} c: __type(name: "Color") { enumValues { name } all: enumValues(includeDeprecated: true) { name isDeprecated deprecationReason } }
	  f: __type(name: "Filter") { inputFields { name defaultValue } all: inputFields(includeDeprecated: true) { name } }
	  q: __type(name: "Query") { fields { name args { name } all: args(includeDeprecated: true) { name deprecationReason } } } }`
	got := introQuery(t, Options{}, q, `{"all":true}`)
	for _, want := range []string{
		`"a":[{"name":"seq","isDeprecated":false},{"name":"matrix","isDeprecated":false}]`,
		`"b":[{"name":"seq","isDeprecated":false,"deprecationReason":null},{"name":"old","isDeprecated":true,"deprecationReason":"gone"},{"name":"matrix","isDeprecated":false,"deprecationReason":null}]`,
		`"c":[{"name":"seq"},{"name":"old"},{"name":"matrix"}]`,
		`"enumValues":[{"name":"RED"}],"all":[{"name":"RED","isDeprecated":false,"deprecationReason":null},{"name":"GREEN","isDeprecated":true,"deprecationReason":"No longer supported"}]`,
		`"inputFields":[{"name":"min","defaultValue":"3"}],"all":[{"name":"min"},{"name":"legacy"}]`,
		`{"name":"find","args":[{"name":"f"}],"all":[{"name":"f","deprecationReason":null},{"name":"legacy","deprecationReason":"no"}]}`,
	} {
		contains(t, got, want)
	}
	contains(t, introQuery(t, Options{}, q, `{"all":false}`), `"c":[{"name":"seq"},{"name":"matrix"}]`)
}

func TestIntrospectionTypeRefs(t *testing.T) {
	got := introQuery(t, Options{}, `{ __type(name: "Event") { name description fields(includeDeprecated: true) { name type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }`, "")
	contains(t, got, `"description":"An event."`)
	contains(t, got, `{"name":"matrix","type":{"kind":"NON_NULL","name":null,"ofType":{"kind":"LIST","name":null,"ofType":{"kind":"LIST","name":null,"ofType":{"kind":"NON_NULL","name":null,"ofType":{"kind":"SCALAR","name":"Int"}}}}}}`)
	contains(t, got, `{"name":"seq","type":{"kind":"NON_NULL","name":null,"ofType":{"kind":"SCALAR","name":"Int","ofType":null}}}`)
	// A type reference is a whole __Type: its fields can be asked.
	contains(t, introQuery(t, Options{}, `{ __type(name: "Query") { fields { type { name fields { name } } } } }`, ""),
		`{"type":{"name":"Event","fields":[{"name":"seq"},{"name":"matrix"}]}}`)
	if got := introQuery(t, Options{}, `query($n: String!) { __type(name: $n) { name } }`, `{"n":"Nope"}`); got != `{"data":{"__type":null}}` {
		t.Errorf("unknown type: %s", got)
	}
}

func directiveNames(t *testing.T, opts Options) string {
	t.Helper()
	got := introQuery(t, opts, `{ __schema { directives { name } } }`, "")
	var names []string
	for _, part := range strings.Split(got, `"name":"`)[1:] {
		names = append(names, part[:strings.IndexByte(part, '"')])
	}
	return strings.Join(names, " ")
}

func TestIntrospectionDirectives(t *testing.T) {
	if got, want := directiveNames(t, Options{}), "include skip deprecated specifiedBy oneOf"; got != want {
		t.Errorf("directives %q, want %q", got, want)
	}
	if got, want := directiveNames(t, Options{IntrospectFraisedDirectives: true}), "include skip deprecated specifiedBy oneOf auth filter history topic"; got != want {
		t.Errorf("directives %q, want %q", got, want)
	}
	contains(t, introQuery(t, Options{IntrospectFraisedDirectives: true}, `{ __schema { directives { name isRepeatable locations args { name type { kind } } } } }`, ""),
		`{"name":"filter","isRepeatable":true,"locations":["FIELD_DEFINITION"],"args":[{"name":"field","type":{"kind":"NON_NULL"}},{"name":"arg","type":{"kind":"SCALAR"}},{"name":"claim","type":{"kind":"SCALAR"}}]}`)
}

func TestIntrospectionDisabled(t *testing.T) {
	off := Options{DisableIntrospection: true}
	for _, q := range []string{
		`{ __schema { queryType { name } } }`,
		`{ serverTime __type(name: "Event") { name } }`,
		`{ ...F } fragment F on Query { ... on Query { x: __schema { __typename } } }`,
	} {
		got := introQuery(t, off, q, "")
		contains(t, got, `"extensions":{"code":"INTROSPECTION_DISABLED"}`)
		contains(t, got, `introspection is disabled on this server`)
	}
	if got := introQuery(t, off, `{ __typename serverTime }`, ""); got != `{"data":{"__typename":"Query","serverTime":"now"}}` {
		t.Errorf("__typename with introspection off: %s", got)
	}
}

// TestIntrospectionDepth applies graphql-js's MaxIntrospectionDepthRule,
// through fragments too, and exempts introspection from depth and
// complexity limits.
func TestIntrospectionDepth(t *testing.T) {
	deep := `{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }`
	contains(t, introQuery(t, Options{}, deep, ""), `Maximum introspection depth exceeded`)
	frag := `{ __type(name: "Query") { ...A } } fragment A on __Type { fields { type { ...B } } } fragment B on __Type { interfaces { possibleTypes { name } } }`
	contains(t, introQuery(t, Options{}, frag, ""), `Maximum introspection depth exceeded`)
	ok := `{ __schema { types { fields { type { fields { name } } } } } }`
	contains(t, introQuery(t, Options{}, ok, ""), `{"data":{"__schema":{"types":[`)

	tight := Options{Limits: Limits{MaxDepth: 2, MaxComplexity: 3}}
	typeRef := `{ __schema { types { fields(includeDeprecated: true) { args { type { kind ofType { kind ofType { kind ofType { kind ofType { kind ofType { name } } } } } } } } } } }`
	contains(t, introQuery(t, tight, typeRef, ""), `{"data":{"__schema":{"types":[`)
	contains(t, introQuery(t, tight, `{ serverTime __schema { types { name } } }`, ""), `"serverTime":"now"`)
	contains(t, introQuery(t, Options{Limits: Limits{MaxAliases: 1}}, `{ __schema { a: types { name } b: types { name } } }`, ""), `alias count is 2`)
}

func TestIntrospectionNotOnSubscriptions(t *testing.T) {
	contains(t, introQuery(t, Options{}, `subscription { __schema { queryType { name } } }`, ""), `Cannot query field \"__schema\" on type \"Subscription\"`)
}

// TestIntrospectionTooLarge: an answer past maxIntrospectionBytes is a
// field error, not an unbounded allocation.
func TestIntrospectionTooLarge(t *testing.T) {
	var b strings.Builder
	desc := strings.Repeat("d", 400)
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, "type T%d {\n", i)
		for j := 0; j < 80; j++ {
			fmt.Fprintf(&b, "  \"%s\"\n  f%d: Int\n", desc, j)
		}
		b.WriteString("}\n")
	}
	b.WriteString("type Query { t: T0 }\n")
	s, err := LoadSchema("big.graphql", b.String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	op := mustCompile(t, s, `{ __schema { types { fields { description } } } }`, "", Env{})
	got := string(op.AppendQueryResult(bg(), nil))
	if len(got) > 1024 {
		t.Fatalf("got %d bytes", len(got))
	}
	contains(t, got, `{"data":null,"errors":[{"message":"introspection answer is larger than 8388608 bytes: select fewer nested fields"`)
	// The same schema's usual introspection still answers.
	contains(t, string(mustCompile(t, s, `{ __schema { types { name } } }`, "", Env{}).AppendQueryResult(bg(), nil)), `{"name":"T299"}`)
}

// TestIntrospectionBytesShared: the introspection roots of one result
// share maxIntrospectionBytes; aliases of __schema do not multiply it.
func TestIntrospectionBytesShared(t *testing.T) {
	var b strings.Builder
	desc := strings.Repeat("d", 400)
	for i := 0; i < 150; i++ { // each answer below is about 5 MB
		fmt.Fprintf(&b, "type T%d {\n", i)
		for j := 0; j < 80; j++ {
			fmt.Fprintf(&b, "  \"%s\"\n  f%d: Int\n", desc, j)
		}
		b.WriteString("}\n")
	}
	b.WriteString("type Query { t: T0 }\n")
	s, err := LoadSchema("big.graphql", b.String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	one := `__schema { types { fields { description } } }`
	if got := string(mustCompile(t, s, `{ `+one+` }`, "", Env{}).AppendQueryResult(bg(), nil)); strings.Contains(got, `"errors"`) {
		t.Fatalf("one answer failed: %.200s", got)
	}
	got := string(mustCompile(t, s, `{ a: `+one+` b: `+one+` }`, "", Env{}).AppendQueryResult(bg(), nil))
	if len(got) > 1024 {
		t.Fatalf("got %d bytes", len(got))
	}
	contains(t, got, `"message":"introspection answer is larger than 8388608 bytes: select fewer nested fields"`)
	contains(t, got, `"path":["b"]`)
}

// TestFieldWithoutResolver: a query field without a resolver is still a
// field error; introspection is not one.
func TestFieldWithoutResolver(t *testing.T) {
	op := mustCompile(t, rich(t), `{ me { id } __type(name: "Status") { kind } }`, "", Env{})
	got := string(op.AppendQueryResult(bg(), nil))
	want := `{"data":{"me":null,"__type":{"kind":"ENUM"}},"errors":[{"message":"field \"Query.me\" has no resolver","locations":[{"line":1,"column":3}],"path":["me"]}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// introspectionQuery is graphql-js 16's getIntrospectionQuery() with every
// option on (testdata/introspection_query.graphql).
func introspectionQuery(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("testdata/introspection_query.graphql")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestIntrospectionQueryDefaultLimits: the query every tool sends passes
// the default limits and answers the whole schema.
func TestIntrospectionQueryDefaultLimits(t *testing.T) {
	got := introQuery(t, Options{}, introspectionQuery(t), "")
	for _, want := range []string{`{"data":{"__schema":{"description":null,"queryType":{"name":"Query","kind":"OBJECT"}`, `"name":"Event","description":"An event."`, `"name":"Filter","description":null,"specifiedByURL":null,"isOneOf":false`} {
		contains(t, got, want)
	}
	if strings.Contains(got, `"errors"`) {
		t.Errorf("errors: %s", got)
	}
}

// BenchmarkIntrospectionQuery answers getIntrospectionQuery() on the rich
// test schema (compiled once, cached).
func BenchmarkIntrospectionQuery(b *testing.B) {
	s := rich(b)
	q := introspectionQuery(b)
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		op, errs := s.Compile(Request{Query: q}, Env{})
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		out = op.AppendQueryResult(bg(), out[:0])
	}
	b.SetBytes(int64(len(out)))
}

// TestIntrospectionDepthWalkBounded: with unlimited fragment spreads, a
// document whose root fragments expand exponentially is refused by the
// walk's cap instead of being walked for ever.
func TestIntrospectionDepthWalkBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("{ ...F0 }\n")
	const n = 30
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Query { __typename }\n", n)
	got := introQuery(t, Options{Limits: Limits{MaxFragmentSpreads: -1, MaxComplexity: -1, MaxDocumentBytes: -1, MaxRootFields: -1}}, b.String(), "")
	contains(t, got, "more than 100000 selections")
}
