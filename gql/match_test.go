package gql

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fraised/fraised/internal/jsonx"
	"github.com/tidwall/gjson"
)

func TestMatch(t *testing.T) {
	acme := Env{Claims: map[string]any{"tenant_id": "acme"}}
	tests := []struct {
		name, query, vars string
		env               Env
		event             string
		want              bool
	}{
		{"no filter arguments match everything", `subscription { messages(room: "r") { seq } }`, ``, Env{}, `{"author":{"id":"x"}}`, true},
		{"ID argument equals a string", `subscription { messages(room: "r", author: "u1") { seq } }`, ``, Env{}, `{"author":{"id":"u1"}}`, true},
		{"ID argument differs", `subscription { messages(room: "r", author: "u1") { seq } }`, ``, Env{}, `{"author":{"id":"u2"}}`, false},
		{"ID argument equals an integer", `subscription { messages(room: "r", author: 7) { seq } }`, ``, Env{}, `{"author":{"id":7}}`, true},
		{"ID string argument equals an integer", `subscription { messages(room: "r", author: "7") { seq } }`, ``, Env{}, `{"author":{"id":7.0}}`, true},
		{"ID argument: the value is missing", `subscription { messages(room: "r", author: "u1") { seq } }`, ``, Env{}, `{"author":{}}`, false},
		{"ID argument: the parent is not an object", `subscription { messages(room: "r", author: "u1") { seq } }`, ``, Env{}, `{"author":"u1"}`, false},
		{"escaped event strings are compared decoded", `subscription { messages(room: "r", author: "u\u00e9") { seq } }`, ``, Env{}, `{"author":{"id":"\u0075\u00e9"}}`, true},
		{"two filters are ANDed", `subscription { messages(room: "r", author: "u1", urgent: true) { seq } }`, ``, Env{}, `{"urgent":true,"author":{"id":"u1"}}`, true},
		{"two filters, one fails", `subscription { messages(room: "r", author: "u1", urgent: true) { seq } }`, ``, Env{}, `{"urgent":false,"author":{"id":"u1"}}`, false},
		{"boolean does not equal a string", `subscription { messages(room: "r", urgent: true) { seq } }`, ``, Env{}, `{"urgent":"true"}`, false},
		{"a null argument skips its filter", `subscription($a: ID) { messages(room: "r", author: $a) { seq } }`, `{"a":null}`, Env{}, `{"author":{"id":"zz"}}`, true},
		{"an absent variable skips its filter", `subscription($a: ID) { messages(room: "r", author: $a) { seq } }`, ``, Env{}, `{}`, true},
		{"Int compares numerically", `subscription { bySeq(seq: 5) { seq } }`, ``, Env{}, `{"seq":5.0e0}`, true},
		{"Int does not equal a string", `subscription { bySeq(seq: 5) { seq } }`, ``, Env{}, `{"seq":"5"}`, false},
		{"Float compares numerically", `subscription { bySeq(score: 1.5) { seq } }`, ``, Env{}, `{"score":1.50}`, true},
		{"Float differs", `subscription { bySeq(score: 1.5) { seq } }`, ``, Env{}, `{"score":1.25}`, false},
		{"enum compares as a string", `subscription { byStatus(status: DISABLED) { seq } }`, ``, Env{}, `{"status":"DISABLED"}`, true},
		{"enum differs", `subscription { byStatus(status: DISABLED) { seq } }`, ``, Env{}, `{"status":"ACTIVE"}`, false},
		{"array index in the path", `subscription { byItem(name: "b") { seq } }`, ``, Env{}, `{"items":[{"name":"a"},{"name":"b"}]}`, true},
		{"array index out of range", `subscription { byItem(name: "b") { seq } }`, ``, Env{}, `{"items":[{"name":"b"}]}`, false},
		{"claim equals", `subscription { tenantEvents { seq } }`, ``, acme, `{"tenant":"acme"}`, true},
		{"claim differs", `subscription { tenantEvents { seq } }`, ``, acme, `{"tenant":"evil"}`, false},
		{"claim: the event has no value", `subscription { tenantEvents { seq } }`, ``, acme, `{"seq":1}`, false},
		{"claim missing: nothing matches", `subscription { tenantEvents { seq } }`, ``, Env{Claims: map[string]any{"sub": "u"}}, `{"tenant":"acme"}`, false},
		{"anonymous: nothing matches", `subscription { tenantEvents { seq } }`, ``, Env{}, `{}`, false},
		{"claim null: nothing matches", `subscription { tenantEvents { seq } }`, ``, Env{Claims: map[string]any{"tenant_id": nil}}, `{"tenant":null}`, false},
		{"claim of an unusable type: nothing matches", `subscription { tenantEvents { seq } }`, ``, Env{Claims: map[string]any{"tenant_id": []any{"acme"}}}, `{"tenant":["acme"]}`, false},
		{"numeric claim", `subscription { tenantEvents { seq } }`, ``, Env{Claims: map[string]any{"tenant_id": float64(42)}}, `{"tenant":42}`, true},
		{"numeric claim from json.Number", `subscription { tenantEvents { seq } }`, ``, Env{Claims: map[string]any{"tenant_id": json.Number("42")}}, `{"tenant":42}`, true},
		{"a string claim does not equal a number", `subscription { tenantEvents { seq } }`, ``, Env{Claims: map[string]any{"tenant_id": "42"}}, `{"tenant":42}`, false},
		{"claim and argument", `subscription { tenantEvents(kind: "deploy") { seq } }`, ``, acme, `{"tenant":"acme","kind":"deploy"}`, true},
		{"claim holds, argument fails", `subscription { tenantEvents(kind: "deploy") { seq } }`, ``, acme, `{"tenant":"acme","kind":"build"}`, false},
		{"malformed event", `subscription { messages(room: "r", author: "u1") { seq } }`, ``, Env{}, `{"author":{"id":"u1`, false},
	}
	s := rich(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := mustCompile(t, s, tt.query, tt.vars, tt.env)
			if got := op.Match([]byte(tt.event)); got != tt.want {
				t.Errorf("Match(%s) = %v, want %v", tt.event, got, tt.want)
			}
		})
	}
}

func TestTopic(t *testing.T) {
	tests := []struct {
		name, query, vars, want string
	}{
		{"string argument", `subscription { messages(room: "r1") { seq } }`, ``, "rooms.r1"},
		{"ID variable given as an integer", `subscription($r: ID!) { messages(room: $r) { seq } }`, `{"r": 42}`, "rooms.42"},
		{"ID literal integer", `subscription { custom(room: 7) { seq } }`, ``, "custom.7"},
		{"no @topic: the field name", `subscription { ping }`, ``, "ping"},
		{"alias does not change the topic", `subscription { p: numbers }`, ``, "numbers"},
	}
	s := rich(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustCompile(t, s, tt.query, tt.vars, Env{}).Topic; got != tt.want {
				t.Errorf("topic %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTopicTemplate(t *testing.T) {
	src := `type Query { a: Int }
type Subscription {
  a(org: String!, n: Int!, f: Float!, b: Boolean!, e: E!): Int @topic(name: "{org}/{n}/{f}/{b}/{e}/end")
}
enum E { X Y }`
	s, err := LoadSchema("t.graphql", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	op := mustCompile(t, s, `subscription { a(org: "o", n: -3, f: 2.50, b: true, e: Y) }`, ``, Env{})
	if op.Topic != "o/-3/2.5/true/Y/end" {
		t.Errorf("topic %q", op.Topic)
	}
}

// matchEach is Match testing each filter on its own (no match tree).
func matchEach(p *plan, event []byte) bool {
	if p.never {
		return false
	}
	root := jsonx.RootValue(jsonx.View(event))
	for i := range p.filters {
		if !p.filters[i].match(root) {
			return false
		}
	}
	return true
}

func TestMatchTreeAgreesWithEachFilter(t *testing.T) {
	str := func(path, v string) filter {
		return filter{path: strings.Split(path, "."), kind: filterString, str: v}
	}
	num := func(path string, n int64) filter {
		f := filter{path: strings.Split(path, "."), kind: filterNumber}
		f.setInt(n)
		return f
	}
	sets := [][]filter{
		{str("a.b", "x"), num("a.c", 1), {path: []string{"d"}, kind: filterBool, b: true}},
		{str("a.b", "x"), str("a.b", "x"), str("a", "y")},
		{str("l.1.n", "v"), str("l.x", "v"), num("l.0", 3)},
	}
	events := []string{
		`{"a":{"b":"x","c":1},"d":true}`, `{"d":true,"a":{"c":1.0,"b":"x"}}`, `{"a":{"b":"x","c":2},"d":true}`,
		`{"a":{"b":"x","c":1}}`, `{"a":{"b":"x","b":"y","c":1},"d":true,"d":false}`, `{"a":"y"}`, `{"a":{"b":"x"}`,
		`{"a":{"b":"x","c":1 "d":true}`, `{"l":[3,{"n":"v"}]}`, `{"l":{"1":{"n":"v"},"x":"v","0":3}}`, `[1]`, ``, `{`,
	}
	for i, fs := range sets {
		p := &plan{filters: fs, match: newMatchTree(fs)}
		if p.match == nil {
			t.Fatalf("set %d: no match tree", i)
		}
		for _, ev := range events {
			if got, want := p.matchAt(p.match, jsonx.RootValue(ev)), matchEach(p, []byte(ev)); got != want {
				t.Errorf("set %d, %s: tree says %v, each filter %v", i, ev, got, want)
			}
		}
	}
}

func TestMatchTreeTooWide(t *testing.T) {
	var fs []filter
	for i := 0; i <= matchMax; i++ {
		fs = append(fs, filter{path: []string{fmt.Sprint("k", i)}, kind: filterBool, b: true})
	}
	if newMatchTree(fs) != nil {
		t.Errorf("a tree with %d steps on one level was built", len(fs))
	}
	if newMatchTree(fs[:matchMax]) == nil {
		t.Errorf("no tree for %d steps", matchMax)
	}
}

func TestMemberAgreesWithGjson(t *testing.T) {
	docs := []string{
		`{"a":1,"b":{"c":[1,2,{"d":"x"}]},"e":"s\"t","f":null,"g":true,"h":[],"i":{},"j":-1.5e3}`,
		` { "a" : 1 , "b" : "two" , "a" : 3 } `,
		`{"long":"` + string(make([]byte, 0)) + `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"aaaaaaaaaa","k":[{"x":1}]}`,
	}
	paths := [][]string{{"a"}, {"b"}, {"b", "c"}, {"b", "c", "2", "d"}, {"e"}, {"f"}, {"g"}, {"h"}, {"i"}, {"j"}, {"long"}, {"k", "0", "x"}, {"zz"}}
	for _, doc := range docs {
		for _, p := range paths {
			got, ok := lookupPath(jsonx.RootValue(doc), p)
			want := gjson.Get(doc, joinPath(p))
			if ok != want.Exists() || got != want.Raw {
				t.Errorf("%s in %s: got %q %v, gjson %q %v", joinPath(p), doc, got, ok, want.Raw, want.Exists())
			}
		}
	}
}

// joinPath joins path steps as a gjson path.
func joinPath(p []string) string {
	out := ""
	for i, s := range p {
		if i > 0 {
			out += "."
		}
		out += s
	}
	return out
}
