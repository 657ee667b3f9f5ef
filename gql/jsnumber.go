package gql

import (
	"math"
	"strconv"

	"github.com/fraised/fraised/internal/jsonx"
)

// This file holds JavaScript's string-to-number conversion, which the
// coercion of GraphQL inputs follows (graphql-js compatibility); writing
// numbers is jsonx.AppendJSNumber.

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
	d := jsonx.DigitsEnd(s, i)
	n := d - i
	i = d
	if i < len(s) && s[i] == '.' {
		d = jsonx.DigitsEnd(s, i+1)
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
		d = jsonx.DigitsEnd(s, i)
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
