package codec

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// TestAppendCloseReasonIsUTF8: a close reason is always valid UTF-8 and at
// most MaxCloseReason bytes, cut on a character boundary: a browser fails
// the connection (1006) on an invalid reason instead of reporting the code.
func TestAppendCloseReasonIsUTF8(t *testing.T) {
	for _, tt := range []struct{ reason, want string }{
		{"short", "short"},
		{strings.Repeat("a", 200), strings.Repeat("a", MaxCloseReason)},
		{strings.Repeat("€", 50), strings.Repeat("€", 41)},             // 123 = 41 × 3
		{"x" + strings.Repeat("€", 50), "x" + strings.Repeat("€", 40)}, // 123 bytes end inside a €
		{"bad \xff byte", "bad \uFFFD byte"},
	} {
		f := AppendClose(nil, 4409, tt.reason)
		h, n, err := ParseHeader(f)
		if err != nil || h.OpCode != ws.OpClose || int(h.Length) != len(f)-n {
			t.Fatalf("AppendClose(%q) is not one close frame: %v", tt.reason, err)
		}
		code, got := ws.ParseCloseFrameData(f[n:])
		if code != 4409 || got != tt.want || !utf8.ValidString(got) {
			t.Fatalf("AppendClose(%q): %d %q, want 4409 %q", tt.reason, code, got, tt.want)
		}
	}
}
