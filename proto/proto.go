// Package proto is the graphql-transport-ws protocol core: message types,
// close codes and the decoder for client messages. It holds no I/O, so
// every transport (WebSocket today; the legacy graphql-ws subprotocol and
// graphql-sse later) shares it.
//
// See https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md.
package proto

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/gobwas/ws"
	"github.com/tidwall/gjson"
)

// Subprotocol is the WebSocket subprotocol name fraised speaks.
const Subprotocol = "graphql-transport-ws"

// Close codes of graphql-transport-ws.
const (
	CloseInternalError       ws.StatusCode = 4500
	CloseBadRequest          ws.StatusCode = 4400
	CloseUnauthorized        ws.StatusCode = 4401
	CloseForbidden           ws.StatusCode = 4403
	CloseSubprotocolNotOK    ws.StatusCode = 4406
	CloseInitTimeout         ws.StatusCode = 4408
	CloseSubscriberExists    ws.StatusCode = 4409
	CloseTooManyInitRequests ws.StatusCode = 4429
	CloseGoingAway           ws.StatusCode = 1001
	CloseProtocolError       ws.StatusCode = 1002
	CloseUnsupportedData     ws.StatusCode = 1003
	CloseInvalidPayload      ws.StatusCode = 1007 // RFC 6455 §7.4.1: a text message that is not UTF-8
	CloseMessageTooBig       ws.StatusCode = 1009
	CloseTryAgainLater       ws.StatusCode = 1013 // slow consumer: graphql-ws clients reconnect on it (1008 is fatal for them)
	ClosePolicyViolation     ws.StatusCode = 1008
	CloseNormal              ws.StatusCode = 1000
)

// Type is a message type.
type Type uint8

// Message types. TypeUnknown marks a type string the protocol does not define.
const (
	TypeUnknown Type = iota
	TypeConnectionInit
	TypeConnectionAck
	TypePing
	TypePong
	TypeSubscribe
	TypeNext
	TypeError
	TypeComplete
)

var typeNames = [...]string{"unknown", "connection_init", "connection_ack", "ping", "pong", "subscribe", "next", "error", "complete"}

// String returns the protocol's name for t.
func (t Type) String() string { return typeNames[t] }

func parseType(s string) Type {
	for i, name := range typeNames[1:] {
		if s == name {
			return Type(i + 1)
		}
	}
	return TypeUnknown
}

// Message is a decoded client message. Its byte slices alias the decoded
// input and are valid only as long as that input is.
type Message struct {
	Type Type
	// ID is the id as a JSON string literal, quotes included, ready to be
	// spliced into server messages.
	ID []byte
	// IDString is the unescaped id.
	IDString string
	// Payload is the raw JSON payload, nil when absent or null.
	Payload []byte
	// Query, OperationName, Variables and Extensions are set for subscribe.
	Query         string
	OperationName string
	Variables     []byte
	Extensions    []byte
}

// ErrBadMessage is wrapped by every decoding error; the server answers
// with close code 4400 and the error text as the reason.
var ErrBadMessage = errors.New("invalid message")

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadMessage}, args...)...)
}

// Decode decodes one client message. It validates the message's shape per
// PROTOCOL.md; the returned strings may alias b (b must stay unchanged
// while they are used, or the caller copies them).
func Decode(b []byte) (m Message, err error) {
	s := unsafe.String(unsafe.SliceData(b), len(b))
	if !gjson.Valid(s) {
		return m, badf("message is not valid JSON")
	}
	root := gjson.Parse(s)
	if !root.IsObject() {
		return m, badf("message is not a JSON object")
	}
	t := root.Get("type")
	if t.Type != gjson.String {
		return m, badf("message has no string type")
	}
	if m.Type = parseType(t.Str); m.Type == TypeUnknown {
		return m, badf("unexpected message of type %.64q received", t.Str)
	}
	payload := root.Get("payload")
	if payload.Exists() && payload.Type != gjson.Null {
		m.Payload = rawBytes(b, payload)
	}
	switch m.Type {
	case TypeConnectionInit, TypePing, TypePong:
		if m.Payload != nil && !payload.IsObject() {
			return m, badf("%s payload must be an object", m.Type)
		}
		return m, nil
	case TypeSubscribe:
		if err := decodeID(&m, b, root); err != nil {
			return m, err
		}
		return m, decodeSubscribe(&m, b, payload)
	case TypeComplete:
		return m, decodeID(&m, b, root)
	default:
		return m, badf("unexpected message of type %s received", m.Type)
	}
}

func decodeID(m *Message, b []byte, root gjson.Result) error {
	id := root.Get("id")
	if id.Type != gjson.String || id.Str == "" {
		return badf("%s message must have a non-empty string id", m.Type)
	}
	m.ID = rawBytes(b, id)
	m.IDString = id.Str
	return nil
}

func decodeSubscribe(m *Message, b []byte, payload gjson.Result) error {
	if !payload.IsObject() {
		return badf("subscribe payload must be an object")
	}
	q := payload.Get("query")
	if q.Type != gjson.String {
		return badf("subscribe payload must have a string query")
	}
	m.Query = q.Str
	if op := payload.Get("operationName"); op.Type == gjson.String {
		m.OperationName = op.Str
	} else if op.Exists() && op.Type != gjson.Null {
		return badf("operationName must be a string or null")
	}
	var err error
	if m.Variables, err = optionalObject(b, payload, "variables"); err != nil {
		return err
	}
	m.Extensions, err = optionalObject(b, payload, "extensions")
	return err
}

func optionalObject(b []byte, payload gjson.Result, key string) ([]byte, error) {
	v := payload.Get(key)
	if !v.Exists() || v.Type == gjson.Null {
		return nil, nil
	}
	if !v.IsObject() {
		return nil, badf("%s must be an object or null", key)
	}
	return rawBytes(b, v), nil
}

// rawBytes returns r's raw text as a sub-slice of b when it is one (gjson
// results alias their input), or as a copy otherwise.
func rawBytes(b []byte, r gjson.Result) []byte {
	if len(r.Raw) == 0 || len(b) == 0 {
		return []byte(r.Raw)
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(r.Raw)))
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if start >= base && start+uintptr(len(r.Raw)) <= base+uintptr(len(b)) {
		off := int(start - base)
		return b[off : off+len(r.Raw) : off+len(r.Raw)]
	}
	return []byte(r.Raw)
}
