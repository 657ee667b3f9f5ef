package codec

import (
	"encoding/binary"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// MaxHeaderSize is the largest WebSocket frame header: 2 bytes, 8 bytes of
// extended length and a 4-byte mask.
const MaxHeaderSize = 14

// MaxControlPayload is the largest payload a control frame may carry (RFC 6455 §5.5).
const MaxControlPayload = 125

// Errors returned by ParseHeader; each maps to close code 1002 (protocol error).
var (
	ErrReservedBits   = errors.New("codec: reserved bits set without a negotiated extension")
	ErrReservedOpCode = errors.New("codec: reserved opcode")
	ErrControlFrame   = errors.New("codec: fragmented or oversized control frame")
	ErrLength         = errors.New("codec: invalid payload length")
)

// ParseHeader parses the WebSocket frame header at the start of b.
// It returns the header and its size n; n == 0 with a nil error means b
// holds an incomplete header. It reads nothing past the header and never
// allocates.
func ParseHeader(b []byte) (h ws.Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u > 1<<62 {
			return h, 0, ErrLength
		}
		h.Length = int64(u)
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, checkHeader(h)
}

func checkHeader(h ws.Header) error {
	if h.Rsv != 0 {
		return ErrReservedBits
	}
	if h.OpCode.IsReserved() {
		return ErrReservedOpCode
	}
	if h.OpCode.IsControl() && (!h.Fin || h.Length > MaxControlPayload) {
		return ErrControlFrame
	}
	return nil
}

// AppendHeader appends an unmasked (server-to-client) frame header for a
// payload of length bytes.
func AppendHeader(dst []byte, fin bool, op ws.OpCode, length int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	switch {
	case length < 126:
		return append(dst, b0, byte(length))
	case length <= 0xffff:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(length))
	}
}

// HeaderLen returns the size of an unmasked frame header for a payload of
// length bytes.
func HeaderLen(length int) int {
	switch {
	case length < 126:
		return 2
	case length <= 0xffff:
		return 4
	default:
		return 10
	}
}

// AppendFrame appends a whole unmasked frame.
func AppendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	dst = AppendHeader(dst, true, op, len(payload))
	return append(dst, payload...)
}

// MaxCloseReason is the longest close reason: a control frame's 125-byte
// payload less the 2-byte status code (RFC 6455 §5.5).
const MaxCloseReason = MaxControlPayload - 2

// AppendClose appends a close frame with code and reason. RFC 6455 §5.5.1
// requires the reason to be UTF-8 (a browser fails the connection with
// 1006 otherwise), so invalid bytes become U+FFFD and a reason longer than
// MaxCloseReason is cut on a rune boundary.
func AppendClose(dst []byte, code ws.StatusCode, reason string) []byte {
	if !utf8.ValidString(reason) {
		reason = strings.ToValidUTF8(reason, "\uFFFD")
	}
	if len(reason) > MaxCloseReason {
		n := MaxCloseReason
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	dst = AppendHeader(dst, true, ws.OpClose, 2+len(reason))
	dst = append(dst, byte(code>>8), byte(code))
	return append(dst, reason...)
}

// Unmask XORs payload in place with mask. offset is the position of
// payload[0] within the frame's payload (for payloads processed in parts).
func Unmask(payload []byte, mask [4]byte, offset int) {
	ws.Cipher(payload, mask, offset)
}

// FrameRemainder walks the unmasked frames in b (a connection's pending
// output) and returns how many bytes after offset sent still belong to the
// frame that sent falls in: the bytes that must still be written to end
// that frame cleanly. It returns 0 when sent is on a frame boundary.
func FrameRemainder(b []byte, sent int) int {
	pos := 0
	for pos < len(b) {
		h, n, err := ParseHeader(b[pos:])
		if n == 0 || err != nil {
			return 0
		}
		end := pos + n + int(h.Length)
		if sent < end {
			if sent == pos {
				return 0
			}
			return min(end, len(b)) - sent
		}
		pos = end
	}
	return 0
}
