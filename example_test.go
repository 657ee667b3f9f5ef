package fraised_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/fraised/fraised"
	"github.com/fraised/fraised/server"
)

const exampleSchema = `
type Event { seq: Int! body: String }
type Query { version: String }
type Subscription { events(topic: String!): Event! @topic(name: "{topic}") }
`

// A server with a compiled-in query resolver, answering a query over
// HTTP on /graphql.
func Example() {
	srv, err := fraised.New(fraised.Options{
		Schema: exampleSchema,
		Resolvers: map[string]fraised.Resolver{
			"Query.version": func(context.Context, fraised.ResolveParams) (any, error) { return "1.0", nil },
		},
		Server: server.Options{Listen: "127.0.0.1:0"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	resp, err := http.Post("http://"+srv.Addr().String()+"/graphql", "application/json",
		strings.NewReader(`{"query":"{ version }"}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 {"data":{"version":"1.0"}}
}

// Publishing from Go: a graphql-transport-ws client subscribes, and an
// event published with Publish reaches it, projected on its selection.
func ExampleServer_Publish() {
	srv, err := fraised.New(fraised.Options{Schema: exampleSchema, Server: server.Options{Listen: "127.0.0.1:0"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	// A subscriber (any graphql-ws client would do).
	conn, br, _, err := ws.Dialer{Protocols: []string{"graphql-transport-ws"}}.Dial(context.Background(), "ws://"+srv.Addr().String()+"/graphql")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if br == nil {
		br = bufio.NewReader(conn)
	}
	rw := struct {
		io.Reader
		io.Writer
	}{br, conn}
	_ = wsutil.WriteClientText(conn, []byte(`{"type":"connection_init"}`))
	_, _ = wsutil.ReadServerText(rw) // connection_ack
	_ = wsutil.WriteClientText(conn, []byte(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"demo\") { seq } }"}}`))
	for srv.Stats().Subscriptions == 0 { // registered by the dispatcher
		time.Sleep(time.Millisecond)
	}

	if err := srv.Publish(context.Background(), "demo", []byte(`{"seq":1,"body":"hello"}`)); err != nil {
		log.Fatal(err)
	}
	msg, _ := wsutil.ReadServerText(rw)
	fmt.Println(string(msg))
	// Output: {"id":"1","type":"next","payload":{"data":{"events":{"seq":1}}}}
}
