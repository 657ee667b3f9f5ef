package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/server"
)

// TestFramingIsTheSameOnBothTransports: the gnet listener and the
// net/http Handler read frames through one core (internal/wsread), so a
// client sees the same RFC 6455 behaviour on either: the same close codes
// for broken frames, fragments and pings handled alike, and messages
// larger than the Handler's read buffer (4 KiB) served whole.
func TestFramingIsTheSameOnBothTransports(t *testing.T) {
	const maxMessage = 32 << 10
	s := startServer(t, func(o *server.Options) { o.MaxMessage = maxMessage })
	mux := http.NewServeMux()
	mux.Handle("/graphql", s.Handler())
	ts := httptest.NewServer(mux)
	defer ts.Close()
	big := strings.Repeat("x", 20<<10)
	cases := []struct {
		name string
		run  func(c *client)
	}{
		{"unmasked frame: 1002", func(c *client) {
			if err := ws.WriteFrame(c.conn, ws.NewTextFrame([]byte(`{"type":"ping"}`))); err != nil {
				t.Fatal(err)
			}
			c.expectClose(proto.CloseProtocolError)
		}},
		{"binary: 1003", func(c *client) {
			c.sendFrame(ws.OpBinary, true, []byte{1})
			c.expectClose(proto.CloseUnsupportedData)
		}},
		{"message past --max-message: 1009", func(c *client) {
			c.sendFrame(ws.OpText, true, []byte(strings.Repeat("x", maxMessage+1)))
			c.expectClose(proto.CloseMessageTooBig)
		}},
		{"fragments around a ping", func(c *client) {
			c.sendFrame(ws.OpText, false, []byte(`{"type":"ping",`))
			c.sendFrame(ws.OpPing, true, nil)
			c.sendFrame(ws.OpContinuation, true, []byte(`"payload":{"n":1}}`))
			c.expect(`{"type":"pong","payload":{"n":1}}`)
		}},
		{"a 20 KiB message", func(c *client) {
			c.send(`{"type":"ping","payload":{"b":"` + big + `"}}`)
			c.expect(`{"type":"pong","payload":{"b":"` + big + `"}}`)
			c.send(`{"type":"ping","payload":{"after":1}}`)
			c.expect(`{"type":"pong","payload":{"after":1}}`)
		}},
		{"invalid UTF-8: 1007", func(c *client) {
			c.send("{\"type\":\"ping\",\"payload\":{\"x\":\"\xff\"}}")
			c.expectClose(proto.CloseInvalidPayload)
		}},
		{"close code 1005 from the peer: 1002", func(c *client) {
			c.sendFrame(ws.OpClose, true, []byte{0x03, 0xed})
			c.expectClose(proto.CloseProtocolError)
		}},
		{"close 4000 echoed", func(c *client) {
			c.sendFrame(ws.OpClose, true, []byte{0x0f, 0xa0})
			c.expectClose(4000)
		}},
	}
	for _, transport := range []struct{ name, addr string }{
		{"gnet", s.opts.Listen},
		{"Handler", strings.TrimPrefix(ts.URL, "http://")},
	} {
		for _, tt := range cases {
			t.Run(transport.name+"/"+tt.name, func(t *testing.T) {
				tt.run(connect(t, transport.addr))
			})
		}
	}
}
