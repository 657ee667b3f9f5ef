package gql

import (
	"math"

	"github.com/fraised/fraised/internal/jsonx"
	"github.com/vektah/gqlparser/v2/ast"
)

// The fast path projects a value in one pass over the event: each object's
// members are read once, in event order, each key is found in the plan by
// a hash (keyIndex), and a selected member's value is projected as soon as
// it is met, nested objects and lists included, so a selected value is not
// scanned once to find its end and again to project it, and the rest of an
// object whose selected members were all found is only skipped (not read
// at all for the root value). Fields are written
// where they belong while the event lists them in selection order, which
// is the usual case; from the first one out of order on, their values are
// written as met and put in selection order at the object's end.
//
// It handles events that project without a field error. Anything else (a
// field error, a member whose syntax is broken, a runtime type it cannot
// know) makes it give up: p.abort is set, the bytes it wrote are dropped
// and the general completion in project.go runs again from the root value,
// so errors, their order and null propagation are exactly as before.

// fastMaxFields is the most fields a selection may have to be projected in
// one pass: which fields were met is a 32-bit mask. Larger selections use
// the general completion.
const fastMaxFields = 32

// span is where a field's value was written in dst, relative to the
// object's start (32 bits keep fastObj small; a larger object gives up).
type span struct {
	start, end uint32
}

// fastObj is the state of one object projected in one pass.
type fastObj struct {
	sel     *selection
	keys    *keyIndex
	types   uint32 // sel.fast.typenames
	base    int    // where the object's output starts in dst
	next    int    // fields before next are written in place, in order
	inOrder bool   // every field met so far was written in place
	tail    int    // when not inOrder: where the in-place fields end in dst
	written uint32 // fields whose value is in spans
	spans   [fastMaxFields]span
}

// complete completes raw, the value of root field f, in one pass when that
// works and with the general completion otherwise.
func (p *projector) complete(dst []byte, f *field, raw string) ([]byte, bool) {
	if raw != "" && !p.slow {
		start := len(dst)
		p.fast = true
		out, end := p.fastValue(dst, f, f.typ, raw, 0, true)
		ok := end >= 0 && !p.abort
		p.fast, p.abort = false, false
		if ok {
			return out, true
		}
		dst = out[:start]
	}
	return p.caught(dst, f, f.typ, raw)
}

// giveUp ends the fast path; it returns the -1 the fast functions return.
func (p *projector) giveUp() int {
	p.abort = true
	return -1
}

// fastValue appends the value at s[i] completed as type t of field f and
// returns the index just past it, or -1 when giving up. With top, s[i] is
// the root value, whose end is not needed: an object or list there is read
// until its members end, as jsonx.RootValue allows.
func (p *projector) fastValue(dst []byte, f *field, t *ast.Type, s string, i int, top bool) ([]byte, int) {
	if i < len(s) {
		switch {
		case t.Elem != nil:
			if s[i] == '[' {
				return p.fastList(dst, f, t.Elem, s, i, top)
			}
		case f.obj != nil:
			if s[i] == '{' {
				return p.fastObject(dst, f, s, i, top)
			}
		default:
			if e := plainLeafEnd(f.leaf, s, i); e > 0 {
				return append(dst, s[i:e]...), e
			}
		}
	}
	e := jsonx.ValueEnd(s, i)
	if e < 0 {
		return dst, p.giveUp()
	}
	dst, ok := p.value(dst, f, t, s[i:e])
	if !ok || p.abort {
		return dst, p.giveUp()
	}
	return dst, e
}

// fastList appends the list that opens at s[i], items of type elem.
func (p *projector) fastList(dst []byte, f *field, elem *ast.Type, s string, i int, top bool) ([]byte, int) {
	dst = append(dst, '[')
	j := i + 1
	for n := 0; ; n++ {
		v := jsonx.ElementStart(s, j, n)
		if v < 0 {
			break
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		if dst, j = p.fastValue(dst, f, elem, s, v, false); j < 0 {
			return dst, -1
		}
	}
	dst = append(dst, ']')
	if top {
		return dst, j
	}
	return dst, p.closed(s, j)
}

// closed returns the index past the closing bracket that follows s[j]
// (after whitespace), where an iteration over members or elements stopped;
// it gives up if something else is there.
func (p *projector) closed(s string, j int) int {
	j = jsonx.SkipWS(s, j)
	if j < len(s) && (s[j] == '}' || s[j] == ']') {
		return j + 1
	}
	return p.giveUp()
}

// fastObject appends the object that opens at s[i], reading its members
// once.
func (p *projector) fastObject(dst []byte, f *field, s string, i int, top bool) ([]byte, int) {
	sel, ok := p.fastSelection(f, s[i:])
	if !ok {
		return dst, p.giveUp()
	}
	if sel.fast == nil {
		return p.fastValueSlow(dst, f, s, i)
	}
	w := fastObj{sel: sel, keys: &f.obj.keys, types: sel.fast.typenames, base: len(dst), inOrder: true}
	dst = append(dst, '{')
	dst, j, left := p.fastMembers(dst, &w, s, i+1)
	if j < 0 {
		return dst, -1
	}
	if dst, ok = p.finish(dst, &w); !ok {
		return dst, p.giveUp()
	}
	switch {
	case top:
		return dst, j
	case left == 0: // stopped early: skip the members left
		if j = jsonx.CloseEnd(s, j, 1); j < 0 {
			return dst, p.giveUp()
		}
		return dst, j
	}
	return dst, p.closed(s, j)
}

// fastSelection returns the selection for the object obj (open-ended) of
// field f: for an abstract type, the one its "__typename" names.
func (p *projector) fastSelection(f *field, obj string) (*selection, bool) {
	o := f.obj
	if !o.abstract {
		return o.sels[0], true
	}
	tn, _ := jsonx.Member(obj, "__typename")
	return p.selectionFor(f, o, tn)
}

// fastValueSlow completes the object at s[i] with the general completion.
func (p *projector) fastValueSlow(dst []byte, f *field, s string, i int) ([]byte, int) {
	e := jsonx.ValueEnd(s, i)
	if e < 0 {
		return dst, p.giveUp()
	}
	dst, ok := p.object(dst, f, s[i:e])
	if !ok || p.abort {
		return dst, p.giveUp()
	}
	return dst, e
}

// fastMembers reads the members of an object from s[j] on, projecting the
// selected ones, until all were found (left is 0) or the members end. It
// returns the index where it stopped, -1 when giving up.
func (p *projector) fastMembers(dst []byte, w *fastObj, s string, j int) (_ []byte, end, left int) {
	fp := w.sel.fast
	left = fp.nsrc
	var seen uint64
	for n := 0; left > 0; n++ {
		src, v := w.keys.member(s, j, n)
		if v < 0 {
			break
		}
		if src < 0 || seen>>src&1 != 0 || fp.bySrc[src] == nil {
			if j = jsonx.ValueEnd(s, v); j < 0 {
				return dst, p.giveUp(), left
			}
			continue
		}
		seen |= 1 << src
		left--
		if dst, j = p.fastFields(dst, w, fp.bySrc[src], s, v); j < 0 {
			return dst, -1, left
		}
	}
	return dst, j, left
}

// fastFields appends the fields ids, which all read the member value at
// s[v], in place when they are next in selection order.
func (p *projector) fastFields(dst []byte, w *fastObj, ids []uint8, s string, v int) ([]byte, int) {
	if w.inOrder {
		if w.types != 0 {
			dst = w.typenames(dst)
		}
		if w.inOrder = w.follows(ids); !w.inOrder {
			w.tail = len(dst)
		}
	}
	end := -1
	for _, k := range ids {
		cf := w.sel.fields[k]
		if w.inOrder {
			dst = w.key(dst, cf)
		}
		start := len(dst) - w.base
		if dst, end = p.fastValue(dst, cf, cf.typ, s, v, false); end < 0 {
			return dst, -1
		}
		if uint64(len(dst)-w.base) > math.MaxUint32 {
			return dst, p.giveUp()
		}
		w.spans[k] = span{uint32(start), uint32(len(dst) - w.base)}
		w.written |= 1 << k
	}
	return dst, end
}

// follows reports whether ids are the next fields in selection order.
func (w *fastObj) follows(ids []uint8) bool {
	for m, k := range ids {
		if int(k) != w.next+m {
			return false
		}
	}
	return true
}

// key appends the response key of the next field in place.
func (w *fastObj) key(dst []byte, f *field) []byte {
	if w.next > 0 {
		dst = append(dst, ',')
	}
	w.next++
	return append(dst, f.key...)
}

// typenames appends in place the __typename fields that come next.
func (w *fastObj) typenames(dst []byte) []byte {
	for w.inOrder && w.types>>w.next&1 != 0 {
		dst = append(w.key(dst, w.sel.fields[w.next]), w.sel.typeJSON...)
	}
	return dst
}

// finish ends the object: the fields the event lacks are null (or the
// fast path gives up for a non-null one), and the object is reassembled
// unless everything was written in place.
func (p *projector) finish(dst []byte, w *fastObj) ([]byte, bool) {
	fields := w.sel.fields
	if w.sel.fast.nonNull&^w.written != 0 {
		return dst, false
	}
	if !w.inOrder {
		return w.assemble(dst), true
	}
	for dst = w.typenames(dst); w.next < len(fields); dst = w.typenames(dst) {
		dst = append(w.key(dst, fields[w.next]), "null"...)
	}
	return append(dst, '}'), true
}

// assemble appends the fields not written in place, in selection order,
// after what was written, then moves them to where the fields written in
// place end.
func (w *fastObj) assemble(dst []byte) []byte {
	at := len(dst)
	for k := w.next; k < len(w.sel.fields); k++ {
		cf := w.sel.fields[k]
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, cf.key...)
		switch {
		case cf.typename:
			dst = append(dst, w.sel.typeJSON...)
		case w.written>>k&1 != 0:
			dst = append(dst, dst[w.base+int(w.spans[k].start):w.base+int(w.spans[k].end)]...)
		default:
			dst = append(dst, "null"...)
		}
	}
	dst = append(dst, '}')
	n := copy(dst[w.tail:], dst[at:])
	return dst[:w.tail+n]
}

// plainLeafEnd returns the end of the value at s[i] when it is the common
// form of a leaf of kind k that is output exactly as written: a string of
// printable ASCII without escapes for String, ID and custom scalars, a
// 32-bit integer without fraction or exponent for Int, a number without
// exponent for Float, true or false for Boolean. Otherwise it returns -1
// and the value takes the general way.
func plainLeafEnd(k leafKind, s string, i int) int {
	switch k {
	case leafString, leafID, leafCustom:
		if s[i] == '"' {
			return jsonx.PlainStringEnd(s, i)
		}
	case leafInt:
		return jsonx.Int32End(s, i)
	case leafFloat:
		return jsonx.PlainFloatEnd(s, i)
	case leafBoolean:
		if s[i] == 't' {
			return jsonx.LiteralEnd(s, i, "true")
		}
		if s[i] == 'f' {
			return jsonx.LiteralEnd(s, i, "false")
		}
	}
	return -1
}
