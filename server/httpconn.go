package server

import (
	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/dispatch"
)

// httpConn is a connection in its HTTP phase: it reads requests (health,
// POST /publish, the WebSocket upgrade) and answers them in order. It is
// the gnet context from the accept until an upgrade hands the connection
// to a wsConn. Owned by the connection's event loop.
type httpConn struct {
	*conn
	pub          *dispatch.Publisher // set when the connection POSTs events
	upgradeToken string              // bearer token from the upgrade's header or cookie
	ws           *wsConn             // the WebSocket this connection upgraded to, if it did
	cpub         *clusterHTTP        // cluster mode: the publish waiting for the broker
	gql          httpQueries         // GraphQL over HTTP (graphqlhttp.go)
}

// newHTTPConn sets up a connection admitted by the HTTP listener as gnet's
// context of gc. Called on the event loop.
func newHTTPConn(s *Server, gc gnet.Conn) *httpConn {
	c := &httpConn{conn: newConn(s, gc)}
	gc.SetContext(c)
	return c
}

// onTraffic handles inbound bytes on the connection's event loop.
func (c *httpConn) onTraffic(gc gnet.Conn) gnet.Action {
	if c.phase == phaseHTTP {
		c.onHTTP(gc)
		// Frames may follow the upgrade request in the same read.
		if c.ws == nil || c.phase != phaseWS || gc.InboundBuffered() == 0 {
			return gnet.None
		}
		return c.ws.onTraffic(gc)
	}
	return c.onEnding(gc)
}

// onClose releases a connection that closed before upgrading. Called on
// the event loop before gnet closes the socket.
func (c *httpConn) onClose() {
	c.out.Close()
	c.srv.httpConns.remove(c)
	c.release()
}
