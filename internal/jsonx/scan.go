package jsonx

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// This file is the reader; the package comment (doc.go) says what it
// validates and what it leaves to iteration.

// View returns b as a string without copying; the string is valid only
// while b is not modified.
func View(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// SkipWS returns the index of the first byte at or after i that is not JSON
// whitespace.
func SkipWS(s string, i int) int {
	for i < len(s) && s[i] <= ' ' {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// StringEnd returns the index just past the closing quote of the string that
// opens at s[i] and whether the string holds escapes, or -1 if it is not
// terminated. It looks at eight bytes at a time.
func StringEnd(s string, i int) (int, bool) {
	esc := false
	j := i + 1
	for j+8 <= len(s) {
		m := quoteOrBackslashAt(s, j)
		if m == 0 {
			j += 8
			continue
		}
		j += bits.TrailingZeros64(m) >> 3
		if s[j] == '"' {
			return j + 1, esc
		}
		esc = true
		j += 2
	}
	for ; j < len(s); j++ {
		switch s[j] {
		case '"':
			return j + 1, esc
		case '\\':
			esc = true
			j++
		}
	}
	return -1, esc
}

// Load64 returns s[j:j+8] as a little-endian word; j+8 <= len(s) must
// hold (it is not checked).
func Load64(s string, j int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(s)), j)), 8))
}

// quoteOrBackslashAt is QuoteOrBackslash for s[j:j+8]; j+8 <= len(s)
// must hold.
func quoteOrBackslashAt(s string, j int) uint64 {
	return QuoteOrBackslash(Load64(s, j))
}

// QuoteOrBackslash returns a mask with the high bit set in each byte of the
// little-endian word x that may be '"' or '\\'; the lowest set byte is
// always a real one (the classic has-zero-byte test, whose false positives
// only follow a true match).
func QuoteOrBackslash(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lo * '"')
	b := x ^ (lo * '\\')
	return ((q-lo)&^q | (b-lo)&^b) & hi
}

// PlainStringEnd returns the index just past the closing quote of the
// string that opens at s[i] if it holds only printable ASCII other than
// the backslash (so it can be copied as it is), else -1. It looks at eight
// bytes at a time.
func PlainStringEnd(s string, i int) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	j := i + 1
	for ; j+8 <= len(s); j += 8 {
		x := Load64(s, j)
		// A byte at or above 0x80 is flagged by x itself, so the
		// zero-byte and below-0x20 tests need no "&^ x": below the first
		// byte that stops the string nothing borrows and nothing is
		// flagged, and that byte is flagged.
		q, b := x^(lo*'"'), x^(lo*'\\')
		stop := ((q - lo) | (b - lo) | (x - lo*0x20) | x) & hi
		if stop == 0 {
			continue
		}
		j += bits.TrailingZeros64(stop) >> 3
		if s[j] == '"' {
			return j + 1
		}
		return -1
	}
	for ; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return j + 1
		case c < 0x20 || c == '\\' || c >= utf8.RuneSelf:
			return -1
		}
	}
	return -1
}

// Int32End returns the end of the JSON number at s[i] if it is an integer
// in 32 bits written without fraction, exponent or "-0", else -1.
func Int32End(s string, i int) int {
	j, neg := i, s[i] == '-'
	if neg {
		j++
	}
	start := j
	n := int64(0)
	for j < len(s) && j-start <= 10 && s[j]-'0' <= 9 {
		n = n*10 + int64(s[j]-'0')
		j++
	}
	switch digits := j - start; {
	case digits == 0 || digits > 10 || (s[start] == '0' && (digits > 1 || neg)):
		return -1
	case j < len(s) && (s[j] == '.' || s[j] == 'e' || s[j] == 'E'):
		return -1
	case n > math.MaxInt32+1 || (n == math.MaxInt32+1 && !neg):
		return -1
	}
	return j
}

// PlainFloatEnd returns the end of the JSON number at s[i] if it has no
// exponent and few enough digits to be finite, else -1.
func PlainFloatEnd(s string, i int) int {
	j := mantissaEnd(s, i)
	if j < 0 || j-i > 300 || (j < len(s) && (s[j] == 'e' || s[j] == 'E')) {
		return -1
	}
	return j
}

// mantissaEnd returns the end of the sign, integer and fraction of the
// JSON number at s[i] (what precedes its exponent), or -1 if the text
// there does not start a JSON number.
func mantissaEnd(s string, i int) int {
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i >= len(s):
		return -1
	case s[i] == '0':
		i++
	case s[i] >= '1' && s[i] <= '9':
		i = DigitsEnd(s, i)
	default:
		return -1
	}
	if i < len(s) && s[i] == '.' {
		j := DigitsEnd(s, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	return i
}

// DigitsEnd returns the index of the first non-digit at or after i.
func DigitsEnd(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// NumberEnd returns the end of the JSON number that starts at s[i], or -1 if
// the text there is not a JSON number.
func NumberEnd(s string, i int) int {
	if i = mantissaEnd(s, i); i < 0 {
		return -1
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := DigitsEnd(s, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

// LiteralEnd returns the end of lit if s continues with it at i, else -1.
func LiteralEnd(s string, i int, lit string) int {
	if strings.HasPrefix(s[i:], lit) {
		return i + len(lit)
	}
	return -1
}

// structural marks the bytes ContainerEnd must look at.
var structural = [256]bool{'{': true, '}': true, '[': true, ']': true, '"': true}

// ContainerEnd returns the end of the object or array that opens at s[i], or
// -1 if it is not closed. Only brackets and strings are looked at.
func ContainerEnd(s string, i int) int {
	return CloseEnd(s, i+1, 1)
}

// CloseEnd returns the index just past the bracket that brings depth, the
// number of brackets open before s[j], to zero, or -1 if none does. s[j]
// must not be inside a string. Only brackets and strings are looked at.
func CloseEnd(s string, j, depth int) int {
	for ; j < len(s); j++ {
		if !structural[s[j]] {
			continue
		}
		switch s[j] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		case '"':
			e, _ := StringEnd(s, j)
			if e < 0 {
				return -1
			}
			j = e - 1
		}
	}
	return -1
}

// ValueEnd returns the end of the JSON value that starts at s[i], or -1.
func ValueEnd(s string, i int) int {
	if i >= len(s) {
		return -1
	}
	switch s[i] {
	case '"':
		e, _ := StringEnd(s, i)
		return e
	case '{', '[':
		return ContainerEnd(s, i)
	case 't':
		return LiteralEnd(s, i, "true")
	case 'f':
		return LiteralEnd(s, i, "false")
	case 'n':
		return LiteralEnd(s, i, "null")
	default:
		return NumberEnd(s, i)
	}
}

// RootValue returns the first JSON value of s (surrounding whitespace and
// anything after it ignored), or "" if s does not start with one. An
// unclosed object or array runs to the end of s, so its members up to the
// first syntax error are still read; an object or array is not scanned to
// its end here at all.
func RootValue(s string) string {
	i := SkipWS(s, 0)
	if i < len(s) && (s[i] == '{' || s[i] == '[') {
		return s[i:] // iteration stops at the closing bracket
	}
	e := ValueEnd(s, i)
	if e < 0 {
		return ""
	}
	return s[i:e]
}

// IsNull reports whether raw is absent ("") or the JSON null.
func IsNull(raw string) bool {
	return raw == "" || raw[0] == 'n'
}

// Members iterates over the Members of a raw JSON object. The zero value is
// an empty iteration.
type Members struct {
	s string
	i int
	n int
}

// NewMembers returns an iterator over raw, which must start with '{'.
func NewMembers(raw string) Members {
	return Members{s: raw, i: 1}
}

// Next returns the next member: the key's raw text between its quotes,
// whether that text holds escapes, and the raw value. ok is false at the end
// of the object or at the first syntax error.
func (m *Members) Next() (key string, esc bool, val string, ok bool) {
	key, esc, i := MemberStart(m.s, m.i, m.n)
	if i < 0 {
		return "", false, "", false
	}
	ve := ValueEnd(m.s, i)
	if ve < 0 {
		return "", false, "", false
	}
	m.i, m.n = ve, m.n+1
	return key, esc, m.s[i:ve], true
}

// MemberStart reads the n-th member of an object from s[j], just past the
// object's opening bracket or the previous member's value: its key's raw
// text between quotes, whether that text holds escapes, and the index of
// its value, which is -1 at the end of the members or at a syntax error.
func MemberStart(s string, j, n int) (key string, esc bool, v int) {
	j = SkipWS(s, j)
	if n > 0 {
		if j >= len(s) || s[j] != ',' {
			return "", false, -1
		}
		j = SkipWS(s, j+1)
	}
	if j >= len(s) || s[j] != '"' {
		return "", false, -1
	}
	ke, esc := StringEnd(s, j)
	if ke < 0 {
		return "", false, -1
	}
	key = s[j+1 : ke-1]
	j = SkipWS(s, ke)
	if j >= len(s) || s[j] != ':' {
		return "", false, -1
	}
	return key, esc, SkipWS(s, j+1)
}

// Elements iterates over the Elements of a raw JSON array.
type Elements struct {
	s string
	i int
	n int
}

// NewElements returns an iterator over raw, which must start with '['.
func NewElements(raw string) Elements {
	return Elements{s: raw, i: 1}
}

// Next returns the next raw element; ok is false at the end of the array or
// at the first syntax error.
func (e *Elements) Next() (string, bool) {
	i := ElementStart(e.s, e.i, e.n)
	if i < 0 {
		return "", false
	}
	ve := ValueEnd(e.s, i)
	if ve < 0 {
		return "", false
	}
	e.i, e.n = ve, e.n+1
	return e.s[i:ve], true
}

// ElementStart returns the index of the n-th element of an array, read
// from s[j], just past the array's opening bracket or the previous element;
// -1 at the end of the Elements or at a syntax error.
func ElementStart(s string, j, n int) int {
	j = SkipWS(s, j)
	if n > 0 {
		if j >= len(s) || s[j] != ',' {
			return -1
		}
		j = SkipWS(s, j+1)
	}
	if j >= len(s) || s[j] == ']' {
		return -1
	}
	return j
}

// KeyIs reports whether the raw key text (between quotes, escaped if esc)
// equals name.
func KeyIs(key string, esc bool, name string) bool {
	if !esc {
		return key == name
	}
	return ContentEquals(key, name)
}

// Member returns the raw value of the first member of obj named name.
func Member(obj, name string) (string, bool) {
	if obj == "" || obj[0] != '{' {
		return "", false
	}
	m := NewMembers(obj)
	for {
		k, esc, v, ok := m.Next()
		if !ok {
			return "", false
		}
		if KeyIs(k, esc, name) {
			return v, true
		}
	}
}

// Element returns the raw value of the n-th element of arr.
func Element(arr string, n int) (string, bool) {
	if arr == "" || arr[0] != '[' {
		return "", false
	}
	e := NewElements(arr)
	for i := 0; ; i++ {
		v, ok := e.Next()
		if !ok {
			return "", false
		}
		if i == n {
			return v, true
		}
	}
}

// NextRune decodes the character of the raw string content s at i: an escape
// sequence or one UTF-8 sequence (an invalid byte decodes as RuneError of
// size 1). It returns the rune and the index after it; ok is false for an
// invalid escape.
func NextRune(s string, i int) (r rune, next int, ok bool) {
	if s[i] != '\\' {
		r, n := utf8.DecodeRuneInString(s[i:])
		return r, i + n, true
	}
	if i+1 >= len(s) {
		return 0, i + 1, false
	}
	switch s[i+1] {
	case '"', '\\', '/':
		return rune(s[i+1]), i + 2, true
	case 'b':
		return '\b', i + 2, true
	case 'f':
		return '\f', i + 2, true
	case 'n':
		return '\n', i + 2, true
	case 'r':
		return '\r', i + 2, true
	case 't':
		return '\t', i + 2, true
	case 'u':
		return unicodeEscape(s, i)
	}
	return 0, i + 1, false
}

// unicodeEscape decodes \uXXXX at s[i], joining a surrogate pair.
func unicodeEscape(s string, i int) (rune, int, bool) {
	r, ok := hex4(s, i+2)
	if !ok {
		return 0, i + 1, false
	}
	if r < 0xD800 || r >= 0xDC00 {
		return r, i + 6, true
	}
	if i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
		if lo, ok := hex4(s, i+8); ok && lo >= 0xDC00 && lo < 0xE000 {
			return (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000, i + 12, true
		}
	}
	return utf8.RuneError, i + 6, true
}

// hex4 parses four hex digits at s[i].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for k := i; k < i+4; k++ {
		switch c := s[k]; {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// ContentEquals reports whether the raw string content s, once unescaped,
// equals want. It does not allocate.
func ContentEquals(s, want string) bool {
	j := 0
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			if j >= len(want) || s[i] != want[j] {
				return false
			}
			i, j = i+1, j+1
			continue
		}
		r, next, ok := NextRune(s, i)
		if !ok {
			return false
		}
		var buf [utf8.UTFMax]byte
		n := utf8.EncodeRune(buf[:], r)
		if len(want)-j < n {
			return false
		}
		for k := 0; k < n; k++ {
			if want[j+k] != buf[k] {
				return false
			}
		}
		i, j = next, j+n
	}
	return j == len(want)
}

// Unescape writes the unescaped raw string content s into buf and
// returns the decoded text as a view of buf; ok is false if s has an invalid
// escape or does not fit.
func Unescape(s string, buf []byte) ([]byte, bool) {
	n := 0
	for i := 0; i < len(s); {
		r, next, ok := NextRune(s, i)
		if !ok || n+utf8.RuneLen(r) > len(buf) {
			return nil, false
		}
		if s[i] != '\\' {
			n += copy(buf[n:], s[i:next])
		} else {
			n += utf8.EncodeRune(buf[n:], r)
		}
		i = next
	}
	return buf[:n], true
}
