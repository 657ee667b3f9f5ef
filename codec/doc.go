// Package codec encodes and decodes the bytes fraised puts on the wire:
// WebSocket frame headers (RFC 6455) and the graphql-transport-ws
// messages the server sends.
//
// Encoders append to a caller-owned buffer, in the style of
// strconv.AppendInt, so the dispatcher can build every subscriber's frame
// into that connection's pooled outbound buffer without allocating. Static
// frames (connection_ack, pong, ping) are compiled once at start-up and
// shared read-only.
package codec
