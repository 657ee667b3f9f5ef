package gql

import (
	"math"
	"strconv"

	"github.com/fraised/fraised/internal/jsonx"
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
	root := jsonx.RootValue(jsonx.View(event))
	if p.match != nil {
		return p.matchAt(p.match, root)
	}
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
	return ok && v != "" && f.test(v)
}

// test reports whether the raw JSON value v equals the filter's value.
func (f *filter) test(v string) bool {
	switch f.kind {
	case filterString:
		return v[0] == '"' && jsonx.ContentEquals(v[1:len(v)-1], f.str)
	case filterID:
		if v[0] == '"' {
			return jsonx.ContentEquals(v[1:len(v)-1], f.str)
		}
		return f.isInt && f.numberEquals(v)
	case filterNumber:
		return f.numberEquals(v)
	case filterBool:
		return (v == "true" && f.b) || (v == "false" && !f.b)
	}
	return false
}

// matchMax is the most distinct steps one level of a match tree holds;
// with wider filter paths each filter looks its value up on its own.
const matchMax = 8

// matchNode is one level of the tree of an operation's filter paths, so
// that Match reads each object on the paths once for all filters: the
// distinct steps taken from a value, and per step the filters whose path
// ends there and the level below.
type matchNode struct {
	steps []string
	tests [][]int      // per step: the filters testing the value there
	kids  []*matchNode // per step: the level below, nil if none
}

// newMatchTree builds the tree of the paths of filters, or returns nil if
// a level would have more than matchMax steps.
func newMatchTree(filters []filter) *matchNode {
	root := &matchNode{}
	for i := range filters {
		n := root
		for d, seg := range filters[i].path {
			k := n.step(seg)
			if k >= matchMax {
				return nil
			}
			if d == len(filters[i].path)-1 {
				n.tests[k] = append(n.tests[k], i)
				continue
			}
			if n.kids[k] == nil {
				n.kids[k] = &matchNode{}
			}
			n = n.kids[k]
		}
	}
	return root
}

// step returns the index of seg in n.steps, adding it if needed.
func (n *matchNode) step(seg string) int {
	for k, s := range n.steps {
		if s == seg {
			return k
		}
	}
	n.steps = append(n.steps, seg)
	n.tests = append(n.tests, nil)
	n.kids = append(n.kids, nil)
	return len(n.steps) - 1
}

// matchAt reports whether the raw JSON value v passes the filters below n.
func (p *plan) matchAt(n *matchNode, v string) bool {
	var vals [matchMax]string
	if !n.collect(v, &vals) {
		return false
	}
	for k := range n.steps {
		for _, i := range n.tests[k] {
			if !p.filters[i].test(vals[k]) {
				return false
			}
		}
		if n.kids[k] != nil && !p.matchAt(n.kids[k], vals[k]) {
			return false
		}
	}
	return true
}

// collect looks up every step of n in the raw JSON value v, reading an
// object's members once (the first member of a name wins, as in
// lookupPath). It reports whether all were found.
func (n *matchNode) collect(v string, vals *[matchMax]string) bool {
	if v == "" {
		return false
	}
	switch v[0] {
	case '{':
		return n.members(v, vals)
	case '[':
		for k, s := range n.steps {
			i := segIndex(s)
			if i < 0 {
				return false
			}
			var ok bool
			if vals[k], ok = jsonx.Element(v, i); !ok {
				return false
			}
		}
		return true
	}
	return false
}

// members collects the steps of n from the members of the object obj.
func (n *matchNode) members(obj string, vals *[matchMax]string) bool {
	left := len(n.steps)
	m := jsonx.NewMembers(obj)
	for left > 0 {
		key, esc, val, ok := m.Next()
		if !ok {
			return false
		}
		for k, s := range n.steps {
			if vals[k] == "" && jsonx.KeyIs(key, esc, s) {
				vals[k] = val
				left--
				break
			}
		}
	}
	return true
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
			v, ok = jsonx.Member(v, seg)
		case '[':
			if n := segIndex(seg); n >= 0 {
				v, ok = jsonx.Element(v, n)
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
