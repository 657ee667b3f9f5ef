package pace

import (
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	start := time.Unix(1000, 0)
	p := New(1000, 5000, start) // 1 event per ms
	tests := []struct {
		after time.Duration
		want  int64
	}{
		{-time.Millisecond, 0},
		{0, 1},
		{999 * time.Microsecond, 1},
		{time.Millisecond, 2},
		{10*time.Millisecond + 500*time.Microsecond, 11},
		{time.Second, 1001},
		{time.Hour, 5000},
	}
	for _, tt := range tests {
		if got := p.Due(start.Add(tt.after)); got != tt.want {
			t.Errorf("Due(+%v) = %d, want %d", tt.after, got, tt.want)
		}
	}
}

func TestAtInvertsDue(t *testing.T) {
	start := time.Unix(0, 0)
	for _, rate := range []float64{1, 7, 1000, 33333, 2e6} {
		p := New(rate, 1<<40, start)
		for _, i := range []int64{0, 1, 2, 999, 123457} {
			at := p.At(i)
			// At event i's due time, events 0..i are due (within rounding of one).
			if d := p.Due(at.Add(time.Nanosecond)); d < i+1 || d > i+2 {
				t.Errorf("rate %v: Due(At(%d)) = %d", rate, i, d)
			}
			if p.Lag(i, at) != 0 {
				t.Errorf("rate %v: Lag at due time = %v", rate, p.Lag(i, at))
			}
		}
	}
}

func TestBatchesKeepTheRate(t *testing.T) {
	// Waking up every 3.3 ms for 2 s must send exactly the events due, with
	// no drift, whatever the wake-up pattern.
	start := time.Unix(0, 0)
	p := New(5000, 1<<40, start)
	var sent int64
	for now := start; now.Sub(start) < 2*time.Second; now = now.Add(3300 * time.Microsecond) {
		sent = max(sent, p.Due(now))
	}
	if sent < 9990 || sent > 10001 {
		t.Fatalf("sent %d in 2 s at 5000/s", sent)
	}
}

func TestNonPositiveRatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(0, ...) must panic")
		}
	}()
	New(0, 1, time.Now())
}
