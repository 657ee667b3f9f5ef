package jsonx

import (
	"math"
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal. Quotes, backslashes and
// control characters are escaped, as are U+2028 and U+2029 (see the
// package comment); invalid UTF-8 is replaced by \ufffd. The result is
// always valid JSON and valid UTF-8 (a WebSocket text frame must be), and
// attacker-chosen text cannot end the string or the line it is in.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case size == 1: // invalid UTF-8: escaped as U+FFFD below
			case r == '\u2028' || r == '\u2029':
				dst = append(dst, s[start:i]...)
				dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
				i += size
				start = i
				continue
			default:
				i += size
				continue
			}
		}
		dst = append(dst, s[start:i]...)
		dst = appendEscape(dst, c)
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendEscape appends the JSON escape for c, which is a quote, a
// backslash, a control character, or the first byte of invalid UTF-8
// (escaped as U+FFFD).
func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if c >= utf8.RuneSelf {
		return append(dst, `\ufffd`...)
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// rawStringClean reports whether the raw string content s (between quotes)
// can be copied to the output as is: valid escapes, no control characters,
// valid UTF-8.
func rawStringClean(s string) bool {
	for i := plainPrefix(s); i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			n := escapeLen(s, i)
			if n == 0 {
				return false
			}
			i += n
			i += plainPrefix(s[i:])
		case c < 0x20:
			return false
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return false
			}
			i += n
		}
	}
	return true
}

// plainPrefix returns a multiple of eight up to which s holds only
// printable ASCII other than the backslash: bytes that are copied as they
// are. It looks at eight bytes at a time.
func plainPrefix(s string) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := Load64(s, i)
		b := x ^ (lo * '\\')
		// high bit set: non-ASCII; (x-0x20)&^x: some byte below 0x20;
		// (b-lo)&^b: some backslash (the any-byte tests are exact).
		if (x|(x-lo*0x20)&^x|(b-lo)&^b)&hi != 0 {
			break
		}
	}
	return i
}

// escapeLen returns the length of the valid escape sequence at s[i] (a
// backslash), or 0: the escapes NextRune accepts, without decoding them.
func escapeLen(s string, i int) int {
	if i+1 >= len(s) {
		return 0
	}
	switch s[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if _, ok := hex4(s, i+2); ok {
			return 6
		}
	}
	return 0
}

// AppendRawString appends the raw JSON string content s (between quotes,
// still escaped, as StringEnd delimits it: no unescaped quote) as a JSON
// string: copied as is when clean (valid escapes,
// no control characters, valid UTF-8; U+2028 and U+2029 are left as the
// publisher wrote them), else repaired (a bad escape's backslash is taken
// literally, control characters escaped, invalid UTF-8 replaced). It never
// allocates beyond growing dst.
func AppendRawString(dst []byte, s string) []byte {
	if rawStringClean(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' {
			if _, next, ok := NextRune(s, i); ok {
				dst = append(dst, s[i:next]...)
				i = next
				continue
			}
			dst = append(dst, '\\', '\\')
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || n != 1 {
				dst = append(dst, s[i:i+n]...)
				i += n
				continue
			}
		}
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' {
			dst = appendEscape(dst, c)
		} else {
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}

// AppendJSNumber appends f formatted as JavaScript's Number.prototype.toString
// (and so JSON.stringify) does: shortest round-trip digits, exponent form
// outside [1e-6, 1e21). f must be finite.
func AppendJSNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// Go pads the exponent to two digits ("1e-07"); JavaScript does not.
	for k := start; k+3 < len(dst); k++ {
		if dst[k] == 'e' && dst[k+2] == '0' {
			return append(dst[:k+2], dst[k+3:]...)
		}
	}
	return dst
}
