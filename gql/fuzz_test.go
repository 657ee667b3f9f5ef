package gql

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// fuzzQueries are the plans FuzzProject drives events through: every kind
// of field, list, fragment and abstract type of the rich schema.
var fuzzQueries = []string{
	`subscription {
	  messages(room: "r", author: "u1", urgent: true) {
	    __typename id seq score text urgent tags matrix meta status count label
	    author { __typename ... on User { id name status } ... on Bot { id model } }
	    node { id ... on Node { __typename } ... on Secret { code } }
	    replies { id seq text replies { seq meta } }
	  }
	}`,
	`subscription { custom(room: "r") { a: seq b: text c: tags d: score e: urgent f: id g: status } }`,
	`subscription { numbers }`,
	`subscription { ping }`,
	`subscription { byItem(name: "x") { seq author { ... on Bot { model } } } }`,
}

func FuzzProject(f *testing.F) {
	f.Add([]byte(`{"seq":1,"text":"hi","author":{"__typename":"User","id":"u1","name":"n"},"urgent":true}`))
	f.Add([]byte(`{"seq":"1","score":"x","tags":[1,"a\u0000",null],"matrix":[[1.5],[true]],"meta":{"a":[}}`))
	f.Add([]byte(`[1,2,3,"4",5.5,null]`))
	f.Add([]byte(`"\ud800 \x \u12"`))
	f.Add([]byte(`{"node":{"__typename":"Secret","id":1e400,"code":"\u0000"},"replies":[{"seq":2147483648},{}]}`))
	f.Add(loadEvent(f))
	s := rich(f)
	var ops []*Operation
	for _, q := range fuzzQueries {
		ops = append(ops, mustCompile(f, s, q, ``, Env{Roles: []string{"admin"}}))
	}
	f.Fuzz(func(t *testing.T, event []byte) {
		for _, op := range ops {
			for _, ev := range [][]byte{event, event[:len(event)/2]} {
				if got, want := op.Match(ev), matchEach(op.plan, ev); got != want {
					t.Fatalf("Match(%q) = %v, each filter on its own: %v", ev, got, want)
				}
				out := op.AppendResult(nil, ev)
				if !json.Valid(out) || !utf8.Valid(out) {
					t.Fatalf("invalid output for %q:\n%s", ev, out)
				}
				if slow := appendResultSlow(op, nil, ev); !bytes.Equal(out, slow) {
					t.Fatalf("fast and general completions differ for %q:\n%s\n%s", ev, out, slow)
				}
			}
		}
	})
}

func FuzzCompile(f *testing.F) {
	f.Add(`subscription($r: ID!) { messages(room: $r) { seq ...F } } fragment F on Message { text }`, []byte(`{"r":"x"}`))
	f.Add(`{ me { ... on User { name } } echo(n: 1) }`, []byte(nil))
	f.Add(`subscription S($s: Status = ACTIVE, $b: Boolean!) { byStatus(status: $s) { seq @include(if: $b) } }`, []byte(`{"b":true}`))
	f.Add(`subscription { tenantEvents(kind: "k") { node { __typename } } }`, []byte(`{}`))
	f.Add(`query A { serverTime } query B { nothing }`, []byte(`[]`))
	f.Add(`{ a: __typename b: __typename }`, []byte(`{"x":{"y":[1,2]}}`))
	s := rich(f)
	env := Env{Claims: map[string]any{"tenant_id": "t"}, Roles: []string{"admin"}}
	events := [][]byte{[]byte(`{"seq":1,"text":"t","author":{"__typename":"Bot"}}`), loadEvent(f)}
	f.Fuzz(func(t *testing.T, query string, vars []byte) {
		op, errs := s.Compile(Request{Query: query, Variables: vars}, env)
		if op == nil {
			if len(errs) == 0 {
				t.Fatal("no operation and no errors")
			}
			if out := AppendErrors(nil, errs); !json.Valid(out) {
				t.Fatalf("invalid errors JSON: %s", out)
			}
			return
		}
		if op.Kind == KindQuery {
			if out := op.AppendQueryResult(context.Background(), nil); !json.Valid(out) {
				t.Fatalf("invalid output: %s", out)
			}
			return
		}
		op.Match([]byte(`{"seq":1}`))
		for _, ev := range events {
			out := op.AppendResult(nil, ev)
			if !json.Valid(out) {
				t.Fatalf("invalid output: %s", out)
			}
			if slow := appendResultSlow(op, nil, ev); !bytes.Equal(out, slow) {
				t.Fatalf("fast and general completions differ for %q:\n%s\n%s", ev, out, slow)
			}
		}
	})
}
