package gql

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/gqlerror"
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
	other := Env{Claims: map[string]any{"tenant_id": "u"}}
	events := [][]byte{[]byte(`{"seq":1,"text":"t","author":{"__typename":"Bot"}}`), loadEvent(f)}
	f.Fuzz(func(t *testing.T, query string, vars []byte) {
		req := Request{Query: query, Variables: vars}
		op, errs := s.Compile(req, env)
		checkRecompile(t, s, req, env, op, errs, other)
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

// checkRecompile compiles req again, from the caches, for env and for
// other (another tenant without roles): env must get what the first
// compilation gave it, and the tenants may share only an operation
// without claim filters.
func checkRecompile(t *testing.T, s *Schema, req Request, env Env, op *Operation, errs gqlerror.List, other Env) {
	t.Helper()
	op2, errs2 := s.Compile(req, other)
	again, errsAgain := s.Compile(req, env)
	if again != op || errorsText(errsAgain) != errorsText(errs) {
		t.Fatalf("the cached compilation differs:\n%p %s\n%p %s", op, errorsText(errs), again, errorsText(errsAgain))
	}
	if op2 != nil && op2 == op {
		for _, f := range op.plan.filters {
			if len(f.path) == 1 && f.path[0] == "tenant" { // tenantEvents' claim filter
				t.Fatalf("tenants share an operation with a claim filter")
			}
		}
	}
	if op3, errs3 := s.Compile(req, other); op3 != op2 || errorsText(errs3) != errorsText(errs2) {
		t.Fatalf("the cached compilation for another tenant differs")
	}
}
