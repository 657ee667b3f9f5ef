// Command embed mounts fraised under /graphql on an existing HTTPS server
// (net/http, TLS) and publishes an event on topic "ticks" every second
// from Go. Subscribe with subscription { events(topic: "ticks") { seq } }
// over wss://HOST:8443/graphql.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/fraised/fraised"
	"github.com/fraised/fraised/server"
)

func main() {
	addr := flag.String("listen", ":8443", "HTTPS address")
	cert, key := flag.String("cert", "cert.pem", "TLS certificate"), flag.String("key", "key.pem", "TLS key")
	schema := flag.String("schema", "schema.graphql", "GraphQL schema file")
	flag.Parse()

	srv, err := fraised.New(fraised.Options{SchemaFile: *schema, Server: server.Options{Listen: "127.0.0.1:0"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	mux := http.NewServeMux()
	mux.Handle("/graphql", srv.Handler()) // WebSocket (graphql-transport-ws) and GraphQL over HTTP
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "your application") })
	go func() {
		for seq := 1; ; seq++ {
			time.Sleep(time.Second)
			_ = srv.Publish(context.Background(), "ticks", fmt.Appendf(nil, `{"seq":%d,"ts":%d}`, seq, time.Now().Unix()))
		}
	}()
	log.Fatal(http.ListenAndServeTLS(*addr, *cert, *key, mux))
}
