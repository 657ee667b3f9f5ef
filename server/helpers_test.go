package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/internal/freeport"
	"github.com/fraised/fraised/resp"
	"github.com/fraised/fraised/server"
)

// testServer is a running fraised on ephemeral loopback ports.
type testServer struct {
	*server.Server
	opts server.Options
}

// freePort is a loopback address for a listener the server binds itself.
func freePort(t testing.TB) string {
	t.Helper()
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func loadSchema(t testing.TB, resolvers map[string]gql.ResolverFunc) *gql.Schema {
	t.Helper()
	s, err := gql.LoadSchemaFile("../examples/schema.graphql", gql.Options{Resolvers: resolvers})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startServer starts a server; tweak adjusts the options first.
func startServer(t testing.TB, tweak func(*server.Options)) *testServer {
	t.Helper()
	opts := server.Options{
		Listen:        freePort(t),
		PublishListen: freePort(t),
		PublishUnix:   filepath.Join(t.TempDir(), "pub.sock"),
		EventLoops:    2,
	}
	if tweak != nil {
		tweak(&opts)
	}
	if opts.Schema == nil {
		opts.Schema = loadSchema(t, nil)
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Run() }()
	select {
	case <-srv.Ready():
	case err := <-errc:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start in 5s")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-errc
	})
	return &testServer{Server: srv, opts: opts}
}

// client is a graphql-transport-ws client over a real socket.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// dial opens a WebSocket offering protocols (default graphql-transport-ws).
func dial(t testing.TB, addr string, protocols ...string) *client {
	t.Helper()
	if protocols == nil {
		protocols = []string{"graphql-transport-ws"}
	}
	return dialWith(t, addr, ws.Dialer{Protocols: protocols, Timeout: 5 * time.Second})
}

// dialWith opens a WebSocket to the server's endpoint with d.
func dialWith(t testing.TB, addr string, d ws.Dialer) *client {
	t.Helper()
	conn, br, _, err := d.Dial(context.Background(), "ws://"+addr+"/graphql")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if br == nil {
		br = bufio.NewReader(conn)
	}
	return &client{t: t, conn: conn, r: br}
}

// connect dials and completes connection_init.
func connect(t testing.TB, addr string) *client {
	c := dial(t, addr)
	c.send(`{"type":"connection_init","payload":{}}`)
	c.expect(`{"type":"connection_ack"}`)
	return c
}

func (c *client) send(msg string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.conn, []byte(msg)); err != nil {
		c.t.Fatalf("send %s: %v", msg, err)
	}
}

// read returns the next text message, answering pings.
func (c *client) read() (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		msgs, err := wsutil.ReadServerMessage(c.r, nil)
		if err != nil {
			return "", err
		}
		for _, m := range msgs {
			switch m.OpCode {
			case ws.OpText:
				return string(m.Payload), nil
			case ws.OpPing:
				_ = wsutil.WriteClientMessage(c.conn, ws.OpPong, m.Payload)
			case ws.OpClose:
				code, reason := ws.ParseCloseFrameData(m.Payload)
				return "", wsutil.ClosedError{Code: code, Reason: reason}
			}
		}
	}
}

func (c *client) next() string {
	c.t.Helper()
	m, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// expect reads a message and compares it to want byte for byte (key
// order matters: results follow the selection order).
func (c *client) expect(want string) {
	c.t.Helper()
	got := c.next()
	if got != want {
		c.t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// expectClose reads until the server closes with code.
func (c *client) expectClose(code ws.StatusCode) string {
	c.t.Helper()
	for {
		m, err := c.read()
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			if ce.Code != code {
				c.t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Reason, code)
			}
			return ce.Reason
		}
		if err != nil {
			c.t.Fatalf("want close %d, got error %v", code, err)
		}
		_ = m
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// subscribe sends a subscribe message.
func (c *client) subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	v, _ := json.Marshal(vars)
	q, _ := json.Marshal(query)
	c.send(fmt.Sprintf(`{"id":%q,"type":"subscribe","payload":{"query":%s,"variables":%s}}`, id, q, v))
}

// publisher is a Redis-protocol client.
type publisher struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialPublisher(t testing.TB, network, addr string) *publisher {
	t.Helper()
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &publisher{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (p *publisher) write(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

// line reads one reply line.
func (p *publisher) line() string {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("read reply: %v", err)
	}
	return strings.TrimRight(s, "\r\n")
}

// expectEOF reads until the server closes the connection; any reply
// before the close fails the test.
func (p *publisher) expectEOF() {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := p.r.ReadString('\n')
	if err == nil || s != "" {
		p.t.Fatalf("want the connection closed, got %q, %v", s, err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		p.t.Fatalf("want the connection closed, still open after 5s")
	}
}

// publish sends PUBLISH and returns the reply line.
func (p *publisher) publish(topic, payload string) string {
	p.t.Helper()
	p.write(resp.AppendArray(nil, []byte("PUBLISH"), []byte(topic), []byte(payload)))
	return p.line()
}

// publishUntil republishes until the event reaches want subscriptions:
// subscribing is asynchronous, and the reply counts deliveries.
func (p *publisher) publishUntil(topic, payload string, want int) {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := p.publish(topic, payload)
		if got == fmt.Sprintf(":%d", want) {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("publish reached %s subscriptions, want %d", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitSubs waits until the dispatcher has registered n subscriptions.
func (s *testServer) waitSubs(t testing.TB, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Subscriptions != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions registered, want %d", s.Stats().Subscriptions, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
