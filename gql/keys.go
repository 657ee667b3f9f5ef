package gql

import (
	"math/bits"

	"github.com/fraised/fraised/internal/jsonx"
)

// keyIndex finds which of a fixed list of names an event key is, so that a
// single pass over an object can pick the members a selection reads: a
// hash of the key's length and first eight bytes, then a comparison of
// those (and of the rest for longer names). It is built at compile time
// and only read afterwards.
type keyIndex struct {
	names []string
	slots []keySlot // open addressing; len is a power of two
	shift uint      // 64 - log2(len(slots))
}

// keySlot is one slot of a keyIndex; idx is the index in names plus one,
// 0 when the slot is empty.
type keySlot struct {
	word uint64 // the first eight bytes of name, zero-padded
	name string
	idx  int
}

// newKeyIndex indexes names, which must be distinct.
func newKeyIndex(names []string) keyIndex {
	size, shift := 8, uint(64-3)
	for size < 2*len(names) {
		size, shift = size*2, shift-1
	}
	k := keyIndex{names: names, slots: make([]keySlot, size), shift: shift}
	for i, n := range names {
		w := prefixWord(n)
		h := k.slot(len(n), w)
		for k.slots[h].idx != 0 {
			h = (h + 1) & (len(k.slots) - 1)
		}
		k.slots[h] = keySlot{word: w, name: n, idx: i + 1}
	}
	return k
}

// prefixWord returns the first eight bytes of s as a little-endian word,
// zero-padded.
func prefixWord(s string) uint64 {
	if len(s) >= 8 {
		return jsonx.Load64(s, 0)
	}
	var w uint64
	for i := len(s) - 1; i >= 0; i-- {
		w = w<<8 | uint64(s[i])
	}
	return w
}

// slot returns the home slot of a name of length n and prefix word w.
func (k *keyIndex) slot(n int, w uint64) int {
	return int(((w ^ uint64(n)) * 0x9E3779B97F4A7C15) >> k.shift)
}

// find returns the index of the name of length n, prefix word w and text
// key (only compared beyond eight bytes), or -1.
func (k *keyIndex) find(n int, w uint64, key string) int {
	mask := len(k.slots) - 1
	for h := k.slot(n, w); ; h = (h + 1) & mask {
		sl := &k.slots[h]
		switch {
		case sl.idx == 0:
			return -1
		case sl.word == w && len(sl.name) == n && (n <= 8 || sl.name == key):
			return sl.idx - 1
		}
	}
}

// lookup returns the index of the name that the raw key text (between
// quotes, escaped if esc) spells, or -1.
func (k *keyIndex) lookup(key string, esc bool) int {
	if !esc {
		return k.find(len(key), prefixWord(key), key)
	}
	for i, n := range k.names {
		if jsonx.ContentEquals(key, n) {
			return i
		}
	}
	return -1
}

// member reads the n-th member of an object from s[j], just past the
// object's opening bracket or the previous member's value, as jsonx.MemberStart
// does, and returns the index of its key in k (-1 for other keys) and the
// index of its value (-1 at the end of the members or at a syntax error).
// A key shorter than eight bytes is found and looked up with one load.
func (k *keyIndex) member(s string, j, n int) (src, v int) {
	j = jsonx.SkipWS(s, j)
	if n > 0 {
		if j >= len(s) || s[j] != ',' {
			return -1, -1
		}
		j = jsonx.SkipWS(s, j+1)
	}
	if j >= len(s) || s[j] != '"' {
		return -1, -1
	}
	ke := -1
	if j+9 <= len(s) {
		x := jsonx.Load64(s, j+1)
		if m := jsonx.QuoteOrBackslash(x); m != 0 {
			if l := bits.TrailingZeros64(m) >> 3; s[j+1+l] == '"' {
				src, ke = k.find(l, x&(1<<(8*l)-1), ""), j+l+2
			}
		}
	}
	if ke < 0 {
		var esc bool
		if ke, esc = jsonx.StringEnd(s, j); ke < 0 {
			return -1, -1
		}
		src = k.lookup(s[j+1:ke-1], esc)
	}
	j = jsonx.SkipWS(s, ke)
	if j >= len(s) || s[j] != ':' {
		return -1, -1
	}
	return src, jsonx.SkipWS(s, j+1)
}
