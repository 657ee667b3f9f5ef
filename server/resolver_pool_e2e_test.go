package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/resolve"
	"github.com/fraised/fraised/server"
)

// poolSchema is resolverSchema with a field without a resolver beside it.
const poolSchema = `
type Order { id: ID! status: String! note: String }
type Event { seq: Int! }
type Query { serverTime: String }
type Subscription {
  orderUpdated(customerId: ID!): Order @topic(name: "orders.{customerId}")
  events(topic: String!): Event! @topic(name: "{topic}")
}
`

// startResolverServer starts a server on poolSchema with orderUpdated
// resolved by fn (identity-free) and calls timing out after timeout.
func startResolverServer(t *testing.T, fn gql.ResolverFunc, timeout time.Duration) *testServer {
	t.Helper()
	return startResolverServerTB(t, fn, timeout)
}

// startResolverServerTB is startResolverServer for tests and benchmarks.
func startResolverServerTB(t testing.TB, fn gql.ResolverFunc, timeout time.Duration) *testServer {
	t.Helper()
	schema, err := gql.LoadSchema("pool.graphql", poolSchema, gql.Options{
		FieldResolvers: map[string]gql.Resolver{"Subscription.orderUpdated": {Func: fn}},
	})
	if err != nil {
		t.Fatal(err)
	}
	router := resolve.NewRouter(resolve.Options{Workers: 4, Timeout: timeout})
	t.Cleanup(func() { router.Close(context.Background()) })
	return startServer(t, func(o *server.Options) { o.Schema = schema; o.Resolvers = router })
}

// orderResult is the next payload of an order event {"id":id} resolved
// by echoOrder.
func orderResult(subID, id string) string {
	return fmt.Sprintf(`{"id":%q,"type":"next","payload":{"data":{"orderUpdated":{"id":%q,"status":"OK"}}}}`, subID, id)
}

// TestBlockingResolverDoesNotDelayOthers: while a resolver call blocks,
// another topic's events and another group of the same field are
// delivered without waiting for it; the blocked group's events follow in
// order once it returns.
func TestBlockingResolverDoesNotDelayOthers(t *testing.T) {
	release := make(chan struct{})
	s := startResolverServer(t, func(ctx context.Context, p gql.ResolveParams) (any, error) {
		if p.Args["customerId"] == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return map[string]any{"id": gjson.GetBytes(p.Event, "id").String(), "status": "OK"}, nil
	}, 30*time.Second)
	slow, fast, other := connect(t, s.opts.Listen), connect(t, s.opts.Listen), connect(t, s.opts.Listen)
	slow.subscribe("s", `subscription { orderUpdated(customerId: "slow") { id status } }`, nil)
	fast.subscribe("f", `subscription { orderUpdated(customerId: "fast") { id status } }`, nil)
	other.subscribe("o", `subscription { events(topic: "news") { seq } }`, nil)
	s.waitSubs(t, 3)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	for i := range 3 {
		if got := p.publish("orders.slow", fmt.Sprintf(`{"id":"s%d"}`, i)); got != ":1" {
			t.Fatalf("publish to the slow group: %s", got)
		}
	}
	// The slow call is in flight now; the others must not wait for it.
	var worst time.Duration
	for i := range 200 {
		start := time.Now()
		p.publish("news", fmt.Sprintf(`{"seq":%d}`, i))
		other.expect(fmt.Sprintf(`{"id":"o","type":"next","payload":{"data":{"events":{"seq":%d}}}}`, i))
		worst = max(worst, time.Since(start))
	}
	p.publish("orders.fast", `{"id":"f1"}`)
	start := time.Now()
	fast.expect(orderResult("f", "f1"))
	worst = max(worst, time.Since(start))
	// Generous for a loaded 2-core machine; the blocked call lasts until released.
	if worst > 2*time.Second {
		t.Fatalf("deliveries waited %v behind a blocked resolver", worst)
	}
	close(release)
	for i := range 3 {
		slow.expect(orderResult("s", fmt.Sprintf("s%d", i)))
	}
}

// TestResolverTimeoutAndPanic: a call past --resolver-timeout (its
// resolver ignoring ctx) and a panicking call each give that event's next
// a GraphQL error with extensions.code; the stream goes on, in order.
func TestResolverTimeoutAndPanic(t *testing.T) {
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	s := startResolverServer(t, func(ctx context.Context, p gql.ResolveParams) (any, error) {
		switch gjson.GetBytes(p.Event, "mode").String() {
		case "hang":
			<-stuck // ignores ctx: a stuck worker
		case "panic":
			panic("resolver bug")
		}
		return map[string]any{"id": gjson.GetBytes(p.Event, "id").String(), "status": "OK"}, nil
	}, 300*time.Millisecond)
	c := connect(t, s.opts.Listen)
	c.subscribe("1", `subscription { orderUpdated(customerId: "7") { id status } }`, nil)
	s.waitSubs(t, 1)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	p.publish("orders.7", `{"mode":"hang"}`)
	p.publish("orders.7", `{"id":"a"}`)
	p.publish("orders.7", `{"mode":"panic"}`)
	p.publish("orders.7", `{"id":"b"}`)
	m := c.next()
	if gjson.Get(m, "payload.errors.0.extensions.code").String() != gql.CodeResolverTimeout ||
		gjson.Get(m, "payload.data.orderUpdated").Type != gjson.Null {
		t.Fatalf("want a RESOLVER_TIMEOUT error first, got %s", m)
	}
	c.expect(orderResult("1", "a"))
	m = c.next()
	if gjson.Get(m, "payload.errors.0.extensions.code").String() != gql.CodeInternal || strings.Contains(m, "resolver bug") {
		t.Fatalf("want an opaque INTERNAL_SERVER_ERROR, got %s", m)
	}
	c.expect(orderResult("1", "b"))
	// Stuck workers are replaced: every further event is resolved.
	for i := range 8 {
		p.publish("orders.7", `{"mode":"hang"}`)
		p.publish("orders.7", fmt.Sprintf(`{"id":"x%d"}`, i))
	}
	for i := range 8 {
		if m := c.next(); gjson.Get(m, "payload.errors.0.extensions.code").String() != gql.CodeResolverTimeout {
			t.Fatalf("event %d: want RESOLVER_TIMEOUT, got %s", i, m)
		}
		c.expect(orderResult("1", fmt.Sprintf("x%d", i)))
	}
}

// TestResolverOncePerGroup: 1,000 events to a group of 10 subscribers on
// 10 connections with different init payloads make 1,000 calls (the
// resolver does not read the identity), and every subscriber gets the
// results in publish order although the calls take varying time.
func TestResolverOncePerGroup(t *testing.T) {
	const subs, events = 10, 1000
	var calls atomic.Int64
	s := startResolverServer(t, func(ctx context.Context, p gql.ResolveParams) (any, error) {
		n := calls.Add(1)
		if n%7 == 0 {
			time.Sleep(time.Duration(n%5) * 100 * time.Microsecond)
		}
		return map[string]any{"id": gjson.GetBytes(p.Event, "id").String(), "status": "OK"}, nil
	}, 30*time.Second)
	clients := make([]*client, subs)
	for i := range clients {
		c := dial(t, s.opts.Listen)
		c.send(fmt.Sprintf(`{"type":"connection_init","payload":{"user":"u%d"}}`, i))
		c.expect(`{"type":"connection_ack"}`)
		c.subscribe("1", `subscription { orderUpdated(customerId: "7") { id status } }`, nil)
		clients[i] = c
	}
	s.waitSubs(t, subs)
	if g := s.Stats().Groups; g != 1 {
		t.Fatalf("%d groups, want 1", g)
	}
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	go func() {
		for i := range events {
			p.write([]byte(fmt.Sprintf("PUBLISH orders.7 {\"id\":\"e%d\"}\r\n", i)))
		}
	}()
	for i := range events {
		for _, c := range clients {
			c.expect(orderResult("1", fmt.Sprintf("e%d", i)))
		}
	}
	if n := calls.Load(); n != events {
		t.Fatalf("%d resolver calls for %d events to one group, want %d", n, events, events)
	}
}

// TestResolverGroupCap: past resolve.MaxGroupPending events waiting
// behind a blocked call, an event is not resolved: its next carries
// RESOLVER_OVERLOADED in its place, and nothing is queued without bound.
func TestResolverGroupCap(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	s := startResolverServer(t, func(ctx context.Context, p gql.ResolveParams) (any, error) {
		if calls.Add(1) == 1 {
			<-release
		}
		return map[string]any{"id": gjson.GetBytes(p.Event, "id").String(), "status": "OK"}, nil
	}, 30*time.Second)
	c := connect(t, s.opts.Listen)
	c.subscribe("1", `subscription { orderUpdated(customerId: "7") { id status } }`, nil)
	s.waitSubs(t, 1)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	const extra = 5
	total := 1 + resolve.MaxGroupPending + extra
	var burst []byte
	for i := range total {
		burst = fmt.Appendf(burst, "PUBLISH orders.7 {\"id\":\"e%d\"}\r\n", i)
	}
	p.write(burst)
	for range total {
		p.line()
	}
	close(release)
	for i := range 1 + resolve.MaxGroupPending {
		c.expect(orderResult("1", fmt.Sprintf("e%d", i)))
	}
	for range extra {
		if m := c.next(); gjson.Get(m, "payload.errors.0.extensions.code").String() != gql.CodeResolverOverloaded {
			t.Fatalf("want RESOLVER_OVERLOADED past the group cap, got %s", m)
		}
	}
	if n := calls.Load(); n != int64(1+resolve.MaxGroupPending) {
		t.Fatalf("%d calls, want %d (overloaded events are not resolved)", n, 1+resolve.MaxGroupPending)
	}
}

// TestResolvedResultCarriesHistoryPosition: on a topic with @history, a
// resolved event's next ends with its position like any other next.
func TestResolvedResultCarriesHistoryPosition(t *testing.T) {
	schema, err := gql.LoadSchema("h.graphql", `
type Event { seq: Int }
type Query { x: String }
type Subscription { feed(room: String!): Event @topic(name: "feed.{room}") @history(size: 100, ttl: "1m") }
`, gql.Options{FieldResolvers: map[string]gql.Resolver{"Subscription.feed": {Func: func(_ context.Context, p gql.ResolveParams) (any, error) {
		return map[string]any{"seq": gjson.GetBytes(p.Event, "n").Int() * 10}, nil
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(o *server.Options) { o.Schema = schema })
	c := connect(t, s.opts.Listen)
	c.subscribe("1", `subscription { feed(room: "r") { seq } }`, nil)
	s.waitSubs(t, 1)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	p.publish("feed.r", `{"n":1}`)
	p.publish("feed.r", `{"n":2}`)
	for i := range 2 {
		m := c.next()
		if gjson.Get(m, "payload.data.feed.seq").Int() != int64(10*(i+1)) || gjson.Get(m, "payload.extensions.fraised.offset").Uint() != uint64(i+1) {
			t.Fatalf("event %d: %s", i, m)
		}
	}
}
