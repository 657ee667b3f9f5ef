package resp

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is on the *Error returned by Parser.Next (to
// count rejected commands by kind). They are never returned bare.
var (
	// ErrProtocol: malformed input, an inline line over Parser.MaxBulk, or a
	// bulk length so far over Parser.MaxBulk that skipping it is not worth
	// it. The client is out of sync: answer and close the connection.
	ErrProtocol = errors.New("resp: protocol error")
	// ErrTooLarge: a bulk string over Parser.MaxBulk (by at most a factor
	// of 16). The whole command was (or is being) skipped; the stream stays
	// in sync.
	ErrTooLarge = errors.New("resp: payload too large")
	// ErrTooManyArgs: a command with more than Parser.MaxArgs arguments. The
	// whole command was (or is being) skipped; the stream stays in sync.
	ErrTooManyArgs = errors.New("resp: too many arguments")
)

// Error is the error for one rejected command. Its Error text is the Redis
// error reply for the client, without the leading '-' (pass it to
// AppendError); it carries no "resp:" prefix because it goes on the wire.
// Unwrap returns ErrProtocol, ErrTooLarge or ErrTooManyArgs. Errors are
// immutable and safe to share between goroutines.
type Error struct {
	msg  string
	kind error
}

// Error returns the reply text, e.g. "ERR Protocol error: invalid bulk length".
func (e *Error) Error() string { return e.msg }

// Unwrap returns the sentinel error saying what kind of error e is.
func (e *Error) Unwrap() error { return e.kind }

func protocolError(msg string) *Error {
	return &Error{msg: "ERR Protocol error: " + msg, kind: ErrProtocol}
}

// Fixed errors, built once so that rejecting a command allocates nothing.
var (
	errMultibulkLen     = protocolError("invalid multibulk length")
	errBulkLen          = protocolError("invalid bulk length")
	errBigMultibulk     = protocolError("too big mbulk count string")
	errBigBulkCount     = protocolError("too big bulk count string")
	errBadCRLF          = protocolError("expected CRLF")
	errUnbalancedQuotes = protocolError("unbalanced quotes in request")
	errBigInline        = protocolError("too big inline request")
	errTooLargeDefault  = tooLargeError(DefaultMaxBulk)
	errTooManyDefault   = tooManyArgsError(DefaultMaxArgs)
)

func tooLargeError(limit int) *Error {
	return &Error{msg: fmt.Sprintf("ERR payload too large (limit %d bytes)", limit), kind: ErrTooLarge}
}

func tooManyArgsError(limit int) *Error {
	return &Error{msg: fmt.Sprintf("ERR too many arguments (limit %d)", limit), kind: ErrTooManyArgs}
}

// expectedDollarError is Redis's error for a bulk header that does not start
// with '$'; it allocates, as only broken clients reach it.
func expectedDollarError(got byte) *Error {
	if got < 0x20 || got > 0x7e {
		return protocolError(fmt.Sprintf("expected '$', got %q", got))
	}
	return protocolError(fmt.Sprintf("expected '$', got '%c'", got))
}
