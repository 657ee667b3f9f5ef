package gql

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/fraised/fraised/internal/jsonx"
)

// Leaf values are serialised as graphql-js's built-in scalars do
// (serializeInt, serializeFloat, serializeString, serializeBoolean,
// serializeID, GraphQLEnumType.serialize), reading raw JSON instead of
// JavaScript values. Raw strings are copied without decoding.

// leaf serialises raw, which is not null, as the leaf type of f.
func (p *projector) leaf(dst []byte, f *field, raw string) ([]byte, bool) {
	switch f.leaf {
	case leafString:
		return p.stringLeaf(dst, f, raw)
	case leafInt:
		return p.intLeaf(dst, f, raw)
	case leafFloat:
		return p.floatLeaf(dst, f, raw)
	case leafBoolean:
		return p.boolLeaf(dst, f, raw)
	case leafID:
		return p.idLeaf(dst, f, raw)
	case leafEnum:
		return p.enumLeaf(dst, f, raw)
	}
	return p.customLeaf(dst, f, raw)
}

// isNumber reports whether raw is a JSON number.
func isNumber(raw string) bool {
	return raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')
}

// stringLeaf: strings as is, booleans and finite numbers as text.
func (p *projector) stringLeaf(dst []byte, f *field, raw string) ([]byte, bool) {
	switch {
	case raw[0] == '"':
		return jsonx.AppendRawString(dst, raw[1:len(raw)-1]), true
	case raw[0] == 't' || raw[0] == 'f':
		return appendQuoted(dst, raw), true
	case isNumber(raw):
		if x, err := strconv.ParseFloat(raw, 64); err == nil {
			return append(jsonx.AppendJSNumber(append(dst, '"'), x), '"'), true
		}
	}
	p.fail(f, "String cannot represent value: "+inspect(raw))
	return dst, false
}

// intLeaf: integral values within 32 bits; booleans as 1/0; numeric strings
// converted as JavaScript's Number() does.
func (p *projector) intLeaf(dst []byte, f *field, raw string) ([]byte, bool) {
	if isNumber(raw) && isPlainInt(raw) && len(raw) <= 11 {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err == nil && n >= math.MinInt32 && n <= math.MaxInt32 {
			return strconv.AppendInt(dst, n, 10), true
		}
	}
	x, ok := p.numeric(raw)
	if !ok || math.IsInf(x, 0) || x != math.Trunc(x) {
		p.fail(f, "Int cannot represent non-integer value: "+inspect(raw))
		return dst, false
	}
	if x > math.MaxInt32 || x < math.MinInt32 {
		p.fail(f, "Int cannot represent non 32-bit signed integer value: "+inspect(raw))
		return dst, false
	}
	return strconv.AppendInt(dst, int64(x), 10), true
}

// floatLeaf: finite numbers (copied as written); booleans as 1/0; numeric
// strings converted.
func (p *projector) floatLeaf(dst []byte, f *field, raw string) ([]byte, bool) {
	if isNumber(raw) {
		if _, err := strconv.ParseFloat(raw, 64); err == nil {
			return append(dst, raw...), true
		}
	}
	x, ok := p.numeric(raw)
	if !ok || math.IsInf(x, 0) || math.IsNaN(x) {
		p.fail(f, "Float cannot represent non numeric value: "+inspect(raw))
		return dst, false
	}
	return jsonx.AppendJSNumber(dst, x), true
}

// numeric converts raw as graphql-js does before checking Int and Float:
// booleans are 1/0, non-empty strings go through Number().
func (p *projector) numeric(raw string) (float64, bool) {
	switch raw[0] {
	case 't':
		return 1, true
	case 'f':
		return 0, true
	case '"':
		s := raw[1 : len(raw)-1]
		if s == "" {
			return 0, false
		}
		var buf [64]byte
		b, ok := jsonx.Unescape(s, buf[:])
		if !ok {
			return 0, false
		}
		return jsNumber(unsafe.String(unsafe.SliceData(b), len(b)))
	case '{', '[':
		return 0, false
	}
	x, err := strconv.ParseFloat(raw, 64)
	return x, err == nil || math.IsInf(x, 0)
}

// boolLeaf: booleans; finite numbers as their truthiness.
func (p *projector) boolLeaf(dst []byte, f *field, raw string) ([]byte, bool) {
	switch {
	case raw[0] == 't' || raw[0] == 'f':
		return append(dst, raw...), true
	case isNumber(raw):
		if x, err := strconv.ParseFloat(raw, 64); err == nil {
			return strconv.AppendBool(dst, x != 0), true
		}
	}
	p.fail(f, "Boolean cannot represent a non boolean value: "+inspect(raw))
	return dst, false
}

// idLeaf: strings as is; integers as decimal strings (digits kept exactly).
func (p *projector) idLeaf(dst []byte, f *field, raw string) ([]byte, bool) {
	switch {
	case raw[0] == '"':
		return jsonx.AppendRawString(dst, raw[1:len(raw)-1]), true
	case isNumber(raw) && isPlainInt(raw):
		if raw == "-0" {
			raw = "0"
		}
		return appendQuoted(dst, raw), true
	case isNumber(raw):
		x, err := strconv.ParseFloat(raw, 64)
		if err == nil && x == math.Trunc(x) {
			return append(jsonx.AppendJSNumber(append(dst, '"'), x), '"'), true
		}
	}
	p.fail(f, "ID cannot represent value: "+inspect(raw))
	return dst, false
}

// enumLeaf: strings naming a value of the enum.
func (p *projector) enumLeaf(dst []byte, f *field, raw string) ([]byte, bool) {
	if raw[0] == '"' {
		s := raw[1 : len(raw)-1]
		if strings.IndexByte(s, '\\') < 0 {
			if _, ok := f.enum[s]; ok {
				return append(dst, raw...), true
			}
		} else {
			for name := range f.enum {
				if jsonx.ContentEquals(s, name) {
					return jsonx.AppendString(dst, name), true
				}
			}
		}
	}
	p.fail(f, "Enum \""+f.named+"\" cannot represent value: "+inspect(raw))
	return dst, false
}

// customLeaf passes the raw JSON of a custom scalar through, once it is
// known to be valid JSON and UTF-8.
func (p *projector) customLeaf(dst []byte, f *field, raw string) ([]byte, bool) {
	switch raw[0] {
	case '"':
		return jsonx.AppendRawString(dst, raw[1:len(raw)-1]), true
	case '{', '[':
		b := unsafe.Slice(unsafe.StringData(raw), len(raw))
		if !json.Valid(b) || !utf8.ValidString(raw) {
			p.fail(f, "Custom scalar \""+f.named+"\" holds invalid JSON: "+inspect(raw))
			return dst, false
		}
	}
	return append(dst, raw...), true
}

// appendQuoted appends raw between double quotes; raw needs no escaping
// (a JSON literal such as true or a number).
func appendQuoted(dst []byte, raw string) []byte {
	dst = append(dst, '"')
	dst = append(dst, raw...)
	return append(dst, '"')
}
