package gql

import (
	"fmt"
	"testing"
)

func TestKeyIndex(t *testing.T) {
	names := []string{"id", "seq", "a", "text", "__typename", "averyveryverylongname", "averyveryverylongnamf", "eightchr"}
	for i := 0; i < 40; i++ { // enough names to force collisions and probing
		names = append(names, fmt.Sprintf("f%d", i))
	}
	k := newKeyIndex(names)
	for i, n := range names {
		if got := k.lookup(n, false); got != i {
			t.Errorf("lookup(%q) = %d, want %d", n, got, i)
		}
	}
	tests := []struct {
		key  string
		esc  bool
		want int
	}{
		{"", false, -1}, {"i", false, -1}, {"ids", false, -1}, {"averyveryverylongnamg", false, -1}, {"eightchs", false, -1},
		{`s\u0065q`, true, 1}, {`\u0061`, true, 2}, {`t\"`, true, -1}, {"f39", false, 47},
	}
	for _, tt := range tests {
		if got := k.lookup(tt.key, tt.esc); got != tt.want {
			t.Errorf("lookup(%q, %v) = %d, want %d", tt.key, tt.esc, got, tt.want)
		}
	}
}

func TestKeyIndexMember(t *testing.T) {
	k := newKeyIndex([]string{"id", "seq", "averyveryverylongname"})
	tests := []struct {
		doc    string
		j, n   int
		src, v int
	}{
		{`{"id":1}`, 1, 0, 0, 6},        // short input: the key is read with jsonx.StringEnd
		{`{"id":12345678}`, 1, 0, 0, 6}, // the key is read with one load
		{`{"seq" : "x"}`, 1, 0, 1, 9},
		{`{ "zz":1,"id":2}`, 1, 0, -1, 7},
		{`{"a":1 , "seq":2}`, 6, 1, 1, 15},
		{`{"a":1 "seq":2}`, 6, 1, -1, -1},
		{`{"averyveryverylongname":[]}`, 1, 0, 2, 25},
		{`{"s\u0065q":0,"padding":1}`, 1, 0, 1, 12},
		{`{"id"`, 1, 0, -1, -1},
		{`{"id":`, 1, 0, 0, 6},
		{`{"i`, 1, 0, -1, -1},
		{`{}`, 1, 0, -1, -1},
		{`{"seq"x:1}`, 1, 0, -1, -1},
	}
	for _, tt := range tests {
		if src, v := k.member(tt.doc, tt.j, tt.n); src != tt.src || v != tt.v {
			t.Errorf("member(%s, %d, %d) = %d, %d; want %d, %d", tt.doc, tt.j, tt.n, src, v, tt.src, tt.v)
		}
	}
}
