package codec

import (
	"github.com/gobwas/ws"

	"github.com/fraised/fraised/proto"
)

// Static server frames, compiled once and shared read-only.
var (
	// FrameAck is the connection_ack message.
	FrameAck = AppendFrame(nil, ws.OpText, proto.MessageAck)
	// FramePong is the pong message answering a client ping message.
	FramePong = AppendFrame(nil, ws.OpText, proto.MessagePong)
	// FrameControlPing is a WebSocket ping control frame used for keep-alive.
	FrameControlPing = AppendFrame(nil, ws.OpPing, nil)
)

// NextLen returns the length of the whole next frame for an id (JSON
// encoded, with quotes) and a payload, so callers can reserve room once.
func NextLen(id, payload []byte) int {
	n := proto.NextLen(id, payload)
	return HeaderLen(n) + n
}

// AppendNext appends a whole text frame holding the next message
// {"id":<id>,"type":"next","payload":<payload>} (proto.AppendNext). id
// must be a JSON string literal (quotes included) and payload a JSON
// value; both are copied as is. It allocates only when dst lacks
// capacity.
func AppendNext(dst, id, payload []byte) []byte {
	dst = AppendHeader(dst, true, ws.OpText, proto.NextLen(id, payload))
	return proto.AppendNext(dst, id, payload)
}

// AppendError appends a text frame holding the error message for id with
// errs, a JSON array of GraphQL errors (proto.AppendError).
func AppendError(dst, id, errs []byte) []byte {
	dst = AppendHeader(dst, true, ws.OpText, proto.ErrorLen(id, errs))
	return proto.AppendError(dst, id, errs)
}

// AppendComplete appends a text frame holding the complete message for id
// (proto.AppendComplete).
func AppendComplete(dst, id []byte) []byte {
	dst = AppendHeader(dst, true, ws.OpText, proto.CompleteLen(id))
	return proto.AppendComplete(dst, id)
}
