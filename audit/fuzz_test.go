package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzAppendJSON checks that any field text yields exactly one line of
// valid JSON that decodes back to the text (each invalid UTF-8 byte replaced).
func FuzzAppendJSON(f *testing.F) {
	f.Add("auth.failed", "192.0.2.1:1", "expired", "Orders", uint64(7), int64(0))
	f.Add("x\"}\n{\"event\":\"auth.ok\"", "\x00\x1f\x7f", "bad\xff\xfe", "\u2028\u2029", uint64(0), int64(-1))
	f.Fuzz(func(t *testing.T, event, remote, reason, op string, conn uint64, unix int64) {
		r := Record{Time: time.Unix(unix%(1<<35), 0), Event: event, Remote: remote, Reason: reason, Operation: op, ConnID: conn}
		line := r.AppendJSON(nil)
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' || bytes.ContainsAny(line, "\r\u2028\u2029") {
			t.Fatalf("not one line: %q", line)
		}
		var got struct {
			Time                             string
			Event, Remote, Reason, Operation string
			ConnID                           uint64 `json:"conn_id"`
		}
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("invalid JSON %q: %v", line, err)
		}
		want := []string{event, remote, reason, op}
		for i, g := range []string{got.Event, got.Remote, got.Reason, got.Operation} {
			if w := string([]rune(want[i])); g != w { // each invalid byte becomes U+FFFD
				t.Fatalf("field %d = %q, want %q", i, g, w)
			}
		}
		if got.ConnID != conn {
			t.Fatalf("conn_id = %d, want %d", got.ConnID, conn)
		}
	})
}
