package gql

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/fraised/fraised/codec"
)

// appendString appends s as a JSON string. Control characters are escaped
// and invalid UTF-8 is replaced by U+FFFD, so the result is always valid
// JSON and valid UTF-8 (a WebSocket text frame must be).
func appendString(dst []byte, s string) []byte {
	return codec.AppendJSONString(dst, s)
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
		x := load64(s, i)
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
// backslash), or 0: the escapes nextRune accepts, without decoding them.
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

// appendRawString appends the raw JSON string content s (between quotes,
// still escaped) as a JSON string: copied as is when clean, else repaired
// (a bad escape's backslash is taken literally, control characters escaped,
// invalid UTF-8 replaced). It never allocates beyond growing dst.
func appendRawString(dst []byte, s string) []byte {
	if rawStringClean(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' {
			if _, next, ok := nextRune(s, i); ok {
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
			dst = codec.AppendJSONEscape(dst, c)
		} else {
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}

// appendJSNumber appends f formatted as JavaScript's Number.prototype.toString
// does (shortest round-trip digits; exponent form outside [1e-6, 1e21)).
// f must be finite.
func appendJSNumber(dst []byte, f float64) []byte {
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

// isJSSpace reports whether c is whitespace that JavaScript's Number()
// trims (the ASCII subset; other Unicode spaces are rare in events).
func isJSSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// jsNumber converts s as JavaScript's Number(s) does for the common forms:
// surrounding whitespace, decimal with optional exponent, Infinity, and
// 0x/0o/0b integers. ok is false where JavaScript yields NaN.
func jsNumber(s string) (float64, bool) {
	for len(s) > 0 && isJSSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isJSSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	switch s {
	case "":
		return 0, true
	case "Infinity", "+Infinity":
		return math.Inf(1), true
	case "-Infinity":
		return math.Inf(-1), true
	}
	if len(s) > 2 && s[0] == '0' {
		if base := radix(s[1]); base != 0 {
			u, err := strconv.ParseUint(s[2:], base, 64)
			return float64(u), err == nil && s[2] != '_' && !hasByte(s, '_')
		}
	}
	if !jsDecimal(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// radix returns the base named by the prefix letter of a JavaScript numeric
// literal, or 0.
func radix(c byte) int {
	switch c {
	case 'x', 'X':
		return 16
	case 'o', 'O':
		return 8
	case 'b', 'B':
		return 2
	}
	return 0
}

// hasByte reports whether s contains c.
func hasByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// jsDecimal reports whether s is a JavaScript StrDecimalLiteral:
// [+-] (digits [. [digits]] | . digits) [(e|E) [+-] digits].
func jsDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	d := digitsEnd(s, i)
	n := d - i
	i = d
	if i < len(s) && s[i] == '.' {
		d = digitsEnd(s, i+1)
		n += d - i - 1
		i = d
	}
	if n == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d = digitsEnd(s, i)
		if d == i {
			return false
		}
		i = d
	}
	return i == len(s)
}

// inspect returns raw JSON shortened for an error message.
func inspect(raw string) string {
	const max = 64
	if len(raw) <= max {
		return raw
	}
	return raw[:max] + "..."
}
