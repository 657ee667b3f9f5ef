package server_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/server"
)

// logSink collects the server's log lines. Safe for concurrent use.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitLine waits for a log line containing every one of want.
func (l *logSink) waitLine(t testing.TB, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line contains %q; log:\n%s", want, l.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func withLog(l *logSink) func(*server.Options) {
	return func(o *server.Options) { o.Logger = slog.New(slog.NewTextHandler(l, nil)) }
}

// sendFrame writes one masked client frame.
func (c *client) sendFrame(op ws.OpCode, fin bool, payload []byte) {
	c.t.Helper()
	if err := ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewFrame(op, fin, payload))); err != nil {
		c.t.Fatalf("send frame: %v", err)
	}
}

// TestInvalidUTF8Closes1007: a text message that is not UTF-8 is closed
// with 1007 (RFC 6455 §8.1), whole or fragmented; a message whose
// fragments split a character is valid once reassembled; a close frame
// whose reason is not UTF-8 is answered with 1007 too.
func TestInvalidUTF8Closes1007(t *testing.T) {
	s := startServer(t, nil)
	t.Run("whole message", func(t *testing.T) {
		c := connect(t, s.opts.Listen)
		c.send("{\"id\":\"\xff\xfe\",\"type\":\"complete\"}")
		c.expectClose(proto.CloseInvalidPayload)
	})
	t.Run("before connection_init", func(t *testing.T) {
		c := dial(t, s.opts.Listen)
		c.send("{\"type\":\"connection_init\",\"payload\":{\"x\":\"\xc3\"}}")
		c.expectClose(proto.CloseInvalidPayload)
	})
	t.Run("fragmented", func(t *testing.T) {
		c := connect(t, s.opts.Listen)
		c.sendFrame(ws.OpText, false, []byte(`{"type":"ping","payload":{"x":"`))
		c.sendFrame(ws.OpContinuation, true, []byte("\xed\xa0\x80\"}}")) // an encoded surrogate
		c.expectClose(proto.CloseInvalidPayload)
	})
	t.Run("character split across fragments", func(t *testing.T) {
		c := connect(t, s.opts.Listen)
		msg := []byte(`{"type":"ping","payload":{"x":"é€"}}`)
		cut := bytes.IndexRune(msg, '€') + 1 // inside the euro sign
		c.sendFrame(ws.OpText, false, msg[:cut])
		c.sendFrame(ws.OpContinuation, true, msg[cut:])
		c.expect(`{"type":"pong","payload":{"x":"é€"}}`)
	})
	t.Run("close reason", func(t *testing.T) {
		c := connect(t, s.opts.Listen)
		c.sendFrame(ws.OpClose, true, append([]byte{0x03, 0xe8}, 0xff))
		c.expectClose(proto.CloseInvalidPayload)
	})
}

// TestSubscriberExistsReasonIsUTF8: the 4409 reason quotes the id cut on a
// character boundary and JSON-escaped, so a browser receives the close
// (an invalid UTF-8 reason makes it fail the connection with 1006).
func TestSubscriberExistsReasonIsUTF8(t *testing.T) {
	s := startServer(t, nil)
	for _, tt := range []struct{ name, id, want string }{
		{"plain", "a1", "Subscriber for a1 already exists"},
		{"multibyte", strings.Repeat("€", 30), "Subscriber for " + strings.Repeat("€", 30) + " already exists"},
		{"too long", strings.Repeat("€", 40), "Subscriber for " + strings.Repeat("€", 31) + " already exists"}, // 123 bytes in all
		{"control and quote", "a\\u0001\\\"b", `Subscriber for a\u0001\"b already exists`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, s.opts.Listen)
			sub := `{"id":"` + tt.id + `","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { seq } }"}}`
			c.send(sub)
			c.send(sub)
			reason := c.expectClose(proto.CloseSubscriberExists)
			if !utf8.ValidString(reason) || reason != tt.want {
				t.Fatalf("reason %q (valid UTF-8: %v), want %q", reason, utf8.ValidString(reason), tt.want)
			}
		})
	}
}

// TestPongEchoesPayload: a pong carries the ping's payload, as the
// graphql-ws reference server does, without the token key (in any case);
// a ping without payload gets a bare pong.
func TestPongEchoesPayload(t *testing.T) {
	s := startServer(t, nil)
	c := connect(t, s.opts.Listen)
	c.send(`{"type":"ping"}`)
	c.expect(`{"type":"pong"}`)
	c.send(`{"type":"ping","payload":null}`)
	c.expect(`{"type":"pong"}`)
	c.send(`{"type":"ping","payload":{"seq":7,"authorization":"Bearer secret","nested":{"a":[1,"x"]},"Authorization":"Bearer s2"}}`)
	c.expect(`{"type":"pong","payload":{"seq":7,"nested":{"a":[1,"x"]}}}`)
	c.send(`{"type":"ping","payload":{}}`)
	c.expect(`{"type":"pong","payload":{}}`)
}

// TestOriginRefusalIsVisible: a refused Origin gets HTTP 403 with a body
// naming the reason, and the log says which Origin and which flag allows it.
func TestOriginRefusalIsVisible(t *testing.T) {
	logs := &logSink{}
	s := startServer(t, withLog(logs))
	conn, err := net.Dial("tcp", s.opts.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /graphql HTTP/1.1\r\nHost: " + s.opts.Listen + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n" +
		"Origin: https://evil.example\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "origin not allowed: https://evil.example") {
		t.Fatalf("got %d %q, want 403 naming the origin", res.StatusCode, body)
	}
	logs.waitLine(t, "kind=origin", "https://evil.example", "--allowed-origins")
}

// TestRefusalsAreLogged: a failed authentication, a 429, a 4429 and a
// subscribe over a limit each leave a log line with the reason and the
// setting to change.
func TestRefusalsAreLogged(t *testing.T) {
	t.Run("auth", func(t *testing.T) {
		logs := &logSink{}
		s, _ := startSecure(t, auth.ModeRequired, withLog(logs))
		c := dial(t, s.opts.Listen)
		c.initWith(mintWith(t, jwt.SigningMethodHS256, otherSecret, nil))
		c.expectClose(proto.CloseForbidden)
		logs.waitLine(t, "kind=auth", "bad signature", "--jwt-")
	})
	t.Run("no token", func(t *testing.T) {
		logs := &logSink{}
		s, _ := startSecure(t, auth.ModeRequired, withLog(logs))
		c := dial(t, s.opts.Listen)
		c.initWith("")
		c.expectClose(proto.CloseForbidden)
		logs.waitLine(t, "kind=auth", "no token", "--auth optional")
	})
	t.Run("429", func(t *testing.T) {
		logs := &logSink{}
		s := startServer(t, func(o *server.Options) {
			withLog(logs)(o)
			o.Security.Limits.ConnsPerIP = ratelimit.Limit{Rate: 0.001, Burst: 1}
		})
		connect(t, s.opts.Listen)
		if code := upgradeStatus(t, s.opts.Listen); code != http.StatusTooManyRequests {
			t.Fatalf("second connection got %d, want 429", code)
		}
		logs.waitLine(t, "kind=ip_connections", "HTTP 429", "--limit-ip-connections")
	})
	t.Run("identity connections", func(t *testing.T) {
		logs := &logSink{}
		s, _ := startSecure(t, auth.ModeRequired, func(o *server.Options) {
			withLog(logs)(o)
			o.Security.Limits.MaxConnsPerIdentity = 1
		})
		token := mint(t, nil)
		connectAs(t, s.opts.Listen, token)
		c := dial(t, s.opts.Listen)
		c.initWith(token)
		c.expectClose(proto.CloseTooManyInitRequests)
		logs.waitLine(t, "kind=identity_connections", "4429", "--max-identity-connections")
	})
	t.Run("subscribe limit", func(t *testing.T) {
		logs := &logSink{}
		s := startServer(t, func(o *server.Options) {
			withLog(logs)(o)
			o.MaxSubscriptionsPerConn = 1
		})
		c := connect(t, s.opts.Listen)
		c.subscribe("1", `subscription { events(topic: "x") { seq } }`, nil)
		c.subscribe("2", `subscription { events(topic: "x") { seq } }`, nil)
		c.expectError("2", "too many active operations")
		logs.waitLine(t, "kind=subscribe_limit", "--max-subscriptions")
	})
	t.Run("4429", func(t *testing.T) {
		logs := &logSink{}
		s := startServer(t, func(o *server.Options) {
			withLog(logs)(o)
			o.Security.Limits.MessagesPerConn = ratelimit.Limit{Rate: 0.001, Burst: 2}
		})
		c := connect(t, s.opts.Listen)
		c.send(`{"type":"ping"}`)
		c.expect(`{"type":"pong"}`)
		c.send(`{"type":"ping"}`)
		c.expectClose(proto.CloseTooManyInitRequests)
		logs.waitLine(t, "kind=message_rate", "4429", "--limit-messages")
	})
}

// TestRefusedSubscribeAuditCarriesField: a refused subscribe's audit
// record names the root field, whether it was refused before compiling
// (a limit) or by the compiler (@auth).
func TestRefusedSubscribeAuditCarriesField(t *testing.T) {
	s, sink := startSecure(t, auth.ModeRequired, func(o *server.Options) { o.MaxSubscriptionsPerConn = 1 })
	c := connectAs(t, s.opts.Listen, mint(t, nil))
	c.send(`{"id":"1","type":"subscribe","payload":{"operationName":"A","query":"subscription A { adminEvents { seq } }"}}`)
	c.expectError("1", "")
	sink.wait(t, "subscribe.refused", func(r auditRec) bool { return r.Field == "adminEvents" && r.Operation == "A" })
	if !c.accepted("2", `subscription { events(topic: "x") { seq } }`, nil) {
		t.Fatal("first subscription refused")
	}
	c.send(`{"id":"3","type":"subscribe","payload":{"operationName":"S","query":` +
		`"query Q { serverTime } fragment F on Subscription { tenantEvents { seq } } subscription S { ... on Subscription { ...F } }"}}`)
	c.expectError("3", "too many active operations")
	sink.wait(t, "ratelimit", func(r auditRec) bool { return r.Field == "tenantEvents" })
}

// TestControlQueueFullRefusesSubscribe: while the dispatcher is stalled
// (a blocking resolver) subscribes queue up to the cap; the next one gets
// a "server busy" error and is not registered, while removals are still
// queued past the cap and applied.
func TestControlQueueFullRefusesSubscribe(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	resolvers := map[string]gql.ResolverFunc{
		"Subscription.orderUpdated": func(ctx context.Context, p gql.ResolveParams) (any, error) {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
			return map[string]any{"id": "o", "status": "PAID"}, nil
		},
	}
	schema, err := gql.LoadSchema("orders.graphql", resolverSchema, gql.Options{Resolvers: resolvers})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logSink{}
	s := startServer(t, func(o *server.Options) {
		o.Schema = schema
		o.Resolvers = stallingResolvers("Subscription.orderUpdated") // stall the dispatcher on purpose
		withLog(logs)(o)
	})
	server.SetMaxQueuedSubscribes(s.Server, 2)
	const q = `subscription { orderUpdated(customerId: "9") { id } }`
	c := connect(t, s.opts.Listen)
	c.subscribe("0", q, nil) // registered before the stall, removed during it
	stalled := connect(t, s.opts.Listen)
	stalled.subscribe("r", `subscription { orderUpdated(customerId: "7") { id } }`, nil)
	s.waitSubs(t, 2)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	p.write([]byte("PUBLISH orders.7 {}\r\n"))
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the resolver was not called")
	}
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)

	c.subscribe("1", q, nil)
	c.subscribe("2", q, nil)
	c.subscribe("3", q, nil)
	c.expectError("3", "server busy")
	logs.waitLine(t, "kind=server_busy")
	c.send(`{"id":"0","type":"complete"}`) // removals are never refused
	c.send(`{"id":"1","type":"complete"}`)
	c.pingPong()

	unblock()
	stalled.next() // the stalled event's next
	p.line()       // and its publish reply
	// The refused id was not registered, so it is reusable; the queue has
	// room again once the dispatcher drained it.
	for deadline := time.Now().Add(5 * time.Second); !c.accepted("3", q, nil); {
		if time.Now().After(deadline) {
			t.Fatal("subscribes still refused 5 s after the dispatcher resumed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.waitSubs(t, 3) // r, 2 and 3
	p.publishUntil("orders.9", `{}`, 2)
	got := map[string]bool{}
	for range 2 {
		m := c.next()
		got[m[:strings.Index(m, `","type"`)]] = true
	}
	if !got[`{"id":"2`] || !got[`{"id":"3`] {
		t.Fatalf("deliveries went to %v, want ids 2 and 3 (0 and 1 were completed while the queue was full)", got)
	}
	if before := c.untilPong(); len(before) != 0 {
		t.Fatalf("unexpected messages: %v", before)
	}
}
