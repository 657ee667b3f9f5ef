package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/server"
)

const eventsQuery = `subscription($t: String!) { events(topic: $t) { seq body } }`

func TestSubscribeAndReceive(t *testing.T) {
	s := startServer(t, nil)
	c := connect(t, s.opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "news"})
	s.waitSubs(t, 1)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := p.publish("news", `{"seq":1,"ts":2.5,"body":"hello","extra":true}`); got != ":1" {
		t.Fatalf("publish reply %q, want :1", got)
	}
	c.expect(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":1,"body":"hello"}}}}`)
	if got := p.publish("other", `{"seq":2}`); got != ":0" {
		t.Fatalf("publish to a topic without subscribers replied %q", got)
	}
	c.send(`{"id":"1","type":"complete"}`)
	s.waitSubs(t, 0)
	if got := p.publish("news", `{"seq":3,"ts":1}`); got != ":0" {
		t.Fatalf("publish after complete replied %q, want :0", got)
	}
}

func TestCloseCodes(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.InitTimeout = 200 * time.Millisecond })
	tests := []struct {
		name  string
		setup func(c *client)
		code  ws.StatusCode
	}{
		{"bad JSON", func(c *client) { c.send(`{"type":`) }, proto.CloseBadRequest},
		{"not an object", func(c *client) { c.send(`[1,2]`) }, proto.CloseBadRequest},
		{"unknown type", func(c *client) { c.send(`{"type":"hello"}`) }, proto.CloseBadRequest},
		{"missing type", func(c *client) { c.send(`{"id":"1"}`) }, proto.CloseBadRequest},
		{"server-only type", func(c *client) { c.send(`{"type":"connection_ack"}`) }, proto.CloseBadRequest},
		{"next from client", func(c *client) { c.send(`{"id":"1","type":"next","payload":{}}`) }, proto.CloseBadRequest},
		{"init payload not object", func(c *client) { c.send(`{"type":"connection_init","payload":"x"}`) }, proto.CloseBadRequest},
		{"subscribe without id", func(c *client) {
			ack(c)
			c.send(`{"type":"subscribe","payload":{"query":"{ __typename }"}}`)
		}, proto.CloseBadRequest},
		{"subscribe payload without query", func(c *client) {
			ack(c)
			c.send(`{"id":"1","type":"subscribe","payload":{}}`)
		}, proto.CloseBadRequest},
		{"subscribe variables not object", func(c *client) {
			ack(c)
			c.send(`{"id":"1","type":"subscribe","payload":{"query":"{ __typename }","variables":[1]}}`)
		}, proto.CloseBadRequest},
		{"subscribe before ack", func(c *client) {
			c.send(`{"id":"1","type":"subscribe","payload":{"query":"{ __typename }"}}`)
		}, proto.CloseUnauthorized},
		{"duplicate id", func(c *client) {
			ack(c)
			c.subscribe("a", eventsQuery, map[string]any{"t": "x"})
			c.subscribe("a", eventsQuery, map[string]any{"t": "y"})
		}, proto.CloseSubscriberExists},
		{"second init", func(c *client) {
			ack(c)
			c.send(`{"type":"connection_init"}`)
		}, proto.CloseTooManyInitRequests},
		{"init timeout", func(c *client) {}, proto.CloseInitTimeout},
		{"binary frame", func(c *client) {
			_ = wsutil.WriteClientBinary(c.conn, []byte(`{"type":"connection_init"}`))
		}, proto.CloseUnsupportedData},
		{"message too big", func(c *client) {
			c.send(`{"type":"connection_init","payload":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`)
		}, proto.CloseMessageTooBig},
		{"client close is echoed", func(c *client) {
			_ = wsutil.WriteClientMessage(c.conn, ws.OpClose, ws.NewCloseFrameBody(4000, "bye"))
		}, 4000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, s.opts.Listen)
			tt.setup(c)
			c.expectClose(tt.code)
		})
	}
}

func ack(c *client) {
	c.send(`{"type":"connection_init"}`)
	c.expect(`{"type":"connection_ack"}`)
}

func TestSubprotocolNotAcceptable(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s.opts.Listen, "graphql-ws")
	c.expectClose(proto.CloseSubprotocolNotOK)
}

func TestUnmaskedFrameIsProtocolError(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s.opts.Listen)
	if err := ws.WriteFrame(c.conn, ws.NewTextFrame([]byte(`{"type":"connection_init"}`))); err != nil {
		t.Fatal(err)
	}
	c.expectClose(proto.CloseProtocolError)
}

func TestPingPongAndControlFrames(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s.opts.Listen)
	c.send(`{"type":"ping","payload":{"n":1}}`)
	c.expect(`{"type":"pong","payload":{"n":1}}`) // the payload is echoed
	c.send(`{"type":"pong"}`)                     // unsolicited pongs are allowed
	if err := wsutil.WriteClientMessage(c.conn, ws.OpPing, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := ws.ReadHeader(c.r)
	if err != nil || h.OpCode != ws.OpPong || h.Length != 2 {
		t.Fatalf("want pong frame with the ping's payload, got %+v %v", h, err)
	}
	payload := make([]byte, 2)
	if _, err := c.r.Read(payload); err != nil || string(payload) != "hi" {
		t.Fatalf("pong payload %q %v", payload, err)
	}
	ack(c)
}

func TestFragmentedMessage(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s.opts.Listen)
	msg := []byte(`{"type":"connection_init","payload":{"a":"b"}}`)
	frames := []ws.Frame{
		ws.NewFrame(ws.OpText, false, msg[:10]),
		ws.NewPingFrame([]byte("x")), // control frames may interleave
		ws.NewFrame(ws.OpContinuation, false, msg[10:20]),
		ws.NewFrame(ws.OpContinuation, true, msg[20:]),
	}
	for _, f := range frames {
		if err := ws.WriteFrame(c.conn, ws.MaskFrame(f)); err != nil {
			t.Fatal(err)
		}
	}
	c.expect(`{"type":"connection_ack"}`)
}

func TestValidationErrorKeepsSocketOpen(t *testing.T) {
	s := startServer(t, nil)
	c := connect(t, s.opts.Listen)
	c.subscribe("bad", `subscription { events(topic: "x") { nope } }`, nil)
	m := c.next()
	if !strings.Contains(m, `"id":"bad","type":"error"`) || !strings.Contains(m, `"locations"`) || !strings.Contains(m, "nope") {
		t.Fatalf("unexpected error message %s", m)
	}
	c.subscribe("syntax", `subscription {`, nil)
	if m := c.next(); !strings.Contains(m, `"type":"error"`) {
		t.Fatalf("want error for syntax error, got %s", m)
	}
	// The socket still works and the id can be reused.
	c.subscribe("bad", eventsQuery, map[string]any{"t": "ok"})
	s.waitSubs(t, 1)
}

func TestQueryOperation(t *testing.T) {
	s := startServer(t, nil)
	c := connect(t, s.opts.Listen)
	c.subscribe("q", `query { __typename }`, nil)
	c.expect(`{"id":"q","type":"next","payload":{"data":{"__typename":"Query"}}}`)
	c.expect(`{"id":"q","type":"complete"}`)
	// A field without a resolver is a field error in the result.
	c.subscribe("q2", `{ serverTime }`, nil)
	m := c.next()
	if !strings.Contains(m, `"serverTime":null`) || !strings.Contains(m, `"errors"`) {
		t.Fatalf("want a field error, got %s", m)
	}
	c.expect(`{"id":"q2","type":"complete"}`)
}

func TestKeepAlivePing(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.KeepAlive = 300 * time.Millisecond })
	c := connect(t, s.opts.Listen)
	_ = c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	h, err := ws.ReadHeader(c.r)
	if err != nil || h.OpCode != ws.OpPing {
		t.Fatalf("want a keep-alive ping, got %+v %v", h, err)
	}
}

func TestKeepAliveDropsSilentPeer(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.KeepAlive = 100 * time.Millisecond })
	conn, err := net.Dial("tcp", s.opts.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Upgrade, init, then never answer pings or send anything.
	if _, _, err := (ws.Dialer{Protocols: []string{"graphql-transport-ws"}}).Upgrade(conn, mustURL("ws://"+s.opts.Listen+"/graphql")); err != nil {
		t.Fatal(err)
	}
	_ = wsutil.WriteClientText(conn, []byte(`{"type":"connection_init"}`))
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := conn.Read(buf); err != nil {
			return // closed by the server
		}
	}
}

func TestTooManySubscriptions(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxSubscriptionsPerConn = 2 })
	c := connect(t, s.opts.Listen)
	for i := 0; i < 2; i++ {
		c.subscribe(fmt.Sprint(i), eventsQuery, map[string]any{"t": "x"})
	}
	c.subscribe("3", eventsQuery, map[string]any{"t": "x"})
	if m := c.next(); !strings.Contains(m, `"id":"3","type":"error"`) {
		t.Fatalf("want error for a third subscription, got %s", m)
	}
}

// TestUpgradeAndInitInOneWrite: frames that arrive with the upgrade
// request are handled without waiting for more input.
func TestUpgradeAndInitInOneWrite(t *testing.T) {
	s := startServer(t, nil)
	conn, err := net.Dial("tcp", s.opts.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
	var frame bytes.Buffer
	_ = ws.WriteFrame(&frame, ws.MaskFrame(ws.NewTextFrame([]byte(`{"type":"connection_init"}`))))
	if _, err := conn.Write(append([]byte(req), frame.Bytes()...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	msgs, err := wsutil.ReadServerMessage(r, nil)
	if err != nil || len(msgs) == 0 || string(msgs[0].Payload) != `{"type":"connection_ack"}` {
		t.Fatalf("want connection_ack, got %v %v", msgs, err)
	}
}
