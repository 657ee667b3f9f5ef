package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/server"
)

const resolverSchema = `
type Order { id: ID! status: String! note: String }
type Query { serverTime: String }
type Subscription {
  orderUpdated(customerId: ID!): Order @topic(name: "orders.{customerId}")
}
`

// TestCompiledInResolvers: a subscription resolver sees the event, the
// arguments and the init payload; its value is projected; an error becomes
// a GraphQL error in that next; a panic is recovered; queries run theirs.
func TestCompiledInResolvers(t *testing.T) {
	resolvers := map[string]gql.ResolverFunc{
		"Subscription.orderUpdated": func(ctx context.Context, p gql.ResolveParams) (any, error) {
			switch gjson.GetBytes(p.Event, "mode").String() {
			case "error":
				return nil, errors.New("order service unavailable")
			case "panic":
				panic("resolver bug")
			}
			return map[string]any{
				"id":     gjson.GetBytes(p.Event, "id").String(),
				"status": strings.ToUpper(gjson.GetBytes(p.Event, "status").String()),
				"note":   "for " + p.Args["customerId"].(string) + " by " + gjson.GetBytes(p.InitPayload, "user").String(),
			}, nil
		},
		"Query.serverTime": func(ctx context.Context, p gql.ResolveParams) (any, error) {
			return "2026-11-27T00:00:00Z", nil
		},
	}
	schema, err := gql.LoadSchema("orders.graphql", resolverSchema, gql.Options{Resolvers: resolvers})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(o *server.Options) { o.Schema = schema })
	c := dial(t, s.opts.Listen)
	c.send(`{"type":"connection_init","payload":{"user":"ann"}}`)
	c.expect(`{"type":"connection_ack"}`)
	c.subscribe("q", `{ serverTime }`, nil)
	c.expect(`{"id":"q","type":"next","payload":{"data":{"serverTime":"2026-11-27T00:00:00Z"}}}`)
	c.expect(`{"id":"q","type":"complete"}`)

	c.subscribe("1", `subscription { orderUpdated(customerId: "7") { status id note } }`, nil)
	s.waitSubs(t, 1)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	p.publish("orders.7", `{"id":"o1","status":"paid"}`)
	c.expect(`{"id":"1","type":"next","payload":{"data":{"orderUpdated":{"status":"PAID","id":"o1","note":"for 7 by ann"}}}}`)

	p.publish("orders.7", `{"mode":"error"}`)
	m := c.next()
	if gjson.Get(m, "payload.data.orderUpdated").Type != gjson.Null || !strings.Contains(m, "order service unavailable") ||
		gjson.Get(m, "payload.errors.0.path.0").String() != "orderUpdated" {
		t.Fatalf("resolver error not reported as a GraphQL error: %s", m)
	}
	p.publish("orders.7", `{"mode":"panic"}`)
	m = c.next()
	if !strings.Contains(m, `"errors"`) || strings.Contains(m, "resolver bug") {
		t.Fatalf("panic not recovered into an opaque error: %s", m)
	}
	// The connection and the subscription survive.
	p.publish("orders.7", `{"id":"o2","status":"shipped"}`)
	c.expect(`{"id":"1","type":"next","payload":{"data":{"orderUpdated":{"status":"SHIPPED","id":"o2","note":"for 7 by ann"}}}}`)
}
