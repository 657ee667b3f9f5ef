package resolve

import (
	"context"
	"testing"
	"time"

	"github.com/fraised/fraised/gql"
)

const testSchema = `
type Item { id: ID! n: Int }
type Query { x: String }
type Subscription { item(id: ID!): Item @topic(name: "items.{id}") }
`

// testOp compiles a subscription to item(id) on a schema whose resolver
// is fn (identity-free).
func testOp(tb testing.TB, fn gql.ResolverFunc) *gql.Operation {
	tb.Helper()
	if fn == nil {
		fn = func(context.Context, gql.ResolveParams) (any, error) { return nil, nil }
	}
	s, err := gql.LoadSchema("t.graphql", testSchema, gql.Options{FieldResolvers: map[string]gql.Resolver{"Subscription.item": {Func: fn}}})
	if err != nil {
		tb.Fatal(err)
	}
	op, errs := s.Compile(gql.Request{Query: `subscription { item(id: "1") { id n } }`}, gql.Env{})
	if errs != nil {
		tb.Fatal(errs)
	}
	return op
}

// waitCall pops one answered call, failing after 10 s.
func waitCall(tb testing.TB, q *Completions) *Call {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := q.Wait(ctx)
	if err != nil {
		tb.Fatal("no call answered in 10 s")
	}
	return c
}

// gqlParams returns params with an init payload and claims.
func gqlParams(init string, claims map[string]any) gql.ResolveParams {
	return gql.ResolveParams{InitPayload: []byte(init), Claims: claims}
}

// closedCtx returns a context that is already done.
func closedCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
