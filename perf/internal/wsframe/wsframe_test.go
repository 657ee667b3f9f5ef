package wsframe

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		for _, masked := range []bool{false, true} {
			payload := bytes.Repeat([]byte{'x'}, n)
			f := AppendFrame(nil, OpText, payload, masked, key)
			h, hl, err := ParseHeader(f, 1<<20)
			if err != nil || hl == 0 {
				t.Fatalf("n=%d masked=%v: header err=%v hl=%d", n, masked, err, hl)
			}
			if !h.Fin || h.Op != OpText || h.Masked != masked || h.Len != n || hl+n != len(f) {
				t.Fatalf("n=%d masked=%v: got %+v hl=%d len=%d", n, masked, h, hl, len(f))
			}
			got := f[hl:]
			if masked {
				Mask(got, h.Mask, 0)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("n=%d masked=%v: payload differs", n, masked)
			}
			// Every strict prefix of the header is incomplete, not an error.
			for i := 0; i < hl; i++ {
				if _, k, err := ParseHeader(f[:i], 1<<20); k != 0 || err != nil {
					t.Fatalf("n=%d prefix %d: k=%d err=%v", n, i, k, err)
				}
			}
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"reserved bits", []byte{0xC1, 0x00}, ErrReservedBits},
		{"long ping", []byte{0x89, 126, 0, 200}, ErrControlLen},
		{"fragmented close", []byte{0x08, 0x00}, ErrControlLen},
		{"over limit 16", []byte{0x81, 126, 0xFF, 0xFF}, ErrTooLong},
		{"over limit 64", []byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, ErrTooLong},
	}
	for _, tt := range tests {
		if _, _, err := ParseHeader(tt.in, 1000); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestMaskInPieces(t *testing.T) {
	key := [4]byte{9, 8, 7, 6}
	msg := []byte("hello, masked world")
	whole := append([]byte(nil), msg...)
	Mask(whole, key, 0)
	pieces := append([]byte(nil), msg...)
	Mask(pieces[:5], key, 0)
	Mask(pieces[5:], key, 5)
	if !bytes.Equal(whole, pieces) {
		t.Fatal("masking in pieces differs from masking whole")
	}
}

func TestFields(t *testing.T) {
	msg := []byte(`{"id":"17","type":"next","payload":{"data":{"events":{"seq":-42,"ts":1.5,"body":"b"}}}}`)
	if got := string(Type(msg)); got != "next" {
		t.Errorf("Type = %q", got)
	}
	if got := string(ID(msg)); got != "17" {
		t.Errorf("ID = %q", got)
	}
	if v, ok := Seq(msg); !ok || v != -42 {
		t.Errorf("Seq = %d, %v", v, ok)
	}
	if Type([]byte(`{"id":"1"}`)) != nil || ID([]byte(`{"id":"unterminated`)) != nil {
		t.Error("missing or unterminated fields must give nil")
	}
	if _, ok := Seq([]byte(`{"seq":"x"}`)); ok {
		t.Error("non-numeric seq must not parse")
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"123,", 123, true},
		{"-7}", -7, true},
		{"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false},
		{"-", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		if v, ok := ParseInt([]byte(tt.in)); v != tt.want || ok != tt.ok {
			t.Errorf("ParseInt(%q) = %d, %v; want %d, %v", tt.in, v, ok, tt.want, tt.ok)
		}
	}
}

var sinkSeq int64

func BenchmarkSeq(b *testing.B) {
	msg := []byte(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":1234567,"ts":1732740000.123,"body":"` +
		string(bytes.Repeat([]byte{'a'}, 100)) + `"}}}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		v, _ := Seq(msg)
		sinkSeq += v + int64(len(Type(msg)))
	}
}

// FuzzParseHeader feeds each input whole and in two halves (the second
// parse sees the whole buffer again, as a reader that appended would), and
// checks that a parsed header never claims more bytes than were given.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'})
	f.Add(AppendFrame(nil, OpText, make([]byte, 300), true, [4]byte{1, 2, 3, 4}))
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b, 1<<16)
		if err != nil {
			return
		}
		if n > len(b) || n > MaxHeaderLen || h.Len > 1<<16 {
			t.Fatalf("n=%d len=%d h=%+v", n, len(b), h)
		}
		half := b[:len(b)/2]
		h2, n2, err2 := ParseHeader(half, 1<<16)
		if err2 == nil && n2 > 0 && (n2 != n || h2 != h) {
			t.Fatalf("half parse differs: %+v/%d vs %+v/%d", h2, n2, h, n)
		}
	})
}
