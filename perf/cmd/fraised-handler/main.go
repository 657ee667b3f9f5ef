// Command fraised-handler is the harness's target for fraised's
// Handler(): the embedded server (package fraised) with its Redis-protocol
// publish listener, and its graphql-transport-ws endpoint served by
// net/http (one read and one writer goroutine per connection) instead of
// the gnet listener. It compares the two paths with the same scenarios:
//
//	fraised-handler --schema examples/schema.graphql --listen 127.0.0.1:4100 --publish-listen 127.0.0.1:4101
//	fraised-bench run --target fraised-handler --ws 127.0.0.1:4100 --publish 127.0.0.1:4101 --pid PID --scenario S3
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fraised/fraised"
	"github.com/fraised/fraised/server"
)

// readHeaderTimeout bounds a request head on the net/http listener, as
// --http-read-timeout does on fraised's own.
const readHeaderTimeout = 10 * time.Second

func main() {
	schema := flag.String("schema", "examples/schema.graphql", "GraphQL schema file")
	listen := flag.String("listen", "127.0.0.1:4100", "net/http address serving /graphql with fraised's Handler")
	publish := flag.String("publish-listen", "127.0.0.1:4101", "Redis-protocol publish address")
	flag.Parse()

	srv, err := fraised.New(fraised.Options{SchemaFile: *schema, Server: server.Options{
		Listen: "127.0.0.1:0", PublishListen: *publish, MaxConnectionsPerAddr: 0,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/graphql", srv.Handler())
	hs := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	go func() {
		if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = hs.Close()
}
