package server

import (
	"context"
	"strings"

	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/proto"
)

type gqlOperation = gql.Operation

// onMessage runs one graphql-transport-ws message; b is valid until it
// returns. This is the protocol's state machine.
func (c *wsConn) onMessage(b []byte) {
	m, err := proto.Decode(b)
	if err != nil {
		c.closeWith(proto.CloseBadRequest, err.Error())
		return
	}
	switch m.Type {
	case proto.TypeConnectionInit:
		c.onInit(m)
	case proto.TypePing:
		c.send(codec.FramePong)
	case proto.TypePong:
	case proto.TypeSubscribe:
		c.onSubscribe(m)
	case proto.TypeComplete:
		c.onComplete(m.IDString)
	}
}

func (c *wsConn) onInit(m proto.Message) {
	if c.initPayload != nil || c.init.Load() != initNone {
		c.closeWith(proto.CloseTooManyInitRequests, "Too many initialisation requests")
		return
	}
	c.initPayload = append([]byte{}, m.Payload...)
	if len(c.initPayload) == 0 {
		c.initPayload = []byte("{}")
	}
	c.init.Store(initAcked)
	c.srv.conns.acked(c)
	c.send(codec.FrameAck)
}

func (c *wsConn) onSubscribe(m proto.Message) {
	if c.init.Load() != initAcked {
		c.closeWith(proto.CloseUnauthorized, "Unauthorized")
		return
	}
	if c.find(m.IDString) != nil {
		c.closeWith(proto.CloseSubscriberExists, "Subscriber for "+truncate(m.IDString, 64)+" already exists")
		return
	}
	if len(c.subs) >= c.srv.opts.MaxSubscriptionsPerConn {
		c.sendErrors(m.ID, tooManySubscriptions)
		return
	}
	req := gql.Request{
		Query:         strings.Clone(m.Query),
		OperationName: strings.Clone(m.OperationName),
		Variables:     append([]byte(nil), m.Variables...),
	}
	op, errs := c.srv.opts.Schema.Compile(req, c.env())
	if len(errs) > 0 {
		c.sendErrors(m.ID, gql.AppendErrors(nil, errs))
		return
	}
	s := &subscription{conn: c, id: append([]byte(nil), m.ID...), key: strings.Clone(m.IDString), op: op, query: op.Kind == gql.KindQuery}
	c.subs = append(c.subs, s)
	if s.query {
		go c.runQuery(s, op)
		return
	}
	c.srv.d.queue(control{add: true, sub: s})
}

// env is what the compiler knows of the connection's identity.
func (c *wsConn) env() gql.Env {
	return gql.Env{InitPayload: c.initPayload}
}

// runQuery executes a query operation off the event loop (resolvers may
// block) and answers next then complete.
func (c *wsConn) runQuery(s *subscription, op *gql.Operation) {
	result := op.AppendQueryResult(context.Background(), nil)
	if s.removed.Load() {
		return
	}
	frame := codec.AppendNext(nil, s.id, result)
	frame = codec.AppendComplete(frame, s.id)
	c.send(frame)
	_ = c.gc.Wake(func(gnet.Conn, error) error { c.forget(s); return nil })
}

func (c *wsConn) onComplete(id string) {
	if s := c.find(id); s != nil {
		c.forget(s)
		c.unsubscribe(s)
	}
}

// find returns the active operation with id, or nil. Connections hold few
// operations (capped), so a scan beats a map in time and memory.
func (c *wsConn) find(id string) *subscription {
	for _, s := range c.subs {
		if s.key == id {
			return s
		}
	}
	return nil
}

// forget drops s from the connection's list.
func (c *wsConn) forget(s *subscription) {
	for i, x := range c.subs {
		if x == s {
			last := len(c.subs) - 1
			c.subs[i] = c.subs[last]
			c.subs[last] = nil
			c.subs = c.subs[:last]
			return
		}
	}
}

// unsubscribe queues s's removal from the registry.
func (c *wsConn) unsubscribe(s *subscription) {
	if s.removed.Swap(true) {
		return
	}
	if !s.query {
		c.srv.d.queue(control{sub: s})
	}
}

// sendErrors sends an error message for id; errs is a JSON array.
func (c *wsConn) sendErrors(id, errs []byte) {
	c.send(codec.AppendError(nil, id, errs))
}

var tooManySubscriptions = []byte(`[{"message":"too many active operations on this connection"}]`)

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
