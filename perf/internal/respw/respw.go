// Package respw writes Redis-protocol (RESP2) PUBLISH commands and parses the
// replies, for the perf harness, and parses commands for the floor servers.
// Functions append to or slice the caller's buffers and never allocate once
// the destination has capacity; all are safe for concurrent use on distinct
// buffers.
package respw

import (
	"bytes"
	"errors"
	"strconv"
)

// Sentinel errors of the parsers.
var (
	ErrProtocol = errors.New("respw: protocol error")
	ErrTooLong  = errors.New("respw: element longer than the limit")
)

// MaxArgs is the most arguments ParseCommand accepts in one command.
const MaxArgs = 8

// AppendPublish appends `*3 $7 PUBLISH $n topic $n payload` to dst.
func AppendPublish(dst []byte, topic, payload []byte) []byte {
	dst = append(dst, "*3\r\n$7\r\nPUBLISH\r\n"...)
	dst = appendBulk(dst, topic)
	return appendBulk(dst, payload)
}

func appendBulk(dst, b []byte) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// Reply is one parsed reply: an integer (`:N`), a simple string (`+OK`) or
// an error (`-ERR ...`). Text aliases the parsed buffer.
type Reply struct {
	Kind byte // ':', '+' or '-'
	Int  int64
	Text []byte
}

// ParseReply parses the reply at the start of b. It returns n == 0 and a nil
// error when the reply is not complete yet. Bulk and array replies are not
// used by PUBLISH and are a protocol error.
func ParseReply(b []byte) (r Reply, n int, err error) {
	line, n := nextLine(b)
	if n == 0 {
		if len(b) > 4096 {
			return r, 0, ErrTooLong
		}
		return r, 0, nil
	}
	if len(line) == 0 {
		return r, 0, ErrProtocol
	}
	r.Kind, r.Text = line[0], line[1:]
	switch r.Kind {
	case ':':
		t := r.Text
		neg := len(t) > 0 && t[0] == '-'
		if neg {
			t = t[1:]
		}
		v, ok := atoi(t)
		if !ok {
			return r, 0, ErrProtocol
		}
		r.Int = int64(v)
		if neg {
			r.Int = -r.Int
		}
	case '+', '-':
	default:
		return r, 0, ErrProtocol
	}
	return r, n, nil
}

// nextLine returns the line before the first CRLF and the bytes consumed.
func nextLine(b []byte) ([]byte, int) {
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		return nil, 0
	}
	return b[:i], i + 2
}

// ParseCommand parses one command (an array of bulk strings, as clients
// send) at the start of b into args[:0], each arg aliasing b. It returns
// n == 0 and a nil error when the command is not complete yet; limit bounds
// each bulk string.
func ParseCommand(b []byte, args [][]byte, limit int) (_ [][]byte, n int, err error) {
	args = args[:0]
	line, n := nextLine(b)
	if n == 0 {
		return args, 0, nil
	}
	if len(line) < 2 || line[0] != '*' {
		return args, 0, ErrProtocol
	}
	count, ok := atoi(line[1:])
	if !ok || count < 1 || count > MaxArgs {
		return args, 0, ErrProtocol
	}
	for range count {
		line, k := nextLine(b[n:])
		if k == 0 {
			return args, 0, nil
		}
		if len(line) < 2 || line[0] != '$' {
			return args, 0, ErrProtocol
		}
		size, ok := atoi(line[1:])
		if !ok {
			return args, 0, ErrProtocol
		}
		if size > limit {
			return args, 0, ErrTooLong
		}
		n += k
		if len(b)-n < size+2 {
			return args, 0, nil
		}
		if b[n+size] != '\r' || b[n+size+1] != '\n' {
			return args, 0, ErrProtocol
		}
		args = append(args, b[n:n+size])
		n += size + 2
	}
	return args, n, nil
}

// AppendInt appends the integer reply `:v\r\n`.
func AppendInt(dst []byte, v int64) []byte {
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, '\r', '\n')
}

// AppendError appends the error reply `-ERR msg\r\n`.
func AppendError(dst []byte, msg string) []byte {
	dst = append(dst, "-ERR "...)
	dst = append(dst, msg...)
	return append(dst, '\r', '\n')
}

// atoi parses a non-negative decimal of at most 9 digits (no sign).
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}
