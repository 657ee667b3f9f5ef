package gql

import (
	"fmt"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name      string
		req       Request
		env       Env
		want      string // the errors as JSON must contain this
		wantLines bool   // every error has a location
	}{
		{"syntax error", Request{Query: `subscription { messages(room: "r") { seq }`},
			Env{}, `"message":"Expected Name, found <EOF>","locations":[{"line":1,"column":43}]`, true},
		{"empty document", Request{Query: ``}, Env{}, `[{"message":"Unexpected <EOF>","locations":[{"line":1,"column":1}]}]`, true},
		{"unknown field", Request{Query: `subscription { messages(room: "r") { nope } }`},
			Env{}, `Cannot query field \"nope\" on type \"Message\". Did you mean \"node\"?","locations":[{"line":1,"column":38}]`, true},
		{"missing required argument", Request{Query: `subscription { messages { seq } }`},
			Env{}, `Field \"messages\" argument \"room\" of type \"ID!\" is required`, true},
		{"unknown operation name", Request{Query: `query A { serverTime } query B { serverTime }`, OperationName: "C"},
			Env{}, `[{"message":"Unknown operation named \"C\"."}]`, false},
		{"several operations without a name", Request{Query: `query A { serverTime } query B { serverTime }`},
			Env{}, `[{"message":"Must provide operation name if query contains multiple operations."}]`, false},
		{"mutation", Request{Query: `mutation { x }`},
			Env{}, `Schema does not support operation type \"mutation\"`, true},
		{"two root fields through aliases", Request{Query: `subscription { a: messages(room: "r") { seq } b: messages(room: "r") { seq } }`},
			Env{}, `[{"message":"Anonymous Subscription must select only one top level field.","locations":[{"line":1,"column":47}]}]`, true},
		{"two root fields", Request{Query: `subscription S { ping numbers }`},
			Env{}, `Subscription \"S\" must select only one top level field.`, true},
		{"root field skipped", Request{Query: `subscription { ping @skip(if: true) }`},
			Env{}, `"message":"Anonymous Subscription must select one top level field."`, true},
		{"variables not an object", Request{Query: `subscription($r: ID!) { messages(room: $r) { seq } }`, Variables: []byte(`[1]`)},
			Env{}, `variables must be a JSON object`, false},
		{"variables with trailing data", Request{Query: `subscription($r: ID!) { messages(room: $r) { seq } }`, Variables: []byte(`{"r":"x"} {}`)},
			Env{}, `variables must be a JSON object`, false},
		{"missing required variable", Request{Query: `subscription($r: ID!) { messages(room: $r) { seq } }`},
			Env{}, `"message":"must be defined","path":["variable","r"]`, false},
		{"variable of the wrong type", Request{Query: `subscription($r: ID!, $s: Int) { messages(room: $r, minSeq: $s) { seq } }`, Variables: []byte(`{"r":"x","s":"7"}`)},
			Env{}, `Variable \"$s\" got invalid value \"7\"; Int cannot represent non-integer value: \"7\"","locations":[{"line":1,"column":23}]`, true},
		{"Int variable beyond 32 bits", Request{Query: `subscription($s: Int) { messages(room: "r", minSeq: $s) { seq } }`, Variables: []byte(`{"s":4294967296}`)},
			Env{}, `Int cannot represent non 32-bit signed integer value: 4294967296`, true},
		{"enum variable in the wrong case", Request{Query: `subscription($s: Status) { byStatus(status: $s) { seq } }`, Variables: []byte(`{"s":"active"}`)},
			Env{}, `value \"active\" does not exist in \"Status\" enum`, true},
		{"enum variable not a member", Request{Query: `subscription($s: Status) { byStatus(status: $s) { seq } }`, Variables: []byte(`{"s":"GONE"}`)},
			Env{}, `GONE is not a valid Status`, false},
		{"Int literal beyond 32 bits", Request{Query: `subscription { messages(room: "r", minSeq: 3000000000) { seq } }`},
			Env{}, `Argument \"minSeq\" has invalid value 3000000000: Int cannot represent non 32-bit signed integer value: 3000000000","locations":[{"line":1,"column":44}]`, true},
		{"topic argument without value", Request{Query: `subscription($r: ID) { custom(room: $r) { seq } }`},
			Env{}, `Variable \"$r\" of type \"ID\" used in position expecting type \"ID!\".`, true},
	}
	s := rich(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, errs := s.Compile(tt.req, tt.env)
			if op != nil || len(errs) == 0 {
				t.Fatalf("want errors, got an operation")
			}
			contains(t, errorsText(errs), tt.want)
			for _, e := range errs {
				if tt.wantLines && len(e.Locations) == 0 {
					t.Errorf("error %q has no location", e.Message)
				}
			}
		})
	}
}

func TestCompileMutationSupportedBySchema(t *testing.T) {
	s, err := LoadSchema("m.graphql", "type Query { a: Int }\ntype Mutation { b: Int }", Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, errs := s.Compile(Request{Query: "\n  mutation { b }"}, Env{})
	if got, want := errorsText(errs), `[{"message":"mutations are not supported","locations":[{"line":2,"column":3}]}]`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestCompileSelectsOperation(t *testing.T) {
	s := rich(t)
	doc := `query A { serverTime } subscription B { ping } subscription C { numbers }`
	for name, field := range map[string]string{"B": "ping", "C": "numbers"} {
		op, errs := s.Compile(Request{Query: doc, OperationName: name}, Env{})
		if errs != nil {
			t.Fatal(errs)
		}
		if op.Field != field || op.OperationName != name || op.Kind != KindSubscription {
			t.Errorf("%s: got field %q name %q kind %v", name, op.Field, op.OperationName, op.Kind)
		}
	}
	op, _ := s.Compile(Request{Query: doc, OperationName: "A"}, Env{})
	if op.Kind != KindQuery || op.Topic != "" || op.Field != "" {
		t.Errorf("query: got %+v", op)
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		query  string
		want   string // "" = compiles
	}{
		{"depth at the limit", Limits{MaxDepth: 3}, `subscription { messages(room: "r") { replies { seq } } }`, ""},
		{"depth over the limit", Limits{MaxDepth: 2}, `subscription { messages(room: "r") { replies { seq } } }`,
			`"operation depth is 3, more than the limit of 2","locations":[{"line":1,"column":1}]`},
		{"depth through fragments", Limits{MaxDepth: 2}, `subscription { messages(room: "r") { ...F } } fragment F on Message { replies { seq } }`,
			`operation depth is 3`},
		{"aliases", Limits{MaxAliases: 1}, `subscription { messages(room: "r") { a: seq b: seq seq } }`, `operation alias count is 2, more than the limit of 1`},
		{"root fields", Limits{MaxRootFields: 1}, `{ serverTime ...Q } fragment Q on Query { me { id } }`, `operation root field count is 2, more than the limit of 1`},
		{"fragment spreads counted at every expansion", Limits{MaxFragmentSpreads: 2},
			`subscription { messages(room: "r") { ...A ...A } } fragment A on Message { ...B } fragment B on Message { seq }`,
			`operation fragment spread count is 4, more than the limit of 2`},
		{"complexity counts lists ten times", Limits{MaxComplexity: 22},
			`subscription { messages(room: "r") { seq replies { seq text } } }`,
			`operation complexity is 32, more than the limit of 22`},
		{"complexity at the limit", Limits{MaxComplexity: 32},
			`subscription { messages(room: "r") { seq replies { seq text } } }`, ""},
		{"nested lists", Limits{MaxComplexity: 100}, `subscription { messages(room: "r") { matrix } }`,
			`operation complexity is 101, more than the limit of 100`},
		{"document size", Limits{MaxDocumentBytes: 10}, `subscription { ping }`,
			`[{"message":"document is 21 bytes, more than the limit of 10"}]`},
		{"unlimited", Limits{MaxDepth: -1, MaxAliases: -1, MaxRootFields: -1, MaxFragmentSpreads: -1, MaxComplexity: -1, MaxDocumentBytes: -1},
			`{ a: serverTime b: serverTime c: serverTime d: serverTime e: serverTime f: serverTime g: serverTime h: serverTime i: serverTime j: serverTime k: serverTime }`, ""},
		{"default root field limit", Limits{},
			`{ a: serverTime b: serverTime c: serverTime d: serverTime e: serverTime f: serverTime g: serverTime h: serverTime i: serverTime j: serverTime k: serverTime }`,
			`operation root field count is 11, more than the limit of 10`},
		{"exponential fragments", Limits{},
			`{ me { ...F0 } } fragment F0 on User { ...F1 ...F1 } fragment F1 on User { ...F2 ...F2 } fragment F2 on User { ...F3 ...F3 }
			 fragment F3 on User { ...F4 ...F4 } fragment F4 on User { ...F5 ...F5 } fragment F5 on User { ...F6 ...F6 } fragment F6 on User { id }`,
			`operation fragment spread count is 127, more than the limit of 50`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadSchemaFile("testdata/rich.graphql", Options{Limits: tt.limits})
			if err != nil {
				t.Fatal(err)
			}
			_, errs := s.Compile(Request{Query: tt.query}, Env{})
			if tt.want == "" {
				if errs != nil {
					t.Fatal(errs)
				}
				return
			}
			contains(t, errorsText(errs), tt.want)
		})
	}
}

func TestPlanSizeCapWhenUnlimited(t *testing.T) {
	// Each level selects replies twice under different keys, so the plan
	// doubles per level: 2^15 fields once expanded.
	var b strings.Builder
	b.WriteString(`subscription { messages(room: "r") { ...F0 } }`)
	for i := 0; i < 15; i++ {
		fmt.Fprintf(&b, " fragment F%d on Message { seq replies { ...F%d } again: replies { ...F%d } }", i, i+1, i+1)
	}
	b.WriteString(" fragment F15 on Message { seq }")
	lim := Limits{MaxDepth: -1, MaxAliases: -1, MaxRootFields: -1, MaxFragmentSpreads: -1, MaxComplexity: -1}
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	_, errs := s.Compile(Request{Query: b.String()}, Env{})
	contains(t, errorsText(errs), `operation selects more than 10000 fields once fragments are expanded`)
	// With the default limits the complexity limit refuses it first.
	_, errs = rich(t).Compile(Request{Query: b.String()}, Env{})
	contains(t, errorsText(errs), `operation complexity is`)
}

func TestDocumentCache(t *testing.T) {
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := `subscription($r: ID!) { messages(room: $r) { seq } }`
	a := mustCompile(t, s, q, `{"r":"a"}`, Env{})
	b := mustCompile(t, s, q, `{"r":"b"}`, Env{})
	if s.cache.len() != 1 || a.Topic != "rooms.a" || b.Topic != "rooms.b" {
		t.Fatalf("cache len %d, topics %q %q", s.cache.len(), a.Topic, b.Topic)
	}
	for i := 0; i < docCacheEntries+10; i++ {
		s.Compile(Request{Query: "{ serverTime } # " + strings.Repeat("x", i)}, Env{})
	}
	if n := s.cache.len(); n != docCacheEntries {
		t.Errorf("cache holds %d documents, want %d", n, docCacheEntries)
	}
	// Invalid documents are cached with their errors.
	_, e1 := s.Compile(Request{Query: `{ nope }`}, Env{})
	_, e2 := s.Compile(Request{Query: `{ nope }`}, Env{})
	if len(e1) != 1 || errorsText(e1) != errorsText(e2) {
		t.Errorf("got %v and %v", e1, e2)
	}
}
