package gql

import (
	"math"
	"strconv"
)

// filterKind is the kind of value a filter compares with.
type filterKind uint8

const (
	filterString filterKind = iota + 1 // JSON string equal to str
	filterID                           // like filterString; also a JSON integer equal to i when isInt
	filterNumber                       // JSON number numerically equal
	filterBool                         // JSON true/false equal to b
)

// filter is one resolved @filter: the event value at path must equal the
// value held here.
type filter struct {
	path  []string
	kind  filterKind
	str   string
	num   float64
	i     int64
	isInt bool
	b     bool
}

// setInt sets the expected number to the integer n.
func (f *filter) setInt(n int64) {
	f.i, f.num, f.isInt = n, float64(n), true
}

// setFloat sets the expected number to x, also as an integer when exact.
func (f *filter) setFloat(x float64) {
	f.num = x
	if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
		f.i, f.isInt = int64(x), true
	}
}

// Match reports whether event passes the operation's filters. It is safe
// for concurrent use and does not allocate. event is only read during the
// call.
func (op *Operation) Match(event []byte) bool {
	p := op.plan
	if p.never {
		return false
	}
	if len(p.filters) == 0 {
		return true
	}
	root := rootValue(bytesView(event))
	for i := range p.filters {
		if !p.filters[i].match(root) {
			return false
		}
	}
	return true
}

// match reports whether the value at f.path in the raw JSON root equals
// the filter's value.
func (f *filter) match(root string) bool {
	v, ok := lookupPath(root, f.path)
	if !ok || v == "" {
		return false
	}
	switch f.kind {
	case filterString:
		return v[0] == '"' && contentEquals(v[1:len(v)-1], f.str)
	case filterID:
		if v[0] == '"' {
			return contentEquals(v[1:len(v)-1], f.str)
		}
		return f.isInt && f.numberEquals(v)
	case filterNumber:
		return f.numberEquals(v)
	case filterBool:
		return (v == "true" && f.b) || (v == "false" && !f.b)
	}
	return false
}

// numberEquals reports whether the raw JSON v is a number equal to the
// filter's number; integers are compared exactly.
func (f *filter) numberEquals(v string) bool {
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return false
	}
	if f.isInt && isPlainInt(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			return n == f.i
		}
	}
	x, err := strconv.ParseFloat(v, 64)
	return err == nil && x == f.num
}

// isPlainInt reports whether the JSON number v has no fraction or exponent.
func isPlainInt(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return true
}

// lookupPath follows path from the raw JSON value root: object members by
// name, array elements by decimal index.
func lookupPath(root string, path []string) (string, bool) {
	v := root
	for _, seg := range path {
		if v == "" {
			return "", false
		}
		var ok bool
		switch v[0] {
		case '{':
			v, ok = member(v, seg)
		case '[':
			if n := segIndex(seg); n >= 0 {
				v, ok = element(v, n)
			}
		}
		if !ok {
			return "", false
		}
	}
	return v, true
}

// segIndex parses a path segment as an array index, or returns -1.
func segIndex(seg string) int {
	if seg == "" || len(seg) > 9 {
		return -1
	}
	n := 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
