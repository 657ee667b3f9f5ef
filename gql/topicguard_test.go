package gql

import (
	"errors"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// templateSDL declares, on field x, one argument per kind of hole the
// template tests use: {s} String, {i} ID, {c} a custom scalar, {n} Int,
// {f} Float, {b} Boolean, {e} an enum.
const templateSDL = `scalar JSON
enum E { A AB }
type Query { a: Int }
type Subscription {
  x(s: String, i: ID, c: JSON, n: Int, f: Float, b: Boolean, e: E): Int
}
`

// holeRegexp is the language each hole of templateSDL stands for, written
// independently of the automaton (see TestHoleLanguagesCoverTopicValues
// for the check against what the compiler produces).
var holeRegexp = map[string]string{
	"s": `(?s:.*)`, "i": `(?s:.*)`, "c": `(?s:.*)`,
	"n": `(?:0|-?[1-9][0-9]*)`,
	"f": `[-+.e0-9]+`,
	"b": `(?:true|false)`,
	"e": `(?:A|AB)`,
}

// templateLang returns the automaton of template on field x of
// templateSDL, or ok false when the template does not parse or uses a hole
// templateSDL lacks.
func templateLang(t testing.TB, s *Schema, template string) (*topicNFA, *regexp.Regexp, bool) {
	t.Helper()
	parts, why := parseTopic(template)
	if why != "" || template == "" || !utf8.ValidString(template) { // regexp needs UTF-8
		return nil, nil, false
	}
	re := "^"
	for _, p := range parts {
		if p.arg == "" {
			re += regexp.QuoteMeta(p.lit)
			continue
		}
		h, ok := holeRegexp[p.arg]
		if !ok {
			return nil, nil, false
		}
		re += h
	}
	def := s.ast.Subscription.Fields.ForName("x")
	return s.topicLang(def, parts), regexp.MustCompile(re + "$"), true
}

func templateSchema(t testing.TB) *Schema {
	t.Helper()
	s, err := LoadSchema("t.graphql", templateSDL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// accepts runs n on topic.
func accepts(n *topicNFA, topic string) bool {
	cur := closure(n, map[int]bool{0: true})
	for i := 0; i < len(topic); i++ {
		next := map[int]bool{}
		for st := range cur {
			for _, e := range n.edges[st] {
				if e.on.has(topic[i]) {
					next[e.to] = true
				}
			}
		}
		cur = closure(n, next)
	}
	return cur[n.final]
}

// closure adds the states set reaches by epsilon moves.
func closure(n *topicNFA, set map[int]bool) map[int]bool {
	stack := make([]int, 0, len(set))
	for st := range set {
		stack = append(stack, st)
	}
	for len(stack) > 0 {
		st := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, to := range n.eps[st] {
			if !set[to] {
				set[to] = true
				stack = append(stack, to)
			}
		}
	}
	return set
}

func TestTemplatesOverlap(t *testing.T) {
	s := templateSchema(t)
	tests := []struct {
		a, b    string
		overlap bool
	}{
		{"{s}", "audit", true},
		{"{i}", "audit", true},
		{"{c}", "audit", true},
		{"public.{s}", "audit", false},
		{"public.{s}", "{s}.audit", true},
		{"public.{s}", "publi", false},
		{"public.{s}", "public.", true}, // an empty argument is a valid value
		{"orders.{i}", "orders", false},
		{"orders.{i}", "orders.42", true},
		{"a{s}b", "ab", true},
		{"a{s}b", "ba", false},
		{"{s}{s}", "x", true},
		{"{s}", "{i}", true},
		{"n.{n}", "n.0", true},
		{"n.{n}", "n.-12", true},
		{"n.{n}", "n.-", false},
		{"n.{n}", "n.007", false},
		{"n.{n}", "n.-0", false},
		{"n.{n}", "n.1.5", false},
		{"n.{n}", "n.{f}", true},
		{"n.{n}", "n.{b}", false},
		{"{n}.{n}", "1.2", true},
		{"{n}.{n}", "1..2", false},
		{"{n}", "{e}", false},
		{"{f}", "1e+21", true},
		{"{f}", "-2.5", true},
		{"{f}", "abc", false},
		{"{f}", "{b}", false},
		{"{f}x", "1", false},
		{"{b}", "true", true},
		{"{b}", "yes", false},
		{"{b}", "t{s}", true},
		{"{b}", "{e}", false},
		{"{e}", "AB", true},
		{"{e}", "ABC", false},
		{"{e}", "B", false},
		{"{e}.x", "A{s}", true},
		{"{e}{e}", "AAB", true},
		{"{e}{e}", "ABAB", true},
		{"{e}{e}", "BA", false},
		{"x", "x", true},
		{"x", "y", false},
		{"x", "xx", false},
		{"{s}.a", "{s}.b", false},
		{"{s}.a", "{s}ba", false},
		{"{s}.a", "{s}a", true},
		{"a.{s}", "ab{s}", false},
		{"a.{s}", "a{s}", true},
	}
	for _, tt := range tests {
		a, ra, ok := templateLang(t, s, tt.a)
		b, rb, okb := templateLang(t, s, tt.b)
		if !ok || !okb {
			t.Fatalf("bad test templates %q %q", tt.a, tt.b)
		}
		pa, _ := parseTopic(tt.a)
		pb, _ := parseTopic(tt.b)
		if literalsDisjoint(pa, pb) && tt.overlap {
			t.Errorf("%q and %q overlap, but literalsDisjoint says they do not", tt.a, tt.b)
		}
		for _, dir := range [][2]*topicNFA{{a, b}, {b, a}} {
			topic, got := intersect(dir[0], dir[1])
			if got != tt.overlap {
				t.Errorf("%q and %q: overlap %v, want %v (topic %q)", tt.a, tt.b, got, tt.overlap, topic)
				continue
			}
			if got && (topic == "" || !ra.MatchString(topic) || !rb.MatchString(topic)) {
				t.Errorf("%q and %q: example topic %q is not in both", tt.a, tt.b, topic)
			}
		}
	}
}

func TestOnlyEmptyTopicIsNoOverlap(t *testing.T) {
	s := templateSchema(t)
	empty := s.topicLang(s.ast.Subscription.Fields.ForName("x"), nil) // accepts "" alone
	anything, _, _ := templateLang(t, s, "{s}")
	if !accepts(empty, "") || !accepts(anything, "") {
		t.Fatal("test automata do not accept the empty topic")
	}
	if topic, ok := intersect(empty, anything); ok {
		t.Fatalf("the empty topic counts as an overlap (%q): no publish can reach it", topic)
	}
}

// TestHoleLanguagesCoverTopicValues compiles subscriptions with many
// argument values and checks that each topic the compiler builds is in the
// language the check gives the hole: the check may over-approximate, never
// miss a topic.
func TestHoleLanguagesCoverTopicValues(t *testing.T) {
	src := `scalar JSON
enum Status { PENDING PAID SHIPPED }
type Query { a: Int }
type Subscription {
  s(v: String!): Int @topic(name: "{v}")
  i(v: ID!): Int @topic(name: "{v}")
  c(v: JSON!): Int @topic(name: "{v}")
  n(v: Int!): Int @topic(name: "{v}")
  f(v: Float!): Int @topic(name: "{v}")
  b(v: Boolean!): Int @topic(name: "{v}")
  e(v: Status!): Int @topic(name: "{v}")
}`
	s, err := LoadSchema("h.graphql", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string][]string{
		"String":  {`""`, `"a.b"`, `"\u0000"`, `"é"`, `"{x}"`},
		"ID":      {`42`, `-7`, `"x"`, `""`},
		"JSON":    {`1`, `"s"`, `true`, `1.5`, `1e400`, `-0`},
		"Int":     {`0`, `-0`, `1`, `-1`, `2147483647`, `-2147483648`, `10`},
		"Float":   {`0`, `-0.0`, `1.5`, `-1.5`, `1e21`, `1e-7`, `123456789012345678901234567890`, `5e-324`, `1.7976931348623157e308`, `0.1`, `100`, `-1e-300`},
		"Boolean": {`true`, `false`},
		"Status":  {`"PENDING"`, `"PAID"`, `"SHIPPED"`},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		values["Int"] = append(values["Int"], strconv.FormatInt(int64(int32(r.Uint32())), 10))
		f := math.Float64frombits(r.Uint64())
		if !math.IsInf(f, 0) && !math.IsNaN(f) {
			values["Float"] = append(values["Float"], strconv.FormatFloat(f, 'g', -1, 64))
		}
		values["Float"] = append(values["Float"], strconv.FormatFloat(r.NormFloat64()*math.Pow10(r.IntN(40)-20), 'g', -1, 64))
	}
	fields := map[string]string{"String": "s", "ID": "i", "JSON": "c", "Int": "n", "Float": "f", "Boolean": "b", "Status": "e"}
	for typ, vals := range values {
		name := fields[typ]
		def := s.ast.Subscription.Fields.ForName(name)
		lang := s.topicLang(def, s.roots["Subscription."+name].topic)
		for _, v := range vals {
			q := "subscription($v: " + typ + "!) { " + name + "(v: $v) }"
			op, errs := s.Compile(Request{Query: q, Variables: []byte(`{"v":` + v + `}`)}, Env{})
			if len(errs) > 0 {
				t.Fatalf("%s %s: %v", typ, v, errs)
			}
			if !accepts(lang, op.Topic) {
				t.Errorf("%s value %s makes topic %q, which the %s hole does not accept", typ, v, op.Topic, typ)
			}
		}
	}
}

func TestTopicGuards(t *testing.T) {
	const types = `type Query { a: Int }
type Event { seq: Int! }
type Audit implements Node @auth(requires: ["role:admin"]) { seq: Int! }
type Public implements Node { seq: Int! }
union Entry = Public | Audit
interface Node { seq: Int! } enum Kind { A B }
`
	tests := []struct {
		name, fields string
		want         []string // substrings, one per error in order; nil = loads
	}{
		{"no guards at all", `
  events(topic: String!): Event! @topic(name: "{topic}")
  orders(id: ID!): Event! @topic(name: "orders.{id}")`, nil},
		{"catch-all next to a field @auth", `
  events(topic: String!): Event! @topic(name: "{topic}")
  admin: Event! @topic(name: "admin") @auth(requires: ["role:admin"])`,
			[]string{`s.graphql:8:3: Subscription.events (@topic "{topic}") can subscribe to the topics of Subscription.admin (s.graphql:9:3, @topic "admin") without its guards (@auth role:admin), for example to topic "admin": give Subscription.events a topic prefix of its own (for example @topic(name: "public.{topic}")) or the same guards`}},
		{"catch-all next to a type @auth", `
  events(topic: String!): Event! @topic(name: "{topic}")
  auditTrail: Audit! @topic(name: "audit")`,
			[]string{`Subscription.auditTrail (s.graphql:9:3, @topic "audit") without its guards (@auth role:admin on type Audit)`}},
		{"catch-all next to an abstract type with a guarded member", `
  events(topic: String!): Event! @topic(name: "{topic}")
  entries: Entry! @topic(name: "entries")`,
			[]string{`without its guards (@auth role:admin on type Audit), for example to topic "entries"`}},
		{"catch-all next to an interface with a guarded implementation", `
  events(topic: String!): Event! @topic(name: "{topic}")
  nodes: [Node!]! @topic(name: "nodes")`,
			[]string{`without its guards (@auth role:admin on type Audit), for example to topic "nodes"`}},
		{"catch-all next to a claim filter", `
  events(topic: String!): Event! @topic(name: "{topic}")
  orders: Event! @topic(name: "orders") @filter(field: "tenant.id", claim: "tenant_id")`,
			[]string{`without its guards (@filter(field: "tenant.id", claim: "tenant_id")), for example to topic "orders"`}},
		{"a field without @topic is its name", `
  events(topic: String!): Event! @topic(name: "{topic}")
  audit: Audit!`,
			[]string{`Subscription.audit (s.graphql:9:3, topic "audit": no @topic, so its name)`}},
		{"a free field without @topic is its name", `
  audit: Event!
  guarded: Event! @topic(name: "audit") @auth(requires: ["role:admin"])`,
			[]string{`s.graphql:8:3: Subscription.audit (topic "audit": no @topic, so its name) can subscribe to the topics of Subscription.guarded`}},
		{"every guard missing is listed", `
  events(topic: String!): Event! @topic(name: "{topic}")
  x: Audit! @topic(name: "x") @auth(requires: ["scope:x:read", "role:ops"]) @filter(field: "t", claim: "t")`,
			[]string{`without its guards (@auth role:admin on type Audit, @auth role:ops, @auth scope:x:read, @filter(field: "t", claim: "t"))`}},
		{"prefixed free field", `
  events(topic: String!): Event! @topic(name: "public.{topic}")
  admin: Event! @topic(name: "admin") @auth(requires: ["role:admin"])
  orders: Event! @topic(name: "orders") @filter(field: "tenant", claim: "tenant_id")`, nil},
		{"same topic, same guards", `
  orders: Event! @topic(name: "orders") @filter(field: "tenant", claim: "tenant_id") @auth(requires: ["role:a", "scope:b"])
  byKind(kind: Kind!): Event! @topic(name: "orders") @auth(requires: ["scope:b", "role:a"]) @filter(field: "tenant", claim: "tenant_id") @filter(field: "kind", arg: "kind")`, nil},
		{"a guard given twice is one guard", `
  a: Event! @topic(name: "t") @auth(requires: ["role:a", "role:a"])
  b: Event! @topic(name: "t") @auth(requires: ["role:a"])`, nil},
		{"a field guard equals a type guard", `
  a: Audit! @topic(name: "t")
  b: Event! @topic(name: "t") @auth(requires: ["role:admin"])`, nil},
		{"argument filters are not guards", `
  events(topic: String!): Event! @topic(name: "{topic}")
  byKind(topic: String!, kind: Kind!): Event! @topic(name: "{topic}") @filter(field: "kind", arg: "kind")`, nil},
		{"stronger guards on the same topic refuse the weaker field only", `
  orders: Event! @topic(name: "orders") @filter(field: "tenant", claim: "tenant_id")
  support: Event! @topic(name: "orders") @filter(field: "tenant", claim: "tenant_id") @auth(requires: ["role:support"])`,
			[]string{`s.graphql:8:3: Subscription.orders (@topic "orders") can subscribe to the topics of Subscription.support (s.graphql:9:3, @topic "orders") without its guards (@auth role:support)`}},
		{"different claims refuse both ways", `
  a: Event! @topic(name: "t") @filter(field: "tenant", claim: "tenant_id")
  b: Event! @topic(name: "t") @filter(field: "tenant", claim: "org_id")`,
			[]string{`s.graphql:8:3: Subscription.a`, `s.graphql:9:3: Subscription.b`}},
		{"same claim on another path is another guard", `
  a: Event! @topic(name: "t") @filter(field: "tenant", claim: "tenant_id")
  b: Event! @topic(name: "t") @filter(field: "org", claim: "tenant_id")`,
			[]string{`s.graphql:8:3: Subscription.a`, `s.graphql:9:3: Subscription.b`}},
		{"disjoint hole types", `
  byNum(n: Int!): Event! @topic(name: "n.{n}") @auth(requires: ["role:admin"])
  byKind(k: Kind!): Event! @topic(name: "n.{k}")
  byBool(b: Boolean!): Event! @topic(name: "n.{b}")`, nil},
		{"overlapping hole types", `
  byNum(n: Int!): Event! @topic(name: "n.{n}") @auth(requires: ["role:admin"])
  byFloat(f: Float!): Event! @topic(name: "n.{f}")`,
			[]string{`Subscription.byFloat (@topic "n.{f}") can subscribe to the topics of Subscription.byNum (s.graphql:8:3, @topic "n.{n}") without its guards (@auth role:admin), for example to topic "n.0"`}},
		{"errors in source order", `
  z(t: String!): Event! @topic(name: "{t}") @auth(requires: ["role:z"])
  y(t: String!): Event! @topic(name: "{t}")
  x: Event! @topic(name: "x") @auth(requires: ["role:x"])`,
			[]string{`s.graphql:8:3: Subscription.z (@topic "{t}") can subscribe to the topics of Subscription.x`,
				`s.graphql:9:3: Subscription.y (@topic "{t}") can subscribe to the topics of Subscription.z`,
				`s.graphql:9:3: Subscription.y (@topic "{t}") can subscribe to the topics of Subscription.x`,
				`s.graphql:10:3: Subscription.x (@topic "x") can subscribe to the topics of Subscription.z`}},
		{"a guarded catch-all is told to take the prefix", `
  all(t: String!): Event! @topic(name: "{t}") @auth(requires: ["role:admin"])
  news(t: String!): Event! @topic(name: "x{t}")`,
			[]string{`give Subscription.all a topic prefix of its own (for example @topic(name: "guarded.{t}")), or Subscription.news the same guards`}},
		{"two catch-alls both need a prefix", `
  all(t: String!): Event! @topic(name: "{t}") @auth(requires: ["role:admin"])
  any(t: String!): Event! @topic(name: "{t}")`,
			[]string{`give both fields topic prefixes of their own (for example @topic(name: "public.{t}") on Subscription.any and @topic(name: "guarded.{t}") on Subscription.all), or Subscription.any the same guards`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := types + "type Subscription {" + tt.fields + "\n}\n"
			_, err := LoadSchema("s.graphql", src, Options{})
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("the schema loads; want it refused")
			}
			if !errors.Is(err, ErrSchema) {
				t.Errorf("error does not wrap ErrSchema: %v", err)
			}
			lines := strings.Split(strings.TrimPrefix(err.Error(), ErrSchema.Error()+": "), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d errors, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for i, want := range tt.want {
				contains(t, lines[i], want)
			}
		})
	}
}

// TestTopicGuardsRenamedRoot: the check follows a schema definition that
// renames the subscription type, and its @auth guards every field alike.
func TestTopicGuardsRenamedRoot(t *testing.T) {
	src := `schema { query: Q subscription: S }
type Q { a: Int }
type S @auth(requires: ["role:user"]) {
  all(t: String!): Int @topic(name: "{t}")
  admin: Int @topic(name: "admin") @auth(requires: ["role:admin"])
}`
	_, err := LoadSchema("r.graphql", src, Options{})
	if err == nil {
		t.Fatal("the schema loads; want it refused")
	}
	contains(t, err.Error(), `r.graphql:4:3: S.all (@topic "{t}") can subscribe to the topics of S.admin (r.graphql:5:3, @topic "admin") without its guards (@auth role:admin)`)
	if strings.Contains(err.Error(), "role:user") {
		t.Errorf("the root type's guard, common to both, is listed: %v", err)
	}
}

// TestPrefixedFreeField: the fix the errors suggest keeps the field
// working, on topics of its own.
func TestPrefixedFreeField(t *testing.T) {
	src := `type Query { a: Int }
type Subscription {
  events(topic: String!): Int @topic(name: "public.{topic}")
  admin: Int @topic(name: "news") @auth(requires: ["role:admin"])
}`
	s, err := LoadSchema("p.graphql", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if op := mustCompile(t, s, `subscription { events(topic: "news") }`, ``, Env{}); op.Topic != "public.news" {
		t.Fatalf("topic %q, want public.news", op.Topic)
	}
}

func TestExampleSchemasLoad(t *testing.T) {
	for _, path := range []string{"../examples/schema.graphql", "../examples/secure.graphql", "testdata/rich.graphql"} {
		if _, err := LoadSchemaFile(path, Options{}); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

// maxFuzzTemplate bounds fuzzed templates so the brute-force comparison
// stays fast.
const maxFuzzTemplate = 24

// FuzzTopicOverlap checks the automata and their intersection against an
// independent model: each template as a regular expression (holeRegexp).
// Every topic of up to 4 bytes over the templates' own bytes and the
// holes' bytes must be accepted by the automaton exactly when the
// expression matches it; a topic both match means intersect must find an
// overlap; and an overlap intersect reports must come with a non-empty
// topic both match.
func FuzzTopicOverlap(f *testing.F) {
	for _, seed := range [][2]string{
		{"{s}", "audit"}, {"public.{s}", "{s}.audit"}, {"n.{n}", "n.{f}"}, {"{n}.{n}", "1..2"},
		{"{e}{e}", "ABAB"}, {"{b}", "t{s}"}, {"orders.{i}", "orders"}, {"{f}x", "1"}, {"a{c}b", "ba"},
	} {
		f.Add(seed[0], seed[1])
	}
	s := templateSchema(f)
	f.Fuzz(func(t *testing.T, ta, tb string) {
		if len(ta) > maxFuzzTemplate || len(tb) > maxFuzzTemplate {
			return
		}
		a, ra, oka := templateLang(t, s, ta)
		b, rb, okb := templateLang(t, s, tb)
		if !oka || !okb {
			return
		}
		topic, overlap := intersect(a, b)
		pa, _ := parseTopic(ta)
		pb, _ := parseTopic(tb)
		if overlap && literalsDisjoint(pa, pb) {
			t.Fatalf("%q and %q overlap on %q, but literalsDisjoint says they do not", ta, tb, topic)
		}
		if back, ok := intersect(b, a); ok != overlap {
			t.Fatalf("%q and %q: overlap %v one way, %v (%q) the other", ta, tb, overlap, ok, back)
		}
		if overlap && (topic == "" || !ra.MatchString(topic) || !rb.MatchString(topic)) {
			t.Fatalf("%q and %q: example topic %q is not in both", ta, tb, topic)
		}
		alphabet := fuzzAlphabet(ta + tb)
		for _, w := range words(alphabet, 4) {
			inA, inB := ra.MatchString(w), rb.MatchString(w)
			if accepts(a, w) != inA || accepts(b, w) != inB {
				t.Fatalf("topic %q: automata say %v %v, expressions %v %v (%q, %q)", w, accepts(a, w), accepts(b, w), inA, inB, ta, tb)
			}
			if w != "" && inA && inB && !overlap {
				t.Fatalf("%q and %q both accept %q, but intersect finds no overlap", ta, tb, w)
			}
		}
	})
}

// fuzzAlphabet returns the bytes of the literals in templates plus the
// bytes the holes are made of, at most 10 of them.
func fuzzAlphabet(templates string) []byte {
	seen := map[byte]bool{}
	var out []byte
	add := func(c byte) {
		if !seen[c] && len(out) < 10 {
			seen[c] = true
			out = append(out, c)
		}
	}
	for _, c := range []byte("0-1.eA") {
		add(c)
	}
	for i := 0; i < len(templates); i++ {
		if templates[i] != '{' && templates[i] != '}' {
			add(templates[i])
		}
	}
	return out
}

// words returns every string over alphabet of at most n bytes.
func words(alphabet []byte, n int) []string {
	out := []string{""}
	level := []string{""}
	for range n {
		var next []string
		for _, w := range level {
			for _, c := range alphabet {
				next = append(next, w+string(c))
			}
		}
		out = append(out, next...)
		level = next
	}
	return out
}

func TestNestedTopicGuards(t *testing.T) {
	const types = `type Query { a: Int }
scalar JSON
type Secret @auth(requires: ["role:x"]) { code: String }
type Customer { name: String email: String @auth(requires: ["scope:pii"]) }
type Order { id: ID! customer: Customer secret: Secret email: String @auth(requires: ["scope:pii"]) }
type Person { name: String email: String }
type Plain { code: String }
type Lite { id: ID! email: String customer: Person secret: Plain whole: JSON }
type Node { child: Node secret: String @auth(requires: ["role:x"]) }
type Node2 { child: Node2 secret: String } type Raw { id: ID! customer: JSON }
union Any = Plain | Person
`
	tests := []struct {
		name, fields string
		want         string // "" = loads
	}{
		{"the same type", `
  a: Order @topic(name: "t")
  b: Order @topic(name: "t")`, ""},
		{"another type without the guarded property", `
  a: Order @topic(name: "t")
  b: Plain @topic(name: "t")`, ""},
		{"a guarded field read through an unguarded one", `
  a: Customer @topic(name: "t")
  b: Person @topic(name: "t")`,
			`s.graphql:14:3: Subscription.b (@topic "t") can read the event property "email" of the topics of Subscription.a (s.graphql:13:3, @topic "t") through Person.email without the guards Subscription.a puts on it (@auth scope:pii on field Customer.email), for example on topic "t": put the same @auth on Person.email, return the same type from both fields, or give Subscription.b a topic of its own`},
		{"the weaker type comes first", `
  b: Person @topic(name: "t")
  a: Customer @topic(name: "t")`,
			`s.graphql:13:3: Subscription.b (@topic "t") can read the event property "email" of the topics of Subscription.a (s.graphql:14:3, @topic "t") through Person.email`},
		{"a guarded type read through an unguarded one", `
  a: Order @topic(name: "t") @auth(requires: ["scope:pii"])
  b: Lite @topic(name: "t") @auth(requires: ["scope:pii"])`,
			`through Lite.secret without the guards Subscription.a puts on it (@auth role:x on type Secret)`},
		{"nested guards held at the top", `
  a: Order @topic(name: "t") @auth(requires: ["role:x", "scope:pii"])
  b: Lite @topic(name: "t") @auth(requires: ["scope:pii", "role:x"])`, ""},
		{"two levels down", `
  a: Order @topic(name: "t") @auth(requires: ["role:x"])
  b: Lite @topic(name: "t") @auth(requires: ["role:x"])`,
			`can read the event property "customer.email" of the topics of Subscription.a (s.graphql:13:3, @topic "t") through Person.email`},
		{"a custom scalar reads the whole event", `
  a: Customer @topic(name: "t")
  b: JSON @topic(name: "t")`,
			`Subscription.b (@topic "t") can read the whole event of the topics of Subscription.a (s.graphql:13:3, @topic "t") through Subscription.b without the guards Subscription.a puts on it (@auth scope:pii on field Customer.email)`},
		{"a custom scalar reads a subtree", `
  a: Order @topic(name: "t") @auth(requires: ["role:x"])
  b: Raw @topic(name: "t") @auth(requires: ["role:x"])`,
			`Subscription.b (@topic "t") can read the event property "customer" of the topics of Subscription.a (s.graphql:13:3, @topic "t") through Raw.customer without the guards Subscription.a puts on it (@auth scope:pii on field Customer.email)`},
		{"recursive types", `
  a: Node @topic(name: "t")
  b: Node2 @topic(name: "t")`,
			`can read the event property "secret" of the topics of Subscription.a (s.graphql:13:3, @topic "t") through Node2.secret without the guards Subscription.a puts on it (@auth role:x on field Node.secret)`},
		{"a union member", `
  a: Customer @topic(name: "t")
  b: Any @topic(name: "t")`,
			`through Person.email without the guards Subscription.a puts on it (@auth scope:pii on field Customer.email)`},
		{"disjoint topics", `
  a: Order @topic(name: "t")
  b: Lite @topic(name: "u")`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSchema("s.graphql", types+"type Subscription {"+tt.fields+"\n}\n", Options{})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("the schema loads; want it refused")
			}
			contains(t, err.Error(), tt.want)
		})
	}
}

// benchTopicSchema has n subscription fields in a realistic mix: literal
// and templated topics under their own prefixes, a third of them guarded,
// and one free catch-all under a prefix of its own.
func benchTopicSchema(n int) string {
	var b strings.Builder
	b.WriteString("type Query { a: Int }\ntype Event { seq: Int! body: String }\ntype Secret @auth(requires: [\"role:admin\"]) { seq: Int! }\ntype Subscription {\n")
	b.WriteString("  events(topic: String!): Event! @topic(name: \"public.{topic}\")\n")
	for i := 0; i < n; i++ {
		switch i % 3 {
		case 0:
			b.WriteString("  f" + strconv.Itoa(i) + "(id: ID!): Event! @topic(name: \"t" + strconv.Itoa(i) + ".{id}\")\n")
		case 1:
			b.WriteString("  f" + strconv.Itoa(i) + ": Secret! @topic(name: \"s" + strconv.Itoa(i) + "\")\n")
		default:
			b.WriteString("  f" + strconv.Itoa(i) + "(n: Int!): Event! @topic(name: \"o.{n}.x" + strconv.Itoa(i) + "\") @filter(field: \"tenant\", claim: \"tenant_id\")\n")
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// BenchmarkCheckTopicGuards measures the start-up check alone on schemas
// of 100 and 1000 subscription fields (every pair is compared).
//
//	go test ./gql -run XXX -bench CheckTopicGuards -count 5
func BenchmarkCheckTopicGuards(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			s, err := LoadSchema("b.graphql", benchTopicSchema(n), Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.checkTopicGuards(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
