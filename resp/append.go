package resp

import "strconv"

// The Append functions encode RESP values in the style of strconv.AppendInt:
// they append to dst and return the extended buffer, which the caller owns.
// They are safe for concurrent use on distinct buffers.

// AppendInt appends the integer reply ":<n>\r\n".
func AppendInt(dst []byte, n int64) []byte {
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

// AppendError appends the error reply "-<msg>\r\n". msg starts with the error
// code, as in "ERR unknown command" or an *Error's text; a leading '-' is
// dropped, an empty msg becomes "ERR", and CR and LF become spaces so the
// reply stays one line.
func AppendError(dst []byte, msg string) []byte {
	if len(msg) > 0 && msg[0] == '-' {
		msg = msg[1:]
	}
	if msg == "" {
		msg = "ERR"
	}
	return appendLine(append(dst, '-'), msg)
}

// AppendSimple appends the simple string reply "+<s>\r\n", as in "+PONG\r\n";
// CR and LF in s become spaces.
func AppendSimple(dst []byte, s string) []byte {
	return appendLine(append(dst, '+'), s)
}

// appendLine appends s with CR and LF replaced by spaces, then CRLF.
func appendLine(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\r', '\n')
}

// AppendBulk appends the bulk string "$<len>\r\n<b>\r\n"; a nil b is an empty
// bulk string, not a null one.
func AppendBulk(dst []byte, b []byte) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendArray appends args as an array of bulk strings, the form in which a
// client sends a command: AppendArray(dst, []byte("PUBLISH"), topic, event).
func AppendArray(dst []byte, args ...[]byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}
