package gql

import (
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"
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

// cpuClock reports the process CPU time per operation as cpu-ns/op next to
// the wall-clock ns/op, which on a shared machine also counts the time the
// benchmark waited for a core. Call it just before the timed loop and call
// the function it returns just after.
func cpuClock(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if end := cpuTime(); start >= 0 && end >= 0 && b.N > 0 {
			b.ReportMetric(float64((end-start)/time.Nanosecond)/float64(b.N), "cpu-ns/op")
		}
	}
}

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
	stop := cpuClock(b)
	for b.Loop() {
		dst = op.AppendResult(dst[:0], ev)
	}
	stop()
	sink = dst
}

func BenchmarkMatch(b *testing.B) {
	op := mustCompile(b, rich(b), typicalQuery, `{"room":"r1"}`, Env{})
	ev := loadEvent(b)
	if len(op.plan.filters) != 2 || !op.Match(ev) {
		b.Fatalf("want 2 matching filters, have %d", len(op.plan.filters))
	}
	b.ReportAllocs()
	stop := cpuClock(b)
	for b.Loop() {
		sinkBool = op.Match(ev)
	}
	stop()
}

func BenchmarkCompileCached(b *testing.B) {
	s := rich(b)
	req := Request{Query: typicalQuery, Variables: []byte(`{"room":"r1"}`)}
	held, errs := s.Compile(req, Env{}) // a subscriber holds the operation
	if errs != nil {
		b.Fatal(errs)
	}
	b.ReportAllocs()
	for b.Loop() {
		op, _ := s.Compile(req, Env{})
		sinkBool = op != nil
	}
	runtime.KeepAlive(held)
}

// BenchmarkCompileRepeatedSubscribe is 2,000 connections, each with its own
// identity (distinct claims maps, one tenant), subscribing with the same
// document and variables while their subscriptions hold the operation.
func BenchmarkCompileRepeatedSubscribe(b *testing.B) {
	const conns = 2000
	envs := make([]Env, conns)
	for i := range envs {
		envs[i] = Env{
			Claims: map[string]any{"sub": "user-" + strconv.Itoa(i), "tenant_id": "acme", "iat": json.Number(strconv.Itoa(1732740000 + i))},
			Roles:  []string{"user", "admin"}, Scopes: []string{"orders:read"},
		}
	}
	tests := []struct{ name, query, vars string }{
		{"typical", typicalQuery, `{"room":"r1"}`},
		{"claim filter", `subscription($k: String) { tenantEvents(kind: $k) { seq text author { ... on User { id name } } } }`, `{"k":"deploy"}`},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			s := rich(b)
			req := Request{Query: tt.query, Variables: []byte(tt.vars)}
			held := make([]*Operation, conns)
			for i := range held {
				var errs gqlerror.List
				if held[i], errs = s.Compile(req, envs[i]); errs != nil {
					b.Fatal(errs)
				}
				if held[i] != held[0] {
					b.Fatal("connections of one tenant do not share the operation")
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				op, _ := s.Compile(req, envs[i])
				sinkBool = op != nil
				if i++; i == conns {
					i = 0
				}
			}
			runtime.KeepAlive(held)
		})
	}
}

// BenchmarkCompileNewVariables compiles a known document with a variable
// value never seen before at every iteration.
func BenchmarkCompileNewVariables(b *testing.B) {
	s := rich(b)
	mustCompile(b, s, typicalQuery, `{"room":"r1"}`, Env{})
	vars := make([]byte, 0, 64)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		vars = append(strconv.AppendInt(append(vars[:0], `{"room":"r`...), int64(n), 10), `"}`...)
		op, _ := s.Compile(Request{Query: typicalQuery, Variables: vars}, Env{})
		sinkBool = op != nil
	}
}

// smallEvent is the perf harness's event shape (143 bytes with a 100-byte
// body), projected through { seq ts body } of examples/schema.graphql.
const smallEvent = `{"seq":48213,"ts":1732740000.123,"body":"` +
	`lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore ` + `"}`

func BenchmarkAppendResultSmall(b *testing.B) {
	s, err := LoadSchemaFile("../examples/schema.graphql", Options{})
	if err != nil {
		b.Fatal(err)
	}
	op := mustCompile(b, s, `subscription { events(topic: "t1") { seq ts body } }`, ``, Env{})
	ev := []byte(smallEvent)
	dst := make([]byte, 0, 512)
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	stop := cpuClock(b)
	for b.Loop() {
		dst = op.AppendResult(dst[:0], ev)
	}
	stop()
	sink = dst
}
