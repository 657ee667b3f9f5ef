// Package floorproto is the small slice of graphql-transport-ws that the
// floor servers speak: it classifies client messages and builds the server's
// frames. It has no GraphQL: the topic is the subscription's only string
// variable (or a literal `topic:"..."` argument) and the event JSON is sent
// as the `events` field unchanged.
//
// Package-level frames are immutable; every function is safe for concurrent
// use.
package floorproto

import (
	"encoding/json"
	"strings"

	"github.com/fraised/fraised/perf/internal/wsframe"
)

// Subprotocol is the WebSocket subprotocol the floors accept.
const Subprotocol = "graphql-transport-ws"

// Static server frames, compiled once.
var (
	AckFrame  = serverText(`{"type":"connection_ack"}`)
	PongFrame = serverText(`{"type":"pong"}`)
)

func serverText(s string) []byte {
	return wsframe.AppendFrame(nil, wsframe.OpText, []byte(s), false, [4]byte{})
}

// Kind is the type of a client message.
type Kind int

// Client message kinds.
const (
	Other Kind = iota
	Init
	Subscribe
	Complete
	Ping
	Pong
)

// Msg is a classified client message.
type Msg struct {
	Kind  Kind
	ID    string
	Topic string
}

type wire struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Payload struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	} `json:"payload"`
}

// Parse classifies one client text message. A subscribe without a topic, or
// malformed JSON, is Other. It allocates (control path only).
func Parse(b []byte) Msg {
	var w wire
	if json.Unmarshal(b, &w) != nil {
		return Msg{}
	}
	switch w.Type {
	case "connection_init":
		return Msg{Kind: Init}
	case "ping":
		return Msg{Kind: Ping}
	case "pong":
		return Msg{Kind: Pong}
	case "complete":
		return Msg{Kind: Complete, ID: w.ID}
	case "subscribe":
		t := topic(w.Payload.Query, w.Payload.Variables)
		if w.ID == "" || t == "" {
			return Msg{}
		}
		return Msg{Kind: Subscribe, ID: w.ID, Topic: t}
	}
	return Msg{}
}

func topic(query string, vars map[string]any) string {
	for _, v := range vars {
		if s, ok := v.(string); ok {
			return s
		}
	}
	i := strings.Index(query, "topic:")
	if i < 0 {
		return ""
	}
	rest := strings.TrimLeft(query[i+len("topic:"):], " ")
	if !strings.HasPrefix(rest, `"`) {
		return ""
	}
	rest = rest[1:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

const (
	nextPrefix = `{"id":"`
	nextMiddle = `","type":"next","payload":{"data":{"events":`
	nextSuffix = `}}}`
)

// AppendNext appends the unmasked text frame
// {"id":ID,"type":"next","payload":{"data":{"events":EVENT}}} to dst.
func AppendNext(dst []byte, id string, event []byte) []byte {
	n := len(nextPrefix) + len(id) + len(nextMiddle) + len(event) + len(nextSuffix)
	dst = wsframe.AppendHeader(dst, wsframe.OpText, n, false, [4]byte{})
	dst = append(dst, nextPrefix...)
	dst = append(dst, id...)
	dst = append(dst, nextMiddle...)
	dst = append(dst, event...)
	return append(dst, nextSuffix...)
}
