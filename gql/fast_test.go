package gql

import "testing"

// TestFastPath checks which events the one-pass projection handles itself
// and that what it writes is what the general completion writes.
func TestFastPath(t *testing.T) {
	ev := string(loadEvent(t))
	tests := []struct {
		name, query, event string
		fast               bool
	}{
		{"typical selection of the benchmark event", typicalQuery, ev, true},
		{"mismatched brackets count as closing", sub(`{ replies { seq } }`), `{"replies":[{"seq":2,"x":[}]}`, true},
		{"members in selection order", sub(`{ id seq text }`), `{"id":"m","seq":1,"text":"t","zz":[{"a":"}"}]}`, true},
		{"members out of order are reassembled", sub(`{ b: seq a: id text }`), `{"text":"hi","zz":{"x":[1,2]},"id":"m1","seq":3}`, true},
		{"one member read by several fields", sub(`{ a: seq id b: seq }`), `{"seq":1,"id":"m"}`, true},
		{"missing nullable fields become null", sub(`{ seq text score }`), `{"score":1.5,"seq":1}`, true},
		{"__typename between fields", sub(`{ __typename seq t: __typename text }`), `{"text":"x","seq":1}`, true},
		{"nested lists and objects stopped early", sub(`{ matrix replies { seq } seq }`),
			`{"matrix":[[1,2],[]],"replies":[{"seq":2,"text":"]"},{"seq":3,"x":{}}],"seq":1}`, true},
		{"abstract type resolved by __typename", sub(`{ author { ... on User { name } ... on Bot { model } } }`),
			`{"author":{"model":"m","__typename":"Bot"}}`, true},
		{"escaped key, non-ASCII and escaped strings, exponent", sub(`{ seq text score }`),
			`{"s\u0065q":1,"text":"h\u00e9 \"x\" é","score":1e3}`, true},
		{"unterminated root after the selected members", sub(`{ seq text }`), `{"seq":1,"text":"t","zz":[`, true},
		{"unterminated root before a selected member", sub(`{ seq text }`), `{"seq":1,"te`, true},
		{"missing non-null field", sub(`{ seq id }`), `{"seq":1}`, false},
		{"coercion error", sub(`{ seq }`), `{"seq":"x"}`, false},
		{"nested object with a syntax error", sub(`{ replies { seq } }`), `{"replies":[{"x":1 "seq":2}]}`, false},
		{"nested object not closed", sub(`{ replies { seq } }`), `{"replies":[{"seq":2,"x":"]}`, false},
		{"list item with a syntax error", sub(`{ tags }`), `{"tags":["a",]}`, false},
	}
	s := rich(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := mustCompile(t, s, tt.query, `{"room":"r1"}`, Env{})
			out, ok := appendFastOnly(op, []byte(tt.event))
			if ok != tt.fast {
				t.Fatalf("fast path taken = %v, want %v", ok, tt.fast)
			}
			slow := string(appendResultSlow(op, nil, []byte(tt.event)))
			if got := `{"data":{"messages":` + string(out) + `}}`; ok && got != slow {
				t.Errorf("fast path gives %s\ngeneral completion %s", got, slow)
			}
			if got := string(op.AppendResult(nil, []byte(tt.event))); got != slow {
				t.Errorf("AppendResult gives %s\ngeneral completion %s", got, slow)
			}
		})
	}
}
