package resolve

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/gql"
)

// queryOp compiles { x } on a schema whose Query.x resolver is fn.
func queryOp(t *testing.T, fn gql.ResolverFunc) *gql.Operation {
	t.Helper()
	schema, err := gql.LoadSchema("q.graphql", testSchema, gql.Options{FieldResolvers: map[string]gql.Resolver{"Query.x": {Func: fn}}})
	if err != nil {
		t.Fatal(err)
	}
	op, errs := schema.Compile(gql.Request{Query: `{ x }`}, gql.Env{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return op
}

// code returns the first error code of a query result.
func code(result []byte) string { return gjson.GetBytes(result, "errors.0.extensions.code").String() }

// TestQueryCallCap: past MaxQueryCalls calls stuck in a resolver that
// ignores its context, a query field gets RESOLVER_OVERLOADED at once
// instead of another goroutine; once they return, calls run again.
func TestQueryCallCap(t *testing.T) {
	release := make(chan struct{})
	op := queryOp(t, func(context.Context, gql.ResolveParams) (any, error) { <-release; return "x", nil })
	q := NewQueries(time.Millisecond, nil)
	for i := range MaxQueryCalls {
		if c := code(q.Append(context.Background(), nil, op)); c != gql.CodeResolverTimeout {
			t.Fatalf("call %d: %q, want %s", i, c, gql.CodeResolverTimeout)
		}
	}
	if n := q.Running(); n != MaxQueryCalls {
		t.Fatalf("%d stuck calls, want %d", n, MaxQueryCalls)
	}
	if c := code(q.Append(context.Background(), nil, op)); c != gql.CodeResolverOverloaded {
		t.Fatalf("past the cap: %q, want %s", c, gql.CodeResolverOverloaded)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for q.Running() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls still counted after their resolvers returned", q.Running())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestQueryCallAnswers: an answer, an error and a panic come back as
// the field's value, its error and an opaque INTERNAL_SERVER_ERROR; a
// cancelled context is not reported as a timeout.
func TestQueryCallAnswers(t *testing.T) {
	q := NewQueries(time.Minute, nil)
	ok := queryOp(t, func(context.Context, gql.ResolveParams) (any, error) { return "yes", nil })
	if got := string(q.Append(context.Background(), nil, ok)); got != `{"data":{"x":"yes"}}` {
		t.Fatalf("answer: %s", got)
	}
	boom := queryOp(t, func(context.Context, gql.ResolveParams) (any, error) { panic("secret") })
	if got := q.Append(context.Background(), nil, boom); code(got) != gql.CodeInternal || gjson.GetBytes(got, "errors.0.message").String() == "secret" {
		t.Fatalf("panic: %s", got)
	}
	wait := queryOp(t, func(ctx context.Context, _ gql.ResolveParams) (any, error) { <-ctx.Done(); return nil, ctx.Err() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := q.Append(ctx, nil, wait); code(got) == gql.CodeResolverTimeout || !gjson.GetBytes(got, "errors").Exists() {
		t.Fatalf("cancelled: %s", got)
	}
	own := queryOp(t, func(context.Context, gql.ResolveParams) (any, error) {
		return nil, fmt.Errorf("the user service timed out: %w", context.DeadlineExceeded)
	})
	if got := q.Append(context.Background(), nil, own); code(got) == gql.CodeResolverTimeout ||
		!strings.Contains(gjson.GetBytes(got, "errors.0.message").String(), "user service") {
		t.Fatalf("the resolver's own deadline error, before ours: %s", got)
	}
	if q.Running() != 0 {
		t.Fatalf("%d calls counted", q.Running())
	}
}

// BenchmarkQueryCall: a query's compiled-in resolver through Queries (its
// own goroutine, the deadline) against a direct call.
func BenchmarkQueryCall(b *testing.B) {
	schema, err := gql.LoadSchema("q.graphql", testSchema, gql.Options{FieldResolvers: map[string]gql.Resolver{
		"Query.x": {Func: func(context.Context, gql.ResolveParams) (any, error) { return "yes", nil }}}})
	if err != nil {
		b.Fatal(err)
	}
	op, errs := schema.Compile(gql.Request{Query: `{ x }`}, gql.Env{})
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	q := NewQueries(time.Minute, nil)
	buf := make([]byte, 0, 256)
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = op.AppendQueryResult(context.Background(), buf[:0])
		}
	})
	b.Run("queries", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = q.Append(context.Background(), buf[:0], op)
		}
	})
}
