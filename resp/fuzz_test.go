package resp

import (
	"slices"
	"testing"
)

// FuzzParser feeds each input all at once, in two parts cut at cut, and (if
// short) one byte at a time: the commands, errors and bytes left over must be
// the same, and Next must keep its contract (checked by feed).
func FuzzParser(f *testing.F) {
	for _, tt := range allTests() {
		f.Add([]byte(tt.in), uint16(len(tt.in)/2))
	}
	f.Add(pipeline(3), uint16(100))
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		newParser := func() *Parser { return &Parser{MaxBulk: 16, MaxArgs: 4} }
		k := int(cut) % (len(in) + 1)
		whole, wholeRest, _ := feed(t, newParser(), in)
		parts, partsRest, _ := feed(t, newParser(), in[:k], in[k:])
		if !slices.Equal(whole, parts) || string(wholeRest) != string(partsRest) {
			t.Fatalf("whole: %q, rest %q\ncut at %d: %q, rest %q", whole, wholeRest, k, parts, partsRest)
		}
		if len(in) > 256 {
			return
		}
		var bytewise [][]byte
		for i := range in {
			bytewise = append(bytewise, in[i:i+1])
		}
		bytes, bytesRest, _ := feed(t, newParser(), bytewise...)
		if !slices.Equal(whole, bytes) || string(wholeRest) != string(bytesRest) {
			t.Fatalf("whole: %q, rest %q\nbyte by byte: %q, rest %q", whole, wholeRest, bytes, bytesRest)
		}
	})
}
