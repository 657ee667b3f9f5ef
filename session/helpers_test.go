package session

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/internal/outbox"
)

// Test defaults: the server's (DefaultRingSize, DefaultRingBytes,
// DefaultMaxOutbound).
const (
	testRingSize    = 1 << 16
	testRingBytes   = 16 << 20
	testMaxOutbound = 4 << 20
)

// nopOwner is a connection that is never hung up or cut in these tests.
type nopOwner struct{}

func (nopOwner) Hangup()        {}
func (nopOwner) CutSlow(string) {}

// recConn is a Conn that records what the session sends: the messages in
// order and the close. Safe for concurrent use, like a transport.
type recConn struct {
	out    outbox.Outbox // never written (no descriptor)
	mu     sync.Mutex
	msgs   []string
	code   ws.StatusCode
	reason string
	closed bool
	inits  int
}

func newRecConn(w *outbox.Writer) *recConn {
	c := &recConn{}
	c.out.Init(-1, w, nopOwner{})
	c.out.SetFramer(outbox.WebSocket{})
	return c
}

func (c *recConn) Send(msg []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.msgs = append(c.msgs, string(msg))
	}
}

func (c *recConn) Close(code ws.StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed, c.code, c.reason = true, code, reason
	}
}

func (c *recConn) Output() *outbox.Outbox { return &c.out }

func (c *recConn) Initialised() {
	c.mu.Lock()
	c.inits++
	c.mu.Unlock()
}

// sent returns the messages sent so far.
func (c *recConn) sent() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// closedWith returns the close code (0: not closed).
func (c *recConn) closedWith() ws.StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code
}

// waitSent waits until n messages were sent, for seconds at most.
func (c *recConn) waitSent(t testing.TB, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := c.sent(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent %q, want %d messages", c.sent(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// testEnv is a dispatcher (not running: queued registrations are dropped
// by hand) and its writer, with the example schema.
type testEnv struct {
	d      *dispatch.Dispatcher
	w      *outbox.Writer
	schema *gql.Schema
}

func newTestEnv(tb testing.TB) *testEnv {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	w, err := outbox.NewWriter(log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Stop)
	schema, err := gql.LoadSchemaFile("../examples/schema.graphql", gql.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	d := dispatch.New(dispatch.Config{RingSize: testRingSize, RingBytes: testRingBytes, MaxOutbound: testMaxOutbound, Writer: w, Log: log})
	return &testEnv{d: d, w: w, schema: schema}
}

// shared returns sessions' shared state over e with cfg's other fields.
func (e *testEnv) shared(cfg Config) *Shared {
	cfg.Schema, cfg.Dispatcher = e.schema, e.d
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = 64 << 10
	}
	if cfg.Limits.MaxOperations == 0 {
		cfg.Limits.MaxOperations = 100
	}
	cfg.Log = slog.New(slog.DiscardHandler)
	return NewShared(cfg)
}

// start returns a session over a fresh recConn.
func (e *testEnv) start(h *Shared) (*Session, *recConn) {
	c := newRecConn(e.w)
	s := &Session{}
	s.Init(h, c, Peer{ID: 1, Remote: "127.0.0.1:1"})
	return s, c
}

// msg hands the session one message, arrived now.
func msg(s *Session, m string) { s.OnMessage([]byte(m), time.Now().UnixNano()) }
