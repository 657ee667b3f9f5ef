package server_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/resolve"
	"github.com/fraised/fraised/server"
)

// querySDL has query fields with resolvers: one stuck (it ignores its
// context), one that gives up when its context ends, one that answers.
const querySDL = `
type Event { seq: Int! }
type Query { stuck: String polite: String fast: String }
type Subscription { events(topic: String!): Event! @topic(name: "{topic}") }
`

// queryTimeout is --resolver-timeout in these tests.
const queryTimeout = 300 * time.Millisecond

// startQueryServer starts a server whose query resolvers time out after
// queryTimeout; the stuck resolver returns when the test ends.
func startQueryServer(t *testing.T) *testServer {
	t.Helper()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	schema, err := gql.LoadSchema("q.graphql", querySDL, gql.Options{FieldResolvers: map[string]gql.Resolver{
		"Query.stuck": {Func: func(context.Context, gql.ResolveParams) (any, error) {
			<-release
			return "late", nil
		}},
		"Query.polite": {Func: func(ctx context.Context, _ gql.ResolveParams) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}},
		"Query.fast": {Func: func(context.Context, gql.ResolveParams) (any, error) { return "ok", nil }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	router := resolve.NewRouter(resolve.Options{Workers: 2, Timeout: queryTimeout})
	t.Cleanup(func() { router.Close(context.Background()) })
	return startServer(t, func(o *server.Options) { o.Schema = schema; o.Resolvers = router })
}

// checkTimedOutQuery checks the result of { stuck polite fast }: both
// slow fields null with RESOLVER_TIMEOUT at their path, fast answered,
// and the answer came at the deadline, not when the stuck resolver
// returned.
func checkTimedOutQuery(t *testing.T, result string, took time.Duration) {
	t.Helper()
	r := gjson.Parse(result)
	if r.Get("data.stuck").Type != gjson.Null || r.Get("data.polite").Type != gjson.Null || r.Get("data.fast").String() != "ok" {
		t.Fatalf("data: %s", result)
	}
	paths := map[string]bool{}
	for _, e := range r.Get("errors").Array() {
		if e.Get("extensions.code").String() != gql.CodeResolverTimeout {
			t.Fatalf("want RESOLVER_TIMEOUT errors, got %s", result)
		}
		paths[e.Get("path.0").String()] = true
	}
	if len(paths) != 2 || !paths["stuck"] || !paths["polite"] {
		t.Fatalf("want a RESOLVER_TIMEOUT at stuck and at polite, got %s", result)
	}
	if took < queryTimeout {
		t.Fatalf("answered after %v, before the deadline (%v)", took, queryTimeout)
	}
	if took > 5*time.Second { // generous for a loaded machine; the stuck resolver never returns
		t.Fatalf("answered after %v: the query waited for a stuck resolver", took)
	}
}

// TestQueryResolverTimeoutOverWebSocket: a query's resolvers get
// --resolver-timeout; past it the query answers with RESOLVER_TIMEOUT at
// the slow fields (a resolver ignoring its context included), and the
// connection goes on.
func TestQueryResolverTimeoutOverWebSocket(t *testing.T) {
	s := startQueryServer(t)
	c := connect(t, s.opts.Listen)
	start := time.Now()
	c.subscribe("q", `{ stuck polite fast }`, nil)
	m := c.next()
	took := time.Since(start)
	if gjson.Get(m, "id").String() != "q" || gjson.Get(m, "type").String() != "next" {
		t.Fatalf("want the query's next, got %s", m)
	}
	checkTimedOutQuery(t, gjson.Get(m, "payload").Raw, took)
	c.expect(`{"id":"q","type":"complete"}`)
	c.subscribe("f", `{ fast }`, nil)
	c.expect(`{"id":"f","type":"next","payload":{"data":{"fast":"ok"}}}`)
	c.expect(`{"id":"f","type":"complete"}`)
}

// TestQueryResolverTimeoutOverHTTP: the same over GraphQL over HTTP, on
// the gnet listener and through Server.Handler.
func TestQueryResolverTimeoutOverHTTP(t *testing.T) {
	s := startQueryServer(t)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	for _, base := range []string{"http://" + s.opts.Listen + "/graphql", hs.URL + "/graphql"} {
		start := time.Now()
		resp, body := httpDo(t, "POST", base, `{"query":"{ stuck polite fast }"}`, map[string]string{"Content-Type": jsonCT})
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), jsonCT) {
			t.Fatalf("%s: status %d %s", base, resp.StatusCode, body)
		}
		checkTimedOutQuery(t, body, time.Since(start))
	}
}
