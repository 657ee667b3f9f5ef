package resp

import (
	"math"
	"testing"
)

func TestAppend(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"int", AppendInt(nil, 3), ":3\r\n"},
		{"int negative", AppendInt(nil, -42), ":-42\r\n"},
		{"int min", AppendInt(nil, math.MinInt64), ":-9223372036854775808\r\n"},
		{"error", AppendError(nil, "ERR unknown command"), "-ERR unknown command\r\n"},
		{"error with dash", AppendError(nil, "-WRONGTYPE bad"), "-WRONGTYPE bad\r\n"},
		{"error newlines", AppendError(nil, "ERR a\r\nb\nc"), "-ERR a  b c\r\n"},
		{"error empty", AppendError(nil, ""), "-ERR\r\n"},
		{"error from parser", AppendError(nil, errBulkLen.Error()), "-ERR Protocol error: invalid bulk length\r\n"},
		{"simple", AppendSimple(nil, "PONG"), "+PONG\r\n"},
		{"simple newlines", AppendSimple(nil, "O\nK"), "+O K\r\n"},
		{"bulk", AppendBulk(nil, []byte("a\r\nb")), "$4\r\na\r\nb\r\n"},
		{"bulk nil", AppendBulk(nil, nil), "$0\r\n\r\n"},
		{"array", AppendArray(nil, []byte("PUBLISH"), []byte("t"), []byte("{}")),
			"*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$2\r\n{}\r\n"},
		{"array empty", AppendArray(nil), "*0\r\n"},
		{"appends", AppendSimple([]byte("+OK\r\n"), "PONG"), "+OK\r\n+PONG\r\n"},
	}
	for _, tt := range tests {
		if string(tt.got) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestAppendArrayRoundTrip checks that the parser reads back what
// AppendArray writes, whatever the bytes.
func TestAppendArrayRoundTrip(t *testing.T) {
	args := [][]byte{[]byte("PUBLISH"), []byte("a b\r\n\"'"), {}, {0, 255}}
	var p Parser
	got, n, err := p.Next(AppendArray(nil, args...))
	if err != nil || event(got, nil) != event(args, nil) {
		t.Fatalf("Next(AppendArray(%q)) = %q, %d, %v", args, got, n, err)
	}
}
