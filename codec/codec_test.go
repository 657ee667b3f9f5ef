package codec

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/internal/jsonx"
	"github.com/fraised/fraised/proto"
)

func TestParseHeaderRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 1 << 20} {
		var buf bytes.Buffer
		h := ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(n), Masked: true, Mask: [4]byte{1, 2, 3, 4}}
		if err := ws.WriteHeader(&buf, h); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		for cut := 0; cut < len(b); cut++ {
			if _, n, err := ParseHeader(b[:cut]); n != 0 || err != nil {
				t.Fatalf("len %d: partial header of %d bytes parsed as n=%d err=%v", n, cut, n, err)
			}
		}
		got, size, err := ParseHeader(b)
		if err != nil || size != len(b) || got != h {
			t.Fatalf("len %d: got %+v size %d err %v, want %+v size %d", n, got, size, err, h, len(b))
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"rsv bits", []byte{0x80 | 0x40 | 0x1, 0x80, 0, 0, 0, 0}, ErrReservedBits},
		{"reserved opcode", []byte{0x83, 0x80, 0, 0, 0, 0}, ErrReservedOpCode},
		{"fragmented ping", []byte{0x09, 0x80, 0, 0, 0, 0}, ErrControlFrame},
		{"long ping", []byte{0x89, 0x80 | 126, 0, 200, 0, 0, 0, 0}, ErrControlFrame},
		{"huge length", []byte{0x81, 127, 0xff, 0, 0, 0, 0, 0, 0, 0}, ErrLength},
	}
	for _, tt := range tests {
		if _, _, err := ParseHeader(tt.in); err != tt.want {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
}

func readFrames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		f, err := ws.ReadFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f.Payload)
	}
	return out
}

func TestMessages(t *testing.T) {
	id := jsonx.AppendString(nil, "sub\"1")
	b := AppendNext(nil, id, []byte(`{"data":{"x":1}}`))
	if len(b) != NextLen(id, []byte(`{"data":{"x":1}}`)) {
		t.Fatalf("NextLen mismatch")
	}
	b = AppendError(b, id, []byte(`[{"message":"m"}]`))
	b = AppendComplete(b, id)
	b = append(b, FrameAck...)
	b = append(b, FramePong...)
	want := []string{
		`{"id":"sub\"1","type":"next","payload":{"data":{"x":1}}}`,
		`{"id":"sub\"1","type":"error","payload":[{"message":"m"}]}`,
		`{"id":"sub\"1","type":"complete"}`,
		`{"type":"connection_ack"}`,
		`{"type":"pong"}`,
	}
	for i, p := range readFrames(t, b) {
		if string(p) != want[i] || !json.Valid(p) {
			t.Errorf("frame %d = %s, want %s", i, p, want[i])
		}
	}
}

func TestAppendClose(t *testing.T) {
	long := string(bytes.Repeat([]byte("r"), 300))
	f, err := ws.ReadFrame(bytes.NewReader(AppendClose(nil, 4400, long)))
	if err != nil {
		t.Fatal(err)
	}
	code, reason := ws.ParseCloseFrameData(f.Payload)
	if f.Header.OpCode != ws.OpClose || code != 4400 || len(reason) != MaxControlPayload-2 {
		t.Fatalf("close frame %+v code %d reason len %d", f.Header, code, len(reason))
	}
}

func TestFrameRemainder(t *testing.T) {
	a := AppendFrame(nil, ws.OpText, []byte("hello"))  // 7 bytes
	b := AppendFrame(nil, ws.OpText, []byte("world!")) // 8 bytes
	buf := append(append([]byte{}, a...), b...)
	tests := []struct{ sent, want int }{{0, 0}, {1, 6}, {6, 1}, {7, 0}, {8, 7}, {14, 1}}
	for _, tt := range tests {
		if got := FrameRemainder(buf, tt.sent); got != tt.want {
			t.Errorf("FrameRemainder(sent=%d) = %d, want %d", tt.sent, got, tt.want)
		}
	}
}

var sink []byte

func BenchmarkAppendNext(b *testing.B) {
	id := jsonx.AppendString(nil, "42")
	payload := bytes.Repeat([]byte("x"), 200)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(NextLen(id, payload)))
	for b.Loop() {
		buf = AppendNext(buf[:0], id, payload)
	}
	sink = buf
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0x81, 126, 1, 0})
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b)
		if err != nil || n == 0 {
			return
		}
		if n > len(b) || n > MaxHeaderSize || h.Length < 0 {
			t.Fatalf("header size %d of %d bytes, length %d", n, len(b), h.Length)
		}
		// A prefix never parses to a different header.
		for cut := 0; cut < n; cut++ {
			if _, m, _ := ParseHeader(b[:cut]); m != 0 {
				t.Fatalf("prefix of %d bytes parsed", cut)
			}
		}
		_ = FrameRemainder(b, len(b)/2)
	})
}

// TestFramedMessagesMatchProto: each framed server message is one text
// frame around the unframed message proto encodes, so a transport that
// frames proto's messages sends the bytes the dispatcher's frames hold.
func TestFramedMessagesMatchProto(t *testing.T) {
	id, payload := []byte(`"a\"1"`), []byte(`{"data":{"x":1}}`)
	f := func(name string, framed, message []byte) {
		t.Helper()
		if want := AppendFrame(nil, ws.OpText, message); !bytes.Equal(framed, want) {
			t.Errorf("%s: framed %q, want a text frame of %q", name, framed, message)
		}
	}
	f("ack", FrameAck, proto.MessageAck)
	f("pong", FramePong, proto.MessagePong)
	f("next", AppendNext(nil, id, payload), proto.AppendNext(nil, id, payload))
	f("error", AppendError(nil, id, []byte(`[{"message":"x"}]`)), proto.AppendError(nil, id, []byte(`[{"message":"x"}]`)))
	f("complete", AppendComplete(nil, id), proto.AppendComplete(nil, id))
	if n := NextLen(id, payload); n != len(AppendNext(nil, id, payload)) {
		t.Errorf("NextLen %d, frame %d bytes", n, len(AppendNext(nil, id, payload)))
	}
}
