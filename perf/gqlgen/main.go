// Command gqlgen-server is the comparison server of fraised's perf harness:
// the Event schema served by gqlgen's websocket transport
// (graphql-transport-ws) with an in-memory pub/sub, and events published by
// HTTP POST /publish/{topic} with a JSON body.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/fraised/fraised/perf/gqlgen/graph"
	"github.com/fraised/fraised/perf/gqlgen/graph/model"
)

// maxEventBytes bounds a published body; the harness sends ~150 bytes.
const maxEventBytes = 1 << 20

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "HTTP address: /graphql (WebSocket) and POST /publish/{topic}")
	token := flag.String("token", "", "if set, POST /publish requires Authorization: Bearer TOKEN")
	keepAlive := flag.Duration("keepalive", 10*time.Second, "graphql-transport-ws ping interval (0 disables)")
	flag.Parse()
	if err := run(*listen, *token, *keepAlive); err != nil {
		slog.Error("gqlgen-server stopped", "err", err)
		os.Exit(1)
	}
}

func run(listen, token string, keepAlive time.Duration) error {
	ps := graph.NewPubSub()
	srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{PubSub: ps}}))
	srv.AddTransport(transport.Websocket{PingPongInterval: keepAlive, MissingPongOk: true})
	srv.AddTransport(transport.POST{})

	mux := http.NewServeMux()
	mux.Handle("/graphql", srv)
	mux.HandleFunc("POST /publish/{topic}", publishHandler(ps, token))

	hs := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	slog.Info("gqlgen-server listening", "addr", listen)
	select {
	case err := <-errc:
		return fmt.Errorf("cannot serve on %s: %w", listen, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot shut down: %w", err)
	}
	slog.Info("gqlgen-server stopped", "dropped_deliveries", ps.Dropped())
	return nil
}

// publishHandler decodes the body as an Event and offers it to the topic's
// subscribers; it answers {"deliveries":N}.
func publishHandler(ps *graph.PubSub, token string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxEventBytes))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		ev := new(model.Event)
		if err := json.Unmarshal(body, ev); err != nil {
			http.Error(w, "body is not an Event: "+err.Error(), http.StatusBadRequest)
			return
		}
		n := ps.Publish(r.PathValue("topic"), ev)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"deliveries\":%d}\n", n)
	}
}
