package gql

import (
	"encoding/json"
	"testing"
)

// sub wraps a selection of Subscription.messages.
func sub(sel string) string {
	return `subscription($room: ID! = "r") { messages(room: $room) ` + sel + ` }`
}

func TestProjection(t *testing.T) {
	tests := []struct {
		name, query, vars, event, want string
	}{
		{
			"selection order, aliases, unselected properties ignored",
			sub(`{ b: seq a: id text }`), ``,
			`{"text":"hi","zz":{"x":[1,2]},"id":"m1","seq":3,"seq2":4}`,
			`{"data":{"messages":{"b":3,"a":"m1","text":"hi"}}}`,
		},
		{
			"missing and null nullable fields are null",
			sub(`{ seq text score urgent }`), ``,
			`{"seq":1,"score":null}`,
			`{"data":{"messages":{"seq":1,"text":null,"score":null,"urgent":null}}}`,
		},
		{
			"__typename on an object type and the same field twice",
			sub(`{ __typename t: __typename seq s2: seq }`), ``,
			`{"seq":1}`,
			`{"data":{"messages":{"__typename":"Message","t":"Message","seq":1,"s2":1}}}`,
		},
		{
			"lists of scalars and nested lists",
			sub(`{ seq tags matrix }`), ``,
			`{"seq":1,"tags":["a","b"],"matrix":[[1,null],[],null]}`,
			`{"data":{"messages":{"seq":1,"tags":["a","b"],"matrix":[[1,null],[],null]}}}`,
		},
		{
			"list of objects",
			sub(`{ seq replies { seq text } }`), ``,
			`{"seq":1,"replies":[{"seq":2,"text":"x","y":1},{"seq":3}]}`,
			`{"data":{"messages":{"seq":1,"replies":[{"seq":2,"text":"x"},{"seq":3,"text":null}]}}}`,
		},
		{
			"named and inline fragments merge by response key in first-seen order",
			`subscription { messages(room: "r") { seq ...F ... on Message { text seq author { ... on Bot { model } } } } }
			 fragment F on Message { id author { ... on User { name } } }`, ``,
			`{"seq":1,"id":"i","text":"t","author":{"__typename":"User","name":"n","model":"m"}}`,
			`{"data":{"messages":{"seq":1,"id":"i","author":{"name":"n"},"text":"t"}}}`,
		},
		{
			"a fragment spread twice is collected once",
			`subscription { messages(room: "r") { ...F ...F seq } } fragment F on Message { text }`, ``,
			`{"seq":1,"text":"t"}`,
			`{"data":{"messages":{"text":"t","seq":1}}}`,
		},
		{
			"@skip and @include with literals and variables and defaults",
			`subscription($yes: Boolean = true, $no: Boolean!) { messages(room: "r") {
				a: seq @include(if: $yes) b: seq @skip(if: $yes) c: seq @include(if: $no)
				d: seq @skip(if: false) @include(if: true) ... @skip(if: true) { text } ...F @include(if: $no) } }
			 fragment F on Message { id }`, `{"no": false}`,
			`{"seq":1,"text":"t","id":"i"}`,
			`{"data":{"messages":{"a":1,"d":1}}}`,
		},
		{
			"Int coercion: integral floats, booleans and numeric strings",
			sub(`{ seq a: count b: count c: count d: count e: count }`), ``,
			`{"seq":1.0e0,"count":"  0x1F "}`,
			`{"data":{"messages":{"seq":1,"a":31,"b":31,"c":31,"d":31,"e":31}}}`,
		},
		{
			"Int coercion failures are field errors",
			sub(`{ seq count }`), ``,
			`{"seq":-0,"count":1.5}`,
			`{"data":{"messages":{"seq":0,"count":null}},"errors":[{"message":"Int cannot represent non-integer value: 1.5","locations":[{"line":1,"column":62}],"path":["messages","count"]}]}`,
		},
		{
			"Int outside 32 bits",
			sub(`{ count }`), ``,
			`{"count":2147483648}`,
			`{"data":{"messages":{"count":null}},"errors":[{"message":"Int cannot represent non 32-bit signed integer value: 2147483648","locations":[{"line":1,"column":58}],"path":["messages","count"]}]}`,
		},
		{
			"Int from boolean",
			sub(`{ count }`), ``,
			`{"count":true}`,
			`{"data":{"messages":{"count":1}}}`,
		},
		{
			"Float: numbers as written, strings and booleans converted",
			sub(`{ a: score }`), ``,
			`{"score":"1.50"}`,
			`{"data":{"messages":{"a":1.5}}}`,
		},
		{
			"Float raw number copied",
			sub(`{ score }`), ``,
			`{"score":-1.25E+3}`,
			`{"data":{"messages":{"score":-1.25E+3}}}`,
		},
		{
			"Float rejects objects",
			sub(`{ score }`), ``,
			`{"score":{"a":1}}`,
			`{"data":{"messages":{"score":null}},"errors":[{"message":"Float cannot represent non numeric value: {\"a\":1}","locations":[{"line":1,"column":58}],"path":["messages","score"]}]}`,
		},
		{
			"String from numbers and booleans as JavaScript prints them",
			sub(`{ text a: label }`), ``,
			`{"text":1.0,"label":1e21}`,
			`{"data":{"messages":{"text":"1","a":"1e+21"}}}`,
		},
		{
			"String from boolean; small number",
			sub(`{ text label }`), ``,
			`{"text":false,"label":1.5e-7}`,
			`{"data":{"messages":{"text":"false","label":"1.5e-7"}}}`,
		},
		{
			"String rejects arrays",
			sub(`{ text }`), ``,
			`{"text":[1]}`,
			`{"data":{"messages":{"text":null}},"errors":[{"message":"String cannot represent value: [1]","locations":[{"line":1,"column":58}],"path":["messages","text"]}]}`,
		},
		{
			"Boolean from numbers",
			sub(`{ a: urgent }`), ``,
			`{"urgent":0}`,
			`{"data":{"messages":{"a":false}}}`,
		},
		{
			"Boolean rejects strings",
			sub(`{ urgent }`), ``,
			`{"urgent":"yes"}`,
			`{"data":{"messages":{"urgent":null}},"errors":[{"message":"Boolean cannot represent a non boolean value: \"yes\"","locations":[{"line":1,"column":58}],"path":["messages","urgent"]}]}`,
		},
		{
			"ID from strings and integers, digits kept",
			sub(`{ id replies { id } }`), ``,
			`{"id":12345678901234567890,"replies":[{"id":"x"},{"id":1e3}]}`,
			`{"data":{"messages":{"id":"12345678901234567890","replies":[{"id":"x"},{"id":"1000"}]}}}`,
		},
		{
			"ID rejects fractions; non-null propagates to the nullable list",
			sub(`{ replies { id } }`), ``,
			`{"replies":[{"id":"x"},{"id":1.5}]}`,
			`{"data":{"messages":{"replies":null}},"errors":[{"message":"ID cannot represent value: 1.5","locations":[{"line":1,"column":68}],"path":["messages","replies",1,"id"]}]}`,
		},
		{
			"enums: members pass",
			sub(`{ status }`), ``,
			`{"status":"ACTIVE"}`,
			`{"data":{"messages":{"status":"ACTIVE"}}}`,
		},
		{
			"enums: a non-member in a non-null field nulls the whole root",
			sub(`{ status }`), ``,
			`{"status":"active"}`,
			`{"data":null,"errors":[{"message":"Enum \"Status\" cannot represent value: \"active\"","locations":[{"line":1,"column":58}],"path":["messages","status"]}]}`,
		},
		{
			"custom scalars pass raw JSON through",
			sub(`{ a: meta b: replies { meta } }`), ``,
			`{"meta":{"x":[1,"\u00e9",{"y":null}]},"replies":[{"meta":"s"},{"meta":-2.5},{"meta":true}]}`,
			`{"data":{"messages":{"a":{"x":[1,"\u00e9",{"y":null}]},"b":[{"meta":"s"},{"meta":-2.5},{"meta":true}]}}}`,
		},
		{
			"union resolved by __typename",
			sub(`{ author { __typename ... on User { name } ... on Bot { model } } }`), ``,
			`{"author":{"model":"m","__typename":"Bot","name":"n"}}`,
			`{"data":{"messages":{"author":{"__typename":"Bot","model":"m"}}}}`,
		},
		{
			"interface resolved by __typename, fragments on the interface apply",
			`subscription { messages(room: "r") { node { id ... on Node { __typename } ... on User { name } } } }`, ``,
			`{"node":{"__typename":"User","id":7,"name":"n"}}`,
			`{"data":{"messages":{"node":{"id":"7","__typename":"User","name":"n"}}}}`,
		},
		{
			"abstract without __typename: only unconditional fields",
			`subscription { messages(room: "r") { node { id ... on User { name } ... on Node { id2: id } } } }`, ``,
			`{"node":{"id":7,"name":"n"}}`,
			`{"data":{"messages":{"node":{"id":"7","id2":"7"}}}}`,
		},
		{
			"abstract without __typename cannot answer __typename",
			sub(`{ author { __typename } }`), ``,
			`{"author":{"name":"n"}}`,
			`{"data":{"messages":{"author":null}},"errors":[{"message":"cannot resolve the runtime type of abstract type \"Actor\": the event has no \"__typename\"","locations":[{"line":1,"column":67}],"path":["messages","author","__typename"]}]}`,
		},
		{
			"abstract with an impossible __typename",
			sub(`{ author { __typename } }`), ``,
			`{"author":{"__typename":"Secret"}}`,
			`{"data":{"messages":{"author":null}},"errors":[{"message":"Runtime Object type \"Secret\" is not a possible type for \"Actor\".","locations":[{"line":1,"column":58}],"path":["messages","author"]}]}`,
		},
		{
			"non-null violation propagates to the root",
			sub(`{ seq text }`), ``,
			`{"text":"t"}`,
			`{"data":null,"errors":[{"message":"Cannot return null for non-nullable field Message.seq.","locations":[{"line":1,"column":58}],"path":["messages","seq"]}]}`,
		},
		{
			"null event for a non-null root field",
			sub(`{ seq }`), ``,
			`null`,
			`{"data":null,"errors":[{"message":"Cannot return null for non-nullable field Subscription.messages.","locations":[{"line":1,"column":34}],"path":["messages"]}]}`,
		},
		{
			"null event for a nullable root field",
			`subscription { custom(room: "r") { seq } }`, ``,
			` null `,
			`{"data":{"custom":null}}`,
		},
		{
			"non-null list items null the list",
			sub(`{ replies { seq } }`), ``,
			`{"replies":[{"seq":1},{"x":1},{"seq":3}]}`,
			`{"data":{"messages":{"replies":null}},"errors":[{"message":"Cannot return null for non-nullable field Message.seq.","locations":[{"line":1,"column":68}],"path":["messages","replies",1,"seq"]}]}`,
		},
		{
			"nullable list items null themselves",
			sub(`{ matrix }`), ``,
			`{"matrix":[[1,"x",3]]}`,
			`{"data":{"messages":{"matrix":[[1,null,3]]}},"errors":[{"message":"Int cannot represent non-integer value: \"x\"","locations":[{"line":1,"column":58}],"path":["messages","matrix",0,1]}]}`,
		},
		{
			"a list field given a non-list",
			sub(`{ tags }`), ``,
			`{"tags":"a"}`,
			`{"data":{"messages":{"tags":null}},"errors":[{"message":"Expected Iterable, but did not find one for field \"Message.tags\".","locations":[{"line":1,"column":58}],"path":["messages","tags"]}]}`,
		},
		{
			"an object field given a scalar has no properties",
			sub(`{ author { ... on User { name } } replies { text } }`), ``,
			`{"author":5,"replies":["x"]}`,
			`{"data":{"messages":{"author":{},"replies":[{"text":null}]}}}`,
		},
		{
			"escaped strings are copied, broken ones repaired",
			sub(`{ text label tags }`), ``,
			"{\"text\":\"a\\\"b\\\\c\\u00e9\\n\",\"label\":\"bad\\x \x01 \xff\",\"tags\":[\"\\ud83d\\ude00\"]}",
			"{\"data\":{\"messages\":{\"text\":\"a\\\"b\\\\c\\u00e9\\n\",\"label\":\"bad\\\\x \\u0001 \\ufffd\",\"tags\":[\"\\ud83d\\ude00\"]}}}",
		},
		{
			"escaped keys match",
			sub(`{ text }`), ``,
			`{"t\u0065xt":"yes"}`,
			`{"data":{"messages":{"text":"yes"}}}`,
		},
		{
			"the first of duplicate keys wins",
			sub(`{ text }`), ``,
			`{"text":"first","text":"second"}`,
			`{"data":{"messages":{"text":"first"}}}`,
		},
		{
			"root list of non-null ints",
			`subscription { numbers }`, ``,
			`[1, 2 ,3]`,
			`{"data":{"numbers":[1,2,3]}}`,
		},
		{
			"malformed JSON is cut at the first error",
			sub(`{ seq text tags }`), ``,
			`{"seq":1,"tags":["a",],"text":"x"`,
			`{"data":{"messages":{"seq":1,"text":"x","tags":["a"]}}}`,
		},
		{
			"garbage event",
			`subscription { custom(room: "r") { seq } }`, ``,
			`}{`,
			`{"data":{"custom":null}}`,
		},
	}
	s := rich(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := mustCompile(t, s, tt.query, tt.vars, Env{Roles: []string{"admin"}})
			if !op.Match([]byte(tt.event)) {
				t.Fatalf("Match = false")
			}
			got := string(op.AppendResult([]byte("prefix:"), []byte(tt.event)))
			if got != "prefix:"+tt.want {
				t.Errorf("got  %s\nwant %s", got[len("prefix:"):], tt.want)
			}
			if !json.Valid([]byte(got[len("prefix:"):])) {
				t.Errorf("output is not valid JSON")
			}
			if slow := string(appendResultSlow(op, []byte("prefix:"), []byte(tt.event))); slow != got {
				t.Errorf("the general completion gives %s", slow[len("prefix:"):])
			}
		})
	}
}

func TestAbstractWithOneImplementation(t *testing.T) {
	src := `type Query { a: Int }
interface Thing { id: ID! }
type Only implements Thing { id: ID! n: Int }
union U = Only
type Subscription { thing: Thing u: U }`
	s, err := LoadSchema("a.graphql", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ query, event, want string }{
		{`subscription { thing { __typename id ... on Only { n } } }`, `{"id":1,"n":2}`, `{"data":{"thing":{"__typename":"Only","id":"1","n":2}}}`},
		{`subscription { u { __typename ... on Only { n } } }`, `{"n":2}`, `{"data":{"u":{"__typename":"Only","n":2}}}`},
		{`subscription { u { ... on Only { n } } }`, `{"__typename":"Other","n":2}`,
			`{"data":{"u":null},"errors":[{"message":"Runtime Object type \"Other\" is not a possible type for \"U\".","locations":[{"line":1,"column":16}],"path":["u"]}]}`},
	}
	for _, tt := range tests {
		op := mustCompile(t, s, tt.query, ``, Env{})
		if got := string(op.AppendResult(nil, []byte(tt.event))); got != tt.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.query, got, tt.want)
		}
	}
}
