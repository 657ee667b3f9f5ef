package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/resolve"
	"github.com/fraised/fraised/server"
)

// replaySDL has a history topic whose field has a resolver (feed) and a
// plain topic (events) beside it.
const replaySDL = `
type Event { seq: Int! }
type Query { x: String }
type Subscription {
  feed(room: String!): Event @topic(name: "feed.{room}") @history(size: 100, ttl: "1m")
  events(topic: String!): Event! @topic(name: "{topic}")
}
`

// replayBlock is how long the resolver blocks on a "block" event,
// ignoring its context (the worst kind of resolver).
const replayBlock = 2 * time.Second

// TestResumeResolvesOffTheDispatcher: a resume of a resolver field
// replays through the resolver backend: while the replay's call blocks
// (2 s, ignoring its context), another topic's live events are delivered
// at once; the blocked event's next carries RESOLVER_TIMEOUT at the
// deadline; the replayed results are correct and in order (offsets 1..n,
// the event published during the replay included: no gap, no duplicate),
// then the subscription is live.
func TestResumeResolvesOffTheDispatcher(t *testing.T) {
	blocked := make(chan struct{}, 1)
	schema, err := gql.LoadSchema("replay.graphql", replaySDL, gql.Options{FieldResolvers: map[string]gql.Resolver{
		"Subscription.feed": {Func: func(_ context.Context, p gql.ResolveParams) (any, error) {
			if gjson.GetBytes(p.Event, "block").Bool() {
				blocked <- struct{}{}
				time.Sleep(replayBlock)
			}
			return map[string]any{"seq": gjson.GetBytes(p.Event, "n").Int() * 10}, nil
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	router := resolve.NewRouter(resolve.Options{Workers: 4, Timeout: 300 * time.Millisecond})
	t.Cleanup(func() { router.Close(context.Background()) })
	s := startServer(t, func(o *server.Options) { o.Schema = schema; o.Resolvers = router })
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	for n := 1; n <= 6; n++ {
		body := fmt.Sprintf(`{"n":%d}`, n)
		if n == 3 {
			body = `{"n":3,"block":true}`
		}
		if got := pub.publish("feed.r", body); got != ":0" {
			t.Fatalf("publish %d: %s", n, got)
		}
	}
	other := connect(t, s.opts.Listen)
	other.subscribe("o", `subscription { events(topic: "news") { seq } }`, nil)
	s.waitSubs(t, 1)

	c := connect(t, s.opts.Listen)
	c.subscribe("x", `subscription { feed(room: "r") { seq } }`, nil)
	s.waitSubs(t, 2) // a live subscriber learns the epoch
	pub.publish("feed.r", `{"n":0}`)
	epoch := gjson.Get(c.next(), "payload.extensions.fraised.epoch").String()
	c.send(`{"id":"x","type":"complete"}`)
	s.waitSubs(t, 1)

	c.send(fmt.Sprintf(`{"id":"1","type":"subscribe","payload":{"query":"subscription { feed(room: \"r\") { seq } }","extensions":{"fraised":{"resume":{"epoch":%q,"offset":0}}}}}`, epoch))
	select {
	case <-blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("the replay never called the resolver for the blocking event")
	}
	// The replay's call blocks now: other topics go on, and an event
	// published to the resumed topic waits its turn in the stream.
	start := time.Now()
	var worst time.Duration
	for i := range 20 {
		at := time.Now()
		pub.publish("news", fmt.Sprintf(`{"seq":%d}`, i))
		other.expect(fmt.Sprintf(`{"id":"o","type":"next","payload":{"data":{"events":{"seq":%d}}}}`, i))
		worst = max(worst, time.Since(at))
	}
	pub.publish("feed.r", `{"n":8}`)
	if elapsed := time.Since(start); elapsed >= replayBlock {
		t.Fatalf("20 events to another topic took %v, the resolver's whole block: they waited for it", elapsed)
	}
	if worst > time.Second { // generous for a loaded 2-core machine; the block lasts 2 s
		t.Fatalf("another topic's events waited %v behind a replay's resolver", worst)
	}
	want := []int64{0, 10, 20, -1, 40, 50, 60, 0, 80}
	for off := 1; off < len(want); off++ {
		m := c.next()
		p := gjson.Get(m, "payload")
		if gjson.Get(m, "id").String() != "1" || p.Get("extensions.fraised.offset").Int() != int64(off) || p.Get("extensions.fraised.epoch").String() != epoch {
			t.Fatalf("offset %d: got %s", off, m)
		}
		switch {
		case want[off] == -1:
			if p.Get("errors.0.extensions.code").String() != gql.CodeResolverTimeout || p.Get("data.feed").Type != gjson.Null {
				t.Fatalf("offset %d: want RESOLVER_TIMEOUT, got %s", off, m)
			}
		case p.Get("data.feed.seq").Int() != want[off] || p.Get("errors").Exists():
			t.Fatalf("offset %d: want seq %d, got %s", off, want[off], m)
		}
	}
	// Caught up: live now, through the group.
	s.waitSubs(t, 2)
	pub.publish("feed.r", `{"n":9}`)
	if m := c.next(); gjson.Get(m, "payload.data.feed.seq").Int() != 90 || gjson.Get(m, "payload.extensions.fraised.offset").Int() != 9 {
		t.Fatalf("live after the replay: %s", m)
	}
}
