package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestRefusalLogThrottlesPerKind: within one interval a kind is logged
// once and the rest are counted; another kind is logged at once.
func TestRefusalLogThrottlesPerKind(t *testing.T) {
	var buf bytes.Buffer
	r := newRefusalLog(slog.New(slog.NewTextHandler(&buf, nil)))
	for range 100 {
		r.note("origin", "127.0.0.1:1", "origin not allowed: x", "add it to --allowed-origins")
	}
	r.note("auth", "127.0.0.1:2", "no token", "send one")
	out := buf.String()
	if n := strings.Count(out, "kind=origin"); n != 1 {
		t.Fatalf("%d origin lines for a flood in one interval, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "kind=auth") {
		t.Fatalf("another kind was throttled too:\n%s", out)
	}
	r.kinds["origin"].last = r.kinds["origin"].last.Add(-refusalLogEvery) // the interval passes
	r.note("origin", "127.0.0.1:1", "origin not allowed: x", "add it to --allowed-origins")
	if !strings.Contains(buf.String(), "suppressed_since_last=99") {
		t.Fatalf("the next line does not count the 99 suppressed:\n%s", buf.String())
	}
}
