// Package wsframe parses and builds RFC 6455 WebSocket frames over caller
// buffers, and finds graphql-transport-ws fields in a text payload without
// decoding JSON. It is shared by the perf harness (client side: it masks what
// it sends, reads unmasked frames) and the floor servers (the reverse).
//
// Nothing here allocates; every function is safe for concurrent use on
// distinct buffers.
package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// Opcodes of RFC 6455 section 5.2.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// MaxHeaderLen is the longest frame header: 2 + 8 (length) + 4 (mask key).
const MaxHeaderLen = 14

// Sentinel errors of ParseHeader.
var (
	ErrReservedBits = errors.New("wsframe: reserved bits set")
	ErrControlLen   = errors.New("wsframe: control frame longer than 125 bytes or fragmented")
	ErrTooLong      = errors.New("wsframe: frame longer than the limit")
)

// Header is a parsed frame header.
type Header struct {
	Fin    bool
	Op     byte
	Masked bool
	Mask   [4]byte
	Len    int // payload length
}

// ParseHeader parses the frame header at the start of b. It returns n == 0
// and a nil error when b does not hold the whole header yet, and an error
// when the header is invalid or announces a payload longer than limit.
func ParseHeader(b []byte, limit int) (h Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	if b[0]&0x70 != 0 {
		return h, 0, ErrReservedBits
	}
	h.Fin, h.Op, h.Masked = b[0]&0x80 != 0, b[0]&0x0F, b[1]&0x80 != 0
	n = 2
	switch l := int(b[1] & 0x7F); l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Len, n = int(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v > uint64(limit) {
			return h, 0, ErrTooLong
		}
		h.Len, n = int(v), 10
	default:
		h.Len = l
	}
	if h.Len > limit {
		return h, 0, ErrTooLong
	}
	if h.Op >= OpClose && (h.Len > 125 || !h.Fin) {
		return h, 0, ErrControlLen
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// AppendHeader appends a final frame's header for a payload of n bytes;
// masked frames carry key.
func AppendHeader(dst []byte, op byte, n int, masked bool, key [4]byte) []byte {
	var m byte
	if masked {
		m = 0x80
	}
	dst = append(dst, 0x80|op)
	switch {
	case n < 126:
		dst = append(dst, m|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, m|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if masked {
		dst = append(dst, key[:]...)
	}
	return dst
}

// AppendFrame appends a final frame holding payload, masked with key when
// masked is true (as a client must).
func AppendFrame(dst []byte, op byte, payload []byte, masked bool, key [4]byte) []byte {
	dst = AppendHeader(dst, op, len(payload), masked, key)
	start := len(dst)
	dst = append(dst, payload...)
	if masked {
		Mask(dst[start:], key, 0)
	}
	return dst
}

// Mask XORs b in place with key, b starting at offset pos of the payload
// (so a payload can be unmasked in pieces).
func Mask(b []byte, key [4]byte, pos int) {
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
}

var (
	typeKey = []byte(`"type":"`)
	idKey   = []byte(`"id":"`)
	seqKey  = []byte(`"seq":`)
)

// Type returns the value of the first "type" field of a graphql-transport-ws
// message (e.g. "next", "ping"), or nil. The result aliases msg.
func Type(msg []byte) []byte { return stringField(msg, typeKey) }

// ID returns the value of the first "id" field, or nil. The result aliases msg.
func ID(msg []byte) []byte { return stringField(msg, idKey) }

func stringField(msg, key []byte) []byte {
	i := bytes.Index(msg, key)
	if i < 0 {
		return nil
	}
	v := msg[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return v[:j]
}

// Seq returns the integer value of the first "seq" field in msg.
func Seq(msg []byte) (int64, bool) {
	i := bytes.Index(msg, seqKey)
	if i < 0 {
		return 0, false
	}
	return ParseInt(msg[i+len(seqKey):])
}

// ParseInt parses the optionally negative decimal integer at the start of b,
// stopping at the first non-digit; it reports false if there is no digit or
// the value overflows int64.
func ParseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	var v int64
	digits := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		if v > (1<<63-1-int64(c-'0'))/10 {
			return 0, false
		}
		v = v*10 + int64(c-'0')
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}
