package respw

import (
	"errors"
	"testing"
)

func TestAppendPublish(t *testing.T) {
	got := string(AppendPublish(nil, []byte("bench.0"), []byte(`{"seq":1}`)))
	want := "*3\r\n$7\r\nPUBLISH\r\n$7\r\nbench.0\r\n$9\r\n{\"seq\":1}\r\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPublishParsesBack(t *testing.T) {
	var buf []byte
	buf = AppendPublish(buf, []byte("a"), []byte("x\r\ny"))
	buf = AppendPublish(buf, []byte("topic.b"), nil)
	var args [][]byte
	args, n, err := ParseCommand(buf, args, 100)
	if err != nil || n == 0 || len(args) != 3 || string(args[0]) != "PUBLISH" || string(args[1]) != "a" || string(args[2]) != "x\r\ny" {
		t.Fatalf("first: args=%q n=%d err=%v", args, n, err)
	}
	args, m, err := ParseCommand(buf[n:], args, 100)
	if err != nil || n+m != len(buf) || string(args[1]) != "topic.b" || len(args[2]) != 0 {
		t.Fatalf("second: args=%q m=%d err=%v", args, m, err)
	}
	// Every strict prefix is incomplete, never an error.
	for i := range len(buf) - m {
		if _, k, err := ParseCommand(buf[:i], args, 100); k != 0 || err != nil {
			t.Fatalf("prefix %d: k=%d err=%v", i, k, err)
		}
	}
}

func TestParseCommandErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"PUBLISH a b\r\n", ErrProtocol},
		{"*0\r\n", ErrProtocol},
		{"*99\r\n", ErrProtocol},
		{"*1\r\n+x\r\n", ErrProtocol},
		{"*1\r\n$-1\r\n", ErrProtocol},
		{"*1\r\n$3\r\nabcde", ErrProtocol},
		{"*1\r\n$1000\r\n", ErrTooLong},
	}
	for _, tt := range tests {
		if _, _, err := ParseCommand([]byte(tt.in), nil, 100); !errors.Is(err, tt.want) {
			t.Errorf("%q: err = %v, want %v", tt.in, err, tt.want)
		}
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		in      string
		kind    byte
		v       int64
		text    string
		n       int
		wantErr bool
	}{
		{":100\r\n", ':', 100, "100", 6, false},
		{":-1\r\n:2\r\n", ':', -1, "-1", 5, false},
		{"-ERR no such topic\r\n", '-', 0, "ERR no such topic", 20, false},
		{"+OK\r\n", '+', 0, "OK", 5, false},
		{":12", 0, 0, "", 0, false},
		{":x\r\n", 0, 0, "", 0, true},
		{"$3\r\nabc\r\n", 0, 0, "", 0, true},
	}
	for _, tt := range tests {
		r, n, err := ParseReply([]byte(tt.in))
		if (err != nil) != tt.wantErr || n != tt.n {
			t.Errorf("%q: n=%d err=%v", tt.in, n, err)
			continue
		}
		if n > 0 && (r.Kind != tt.kind || r.Int != tt.v || string(r.Text) != tt.text) {
			t.Errorf("%q: got %+v", tt.in, r)
		}
	}
}

func TestAppendReplies(t *testing.T) {
	if got := string(AppendError(AppendInt(nil, 42), "x")); got != ":42\r\n-ERR x\r\n" {
		t.Fatalf("got %q", got)
	}
}

var sink []byte

func BenchmarkAppendPublish(b *testing.B) {
	topic, payload := []byte("bench.0"), make([]byte, 150)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPublish(buf[:0], topic, payload)
	}
	sink = buf
}

// FuzzParseCommand feeds each input whole and in two halves: the half must
// be incomplete or parse to the same command.
func FuzzParseCommand(f *testing.F) {
	f.Add(AppendPublish(nil, []byte("t"), []byte(`{"seq":1}`)))
	f.Add([]byte("*2\r\n$1\r\na\r\n$0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		args, n, err := ParseCommand(b, nil, 1<<10)
		if err != nil || n == 0 {
			return
		}
		if n > len(b) || len(args) > MaxArgs {
			t.Fatalf("n=%d len=%d args=%d", n, len(b), len(args))
		}
		half := b[:len(b)/2]
		args2, n2, err2 := ParseCommand(half, nil, 1<<10)
		if err2 != nil || (n2 != 0 && (n2 != n || len(args2) != len(args))) {
			t.Fatalf("half: n2=%d err=%v (whole n=%d)", n2, err2, n)
		}
	})
}
