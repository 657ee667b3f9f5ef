package jsonx

import (
	"encoding/json"
	"testing"
)

// TestAppendStringRoundTrips: what AppendString writes decodes (with
// encoding/json) to what encoding/json's own encoding decodes to.
func TestAppendStringRoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "ctl\x00\x1f\n\t\r", "utf8 ✓", "bad \xff utf8"} {
		var got string
		if err := json.Unmarshal(AppendString(nil, s), &got); err != nil {
			t.Fatalf("%q: invalid JSON: %v", s, err)
		}
		want, _ := json.Marshal(s)
		var w string
		_ = json.Unmarshal(want, &w)
		if got != w {
			t.Errorf("%q round-trips to %q, want %q", s, got, w)
		}
	}
	// The wire bytes of line separators: escaped, as encoding/json does.
	if got := string(AppendString(nil, "a\u2028b\u2029")); got != `"a\u2028b\u2029"` {
		t.Errorf("line separators encoded as %s", got)
	}
}
