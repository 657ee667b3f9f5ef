package gql

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/fraised/fraised/internal/jsonx"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

var (
	richOnce   sync.Once
	richSchema *Schema
	richErr    error
)

// rich returns the schema of testdata/rich.graphql without resolvers.
func rich(t testing.TB) *Schema {
	t.Helper()
	richOnce.Do(func() { richSchema, richErr = LoadSchemaFile("testdata/rich.graphql", Options{}) })
	if richErr != nil {
		t.Fatal(richErr)
	}
	return richSchema
}

// mustCompile compiles a request that must succeed.
func mustCompile(t testing.TB, s *Schema, query, vars string, env Env) *Operation {
	t.Helper()
	op, errs := s.Compile(Request{Query: query, Variables: []byte(vars)}, env)
	if len(errs) > 0 {
		t.Fatalf("Compile(%s): %v", query, errs)
	}
	return op
}

// errorsText renders errs as JSON for comparisons.
func errorsText(errs gqlerror.List) string {
	return string(AppendErrors(nil, errs))
}

// contains fails unless got contains want.
func contains(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("got  %s\nwant it to contain %s", got, want)
	}
}

// ctxT shortens resolver signatures in tests.
type ctxT = context.Context

// bg is context.Background.
func bg() context.Context { return context.Background() }

// appendResultSlow is AppendResult without the fast path (fast.go).
func appendResultSlow(op *Operation, dst, event []byte) []byte {
	p := projector{plan: op.plan, slow: true}
	return p.result(context.Background(), dst, event)
}

// appendFastOnly projects event through the root field of a subscription
// with the fast path alone; ok is false when the fast path gives up.
func appendFastOnly(op *Operation, event []byte) (out []byte, ok bool) {
	p := projector{plan: op.plan, fast: true}
	for _, f := range op.plan.fields {
		if !f.typename {
			out, end := p.fastValue(nil, f, f.typ, jsonx.RootValue(jsonx.View(event)), 0, true)
			return out, end >= 0 && !p.abort
		}
	}
	return nil, false
}
