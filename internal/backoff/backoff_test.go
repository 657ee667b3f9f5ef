package backoff

import (
	"testing"
	"time"
)

// TestBackoffGrowsCapsAndResets: the first wait is within [Min/2, Min],
// waits double up to Max and stay within [Max/2, Max], and Reset starts
// over from Min.
func TestBackoffGrowsCapsAndResets(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 10 * time.Second
	b := Backoff{Min: lo, Max: hi}
	in := func(what string, w, from, to time.Duration) {
		t.Helper()
		if w < from || w > to {
			t.Fatalf("%s: wait %s, want %s..%s", what, w, from, to)
		}
	}
	in("first", b.Next(), lo/2, lo)
	in("second", b.Next(), lo, 2*lo)
	for range 10 {
		b.Next()
	}
	in("after 12 failures", b.Next(), hi/2, hi)
	b.Reset()
	in("after Reset", b.Next(), lo/2, lo)
}

// TestBackoffJitters: waits of one step are spread, not all equal, so
// nodes that lost a peer together do not come back in step.
func TestBackoffJitters(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 50 {
		b := Backoff{Min: time.Second, Max: time.Second}
		seen[b.Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 first waits took only %d distinct values", len(seen))
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(make(chan struct{}), time.Millisecond) {
		t.Fatal("Sleep with an open done reported an interrupted wait")
	}
	done := make(chan struct{})
	close(done)
	start := time.Now()
	if Sleep(done, time.Hour) {
		t.Fatal("Sleep with a closed done reported a whole wait")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Sleep with a closed done took %s", d)
	}
}
