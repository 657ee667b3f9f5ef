// Package fraised embeds the fraised GraphQL subscriptions server in a Go
// program: build a Server from Options (a schema file or string and
// compiled-in resolvers), Start it, Publish events from your own code, and
// Shutdown it. Clients subscribe over WebSocket (graphql-transport-ws) on
// Options.Server.Listen, query over HTTP on the same /graphql endpoint,
// and browse the schema in the embedded GraphiQL page.
//
// Publish goes through the same validation, limits, ring and dispatcher as
// a publish over the Redis protocol: the event is checked (a JSON object
// of at most MaxPayload bytes, a topic of 1 to 1024 bytes), waits for room
// while the ring is full, and is delivered to every matching subscription.
//
// The server is the fraised command's: every setting of `fraised --help`
// is a field of server.Options (Options.Server), with the same defaults,
// except that the Redis-protocol publish listener is off unless
// Options.Server.PublishListen names an address (a program that embeds
// fraised publishes with Publish).
package fraised

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/server"
	"github.com/fraised/fraised/source"
)

// Resolver is a compiled-in field resolver (see gql.ResolverFunc): it is
// called from many goroutines at once and must be safe for that.
type Resolver = gql.ResolverFunc

// ResolveParams is what a Resolver gets (see gql.ResolveParams).
type ResolveParams = gql.ResolveParams

// Errors returned by Publish, to test with errors.Is.
var (
	// ErrInvalid: the event itself was refused (topic or payload);
	// publishing it again would be refused again.
	ErrInvalid = source.ErrInvalid
	// ErrDraining: Shutdown has begun; the event was not taken.
	ErrDraining = server.ErrDraining
	// ErrNotStarted: Publish was called before Start or after the server
	// stopped.
	ErrNotStarted = errors.New("fraised: the server is not running (call Start first)")
)

// Options configures New. Exactly one of Schema and SchemaFile is set.
type Options struct {
	// Schema is the GraphQL SDL, as a string.
	Schema string
	// SchemaFile is the path of the GraphQL SDL file (its name appears in
	// schema errors).
	SchemaFile string
	// Resolvers are the compiled-in field resolvers, keyed
	// "Subscription.orderUpdated" or "Query.serverTime"; a key the schema
	// does not have is an error.
	Resolvers map[string]Resolver
	// Limits bound the operations clients send (depth, aliases,
	// complexity...); a zero field is gql's default.
	Limits gql.Limits
	// DisableIntrospection refuses __schema and __type queries
	// (INTROSPECTION_DISABLED), like --introspection=false.
	DisableIntrospection bool
	// IntrospectFraisedDirectives lists @topic, @filter and @auth in
	// introspection, like --introspect-fraised-directives.
	IntrospectFraisedDirectives bool
	// Server holds every other setting; its Schema field is ignored (set
	// from the fields above). A zero field is the documented default,
	// except PublishListen: empty (or "-") leaves the Redis-protocol
	// publish listener off.
	Server server.Options
}

// startTimeout bounds Start's wait for the network engine's event loops:
// they come up in milliseconds; far past that something is broken (and
// Start says so rather than hang).
const startTimeout = 10 * time.Second

// Server is an embedded fraised server. Its methods are safe for
// concurrent use.
type Server struct {
	srv     *server.Server
	mu      sync.Mutex
	started bool // Start was called
	up      bool // Start succeeded: the engine booted, so Shutdown cannot hang
	stopped chan struct{}
	err     error // Run's result, after stopped is closed
}

// New loads the schema and prepares a server; nothing listens until
// Start.
func New(opts Options) (*Server, error) {
	schema, err := loadSchema(opts)
	if err != nil {
		return nil, err
	}
	so := opts.Server
	so.Schema = schema
	if so.PublishListen == "" {
		so.PublishListen = "-"
	}
	srv, err := server.New(so)
	if err != nil {
		return nil, err
	}
	return &Server{srv: srv, stopped: make(chan struct{})}, nil
}

// loadSchema loads the schema opts names.
func loadSchema(opts Options) (*gql.Schema, error) {
	gopts := gql.Options{
		Resolvers:                   opts.Resolvers,
		Limits:                      opts.Limits,
		Logger:                      opts.Server.Logger,
		DisableIntrospection:        opts.DisableIntrospection,
		IntrospectFraisedDirectives: opts.IntrospectFraisedDirectives,
	}
	switch {
	case opts.Schema != "" && opts.SchemaFile != "":
		return nil, errors.New("fraised: set Options.Schema or Options.SchemaFile, not both")
	case opts.SchemaFile != "":
		return gql.LoadSchemaFile(opts.SchemaFile, gopts)
	case opts.Schema != "":
		return gql.LoadSchema("schema.graphql", opts.Schema, gopts)
	}
	return nil, errors.New("fraised: no schema: set Options.Schema (SDL text) or Options.SchemaFile (a path)")
}

// Start opens the listeners and returns once the server accepts
// connections, or with the reason it cannot (an address in use, say). A
// server starts once; after Shutdown it cannot start again.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("fraised: Start called twice: a Server starts once")
	}
	s.started = true
	go func() {
		s.err = s.srv.Run()
		close(s.stopped)
	}()
	select {
	case <-s.srv.Ready():
		s.up = true
		return nil
	case <-s.stopped:
		return s.err
	case <-time.After(startTimeout):
		return fmt.Errorf("fraised: the server did not come up within %s", startTimeout)
	}
}

// Addr is the address of the HTTP/WebSocket listener (the port chosen for
// a Listen of "127.0.0.1:0"), or nil before Start.
func (s *Server) Addr() net.Addr { return s.srv.Addr() }

// Publish delivers payload (a JSON object) to the subscriptions of topic,
// through the same validation, limits, ring and dispatcher as a publish
// over the Redis protocol. It returns once the event is in the ring (the
// server then owns it: it is delivered, on Shutdown too), waiting while
// the ring is full; an error wrapping ErrInvalid when the event is
// refused, ctx.Err() when ctx ends first (the event is dropped),
// ErrDraining once Shutdown has begun, ErrNotStarted before Start. topic
// and payload are copied.
func (s *Server) Publish(ctx context.Context, topic string, payload []byte) error {
	if s.srv.Addr() == nil {
		return ErrNotStarted
	}
	return s.srv.Publish(ctx, topic, payload)
}

// Shutdown drains the server within ctx's deadline (or
// Options.Server.DrainTimeout): it stops accepting, delivers every event
// already published, closes the WebSockets with 1001 and stops. It
// returns the drain's error, else the error that stopped the server, if
// any. Safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	up := s.up
	s.mu.Unlock()
	if !up {
		return nil // never started, or Start failed: nothing runs
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		return err
	}
	select {
	case <-s.stopped:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the server has stopped (after Shutdown, or by
// itself: then Err says why).
func (s *Server) Done() <-chan struct{} { return s.stopped }

// Err is why the server stopped, once Done is closed (nil after a clean
// Shutdown).
func (s *Server) Err() error {
	select {
	case <-s.stopped:
		return s.err
	default:
		return nil
	}
}

// Handler returns an http.Handler serving fraised on any net/http server,
// at the path it is mounted on: WebSocket upgrades (graphql-transport-ws)
// and GraphQL over HTTP, through the same session state machine,
// security checks, limits and dispatcher as the listener, on connections
// the host terminates (TLS included). The server must be started; its
// Shutdown closes the handler's WebSockets with 1001 too. See
// server.Server.Handler.
func (s *Server) Handler() http.Handler { return s.srv.Handler() }

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() server.Stats { return s.srv.Stats() }
