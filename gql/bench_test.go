package gql

import (
	"os"
	"testing"
)

// typicalQuery is a subscription a dashboard would send.
const typicalQuery = `subscription($room: ID!) {
  messages(room: $room, author: "u-42", urgent: false) {
    id seq score text urgent tags status label
    author { __typename ... on User { id name status } ... on Bot { id model } }
    replies { id seq text }
  }
}`

var sink []byte
var sinkBool bool

// loadEvent reads the ~1 KiB benchmark event.
func loadEvent(tb testing.TB) []byte {
	tb.Helper()
	ev, err := os.ReadFile("testdata/event.json")
	if err != nil {
		tb.Fatal(err)
	}
	return ev
}

func BenchmarkAppendResult(b *testing.B) {
	op := mustCompile(b, rich(b), typicalQuery, `{"room":"r1"}`, Env{})
	ev := loadEvent(b)
	dst := make([]byte, 0, 4096)
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	for b.Loop() {
		dst = op.AppendResult(dst[:0], ev)
	}
	sink = dst
}

func BenchmarkMatch(b *testing.B) {
	op := mustCompile(b, rich(b), typicalQuery, `{"room":"r1"}`, Env{})
	ev := loadEvent(b)
	if len(op.plan.filters) != 2 || !op.Match(ev) {
		b.Fatalf("want 2 matching filters, have %d", len(op.plan.filters))
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkBool = op.Match(ev)
	}
}

func BenchmarkCompileCached(b *testing.B) {
	s := rich(b)
	req := Request{Query: typicalQuery, Variables: []byte(`{"room":"r1"}`)}
	if _, errs := s.Compile(req, Env{}); errs != nil {
		b.Fatal(errs)
	}
	b.ReportAllocs()
	for b.Loop() {
		op, _ := s.Compile(req, Env{})
		sinkBool = op != nil
	}
}
