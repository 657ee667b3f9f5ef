package history

import (
	"bytes"
	"fmt"
	"testing"
)

// readAll returns the retained payloads of s, oldest first, checking
// that Read serves exactly [First, Last].
func readAll(t *testing.T, s *Stream) []string {
	t.Helper()
	var out []string
	for off := s.First(); off <= s.Last(); off++ {
		p, ok := s.Read(off, new([]byte))
		if !ok {
			t.Fatalf("offset %d in [%d, %d] not readable", off, s.First(), s.Last())
		}
		out = append(out, string(p))
	}
	if s.Len() != len(out) {
		t.Fatalf("Len %d, read %d", s.Len(), len(out))
	}
	return out
}

func ev(i int) []byte { return fmt.Appendf(nil, `{"i":%d}`, i) }

func want(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, string(ev(i)))
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFillPrependsTheOlderEvents: a stream holding 51-60 (what the node
// received live) gets 41-60 read elsewhere staged and merged: it holds
// 41-60 in order, the same handle, the older events read back right, and
// its bytes are counted.
func TestFillPrependsTheOlderEvents(t *testing.T) {
	st := New(0)
	var s *Stream
	for i := 51; i <= 60; i++ {
		s, _ = st.AppendAt([]byte("t"), spec, ev(i), Position{Offset: uint64(i), Epoch: "E"}, 1)
	}
	before := st.Stats().Bytes
	for i := 41; i <= 60; i++ {
		st.Stage([]byte("t"), spec, ev(i), Position{Offset: uint64(i), Epoch: "E"}, 2)
	}
	got := st.Fill("t", spec, Position{Offset: 60, Epoch: "E"}, 3)
	if got != s {
		t.Fatal("Fill replaced the stream's handle (a replay holding it would be lost)")
	}
	if s.First() != 41 || s.Last() != 60 || !equal(readAll(t, s), want(41, 60)) {
		t.Fatalf("after the fill [%d, %d] %v", s.First(), s.Last(), readAll(t, s))
	}
	if after := st.Stats().Bytes; after <= before {
		t.Fatalf("bytes %d after the fill, %d before", after, before)
	}
	if st.stagedBytes != 0 || len(st.staged) != 0 {
		t.Fatalf("the stage was not released: %d bytes", st.stagedBytes)
	}
	// Later live events continue the merged stream.
	st.AppendAt([]byte("t"), spec, ev(61), Position{Offset: 61, Epoch: "E"}, 4)
	if !equal(readAll(t, s), want(41, 61)) {
		t.Fatal("the next live event does not follow the merged stream")
	}
}

// TestFillWithoutALocalStream: a node with no history of the topic (or
// one in another epoch, or behind the authority) takes the staged events
// up to the live position, in the live epoch; later live events follow.
func TestFillWithoutALocalStream(t *testing.T) {
	for _, name := range []string{"none", "other epoch", "placeholder"} {
		t.Run(name, func(t *testing.T) {
			st := New(0)
			switch name {
			case "other epoch":
				st.AppendAt([]byte("t"), spec, ev(1), Position{Offset: 1, Epoch: "OLD"}, 1)
			case "placeholder": // what a resume opens: a local epoch, nothing retained
				st.Open("t", spec, 1)
			}
			for i := 5; i <= 9; i++ {
				st.Stage([]byte("t"), spec, ev(i), Position{Offset: uint64(i), Epoch: "E"}, 2)
			}
			s := st.Fill("t", spec, Position{Offset: 9, Epoch: "E"}, 3)
			if s.Epoch() != "E" || s.First() != 5 || s.Last() != 9 || !equal(readAll(t, s), want(5, 9)) {
				t.Fatalf("after the fill %q [%d, %d]", s.Epoch(), s.First(), s.Last())
			}
		})
	}
}

// TestFillNeverLeavesAHole: staged events that do not reach the stream's
// oldest retained one are not merged (the stream stays as it was), and
// an empty stage leaves a stream behind the authority empty at the live
// position, so a resume before it is refused.
func TestFillNeverLeavesAHole(t *testing.T) {
	st := New(0)
	for i := 51; i <= 60; i++ {
		st.AppendAt([]byte("t"), spec, ev(i), Position{Offset: uint64(i), Epoch: "E"}, 1)
	}
	for i := 41; i <= 45; i++ { // 46-50 missing
		st.Stage([]byte("t"), spec, ev(i), Position{Offset: uint64(i), Epoch: "E"}, 2)
	}
	s := st.Fill("t", spec, Position{Offset: 60, Epoch: "E"}, 3)
	if s.First() != 51 || !equal(readAll(t, s), want(51, 60)) {
		t.Fatalf("a stage with a hole was merged: [%d, %d]", s.First(), s.Last())
	}
	s = st.Fill("u", spec, Position{Offset: 7, Epoch: "E"}, 3)
	if s.First() != 8 || s.Last() != 7 || s.Len() != 0 {
		t.Fatalf("an empty fill: [%d, %d] %d retained, want nothing at 8", s.First(), s.Last(), s.Len())
	}
	if _, why := s.ResumeFrom(Position{Offset: 3, Epoch: "E"}); why != Trimmed {
		t.Fatalf("resume before an empty fill: %q, want trimmed", why)
	}
	if s := st.Fill("v", spec, Position{}, 3); s != nil {
		t.Fatal("a fill with no epoch at the authority opened a stream")
	}
}

// TestStageStartsOverOnAGapOrANewEpoch and ignores an offset it has.
func TestStageStartsOverOnAGapOrANewEpoch(t *testing.T) {
	st := New(0)
	stage := func(off int, epoch string) {
		st.Stage([]byte("t"), spec, ev(off), Position{Offset: uint64(off), Epoch: epoch}, 1)
	}
	stage(1, "E")
	stage(2, "E")
	stage(2, "E") // a read retried: ignored
	stage(5, "E") // a gap: only 5 on
	stage(6, "E")
	s := st.Fill("t", spec, Position{Offset: 6, Epoch: "E"}, 2)
	if s.First() != 5 || !equal(readAll(t, s), want(5, 6)) {
		t.Fatalf("after a gap in the stage: [%d, %d]", s.First(), s.Last())
	}
	stage(1, "E")
	stage(1, "F") // a new epoch
	stage(2, "F")
	s = st.Fill("t", spec, Position{Offset: 2, Epoch: "F"}, 3)
	if s.Epoch() != "F" || !equal(readAll(t, s), want(1, 2)) {
		t.Fatalf("after a new epoch in the stage: %q [%d, %d]", s.Epoch(), s.First(), s.Last())
	}
}

// TestFillKeepsTheSizeAndTheTTLOrder: the merged stream keeps its newest
// spec.Size events, and the staged events are recorded no later than the
// stream's oldest, so the TTL drops them first.
func TestFillKeepsTheSizeAndTheTTLOrder(t *testing.T) {
	small := Spec{Size: 10, TTL: spec.TTL}
	st := New(0)
	for i := 11; i <= 15; i++ {
		st.AppendAt([]byte("t"), small, ev(i), Position{Offset: uint64(i), Epoch: "E"}, 100)
	}
	for i := 1; i <= 15; i++ {
		st.Stage([]byte("t"), small, ev(i), Position{Offset: uint64(i), Epoch: "E"}, 500)
	}
	s := st.Fill("t", small, Position{Offset: 15, Epoch: "E"}, 500)
	if s.First() != 6 || !equal(readAll(t, s), want(6, 15)) {
		t.Fatalf("after the fill [%d, %d], want the newest 10: 6-15", s.First(), s.Last())
	}
	st.ExpireStream(s, 100+int64(small.TTL)) // the live ones' age: all go
	if s.Len() != 0 {
		t.Fatalf("%d events outlived the TTL of the oldest live one", s.Len())
	}
}

// TestStageIsCapped: staged events count against half the cap; past it
// the stage is dropped and its Fill merges nothing.
func TestStageIsCapped(t *testing.T) {
	st := New(64 << 10)
	big := Spec{Size: 1000, TTL: spec.TTL}
	p := bytes.Repeat([]byte("x"), 1000)
	for i := 1; i <= 100; i++ {
		st.Stage([]byte("t"), big, p, Position{Offset: uint64(i), Epoch: "E"}, 1)
	}
	if st.stagedBytes > 32<<10 {
		t.Fatalf("staged %d bytes, cap/2 is %d", st.stagedBytes, 32<<10)
	}
	s := st.Fill("t", big, Position{Offset: 100, Epoch: "E"}, 2)
	if s.Len() != 0 || s.First() != 101 {
		t.Fatalf("an overflowed stage merged [%d, %d]", s.First(), s.Last())
	}
	if st.stagedBytes != 0 {
		t.Fatalf("%d staged bytes left", st.stagedBytes)
	}
}

// TestResetRecordsALoss: after Reset the stream retains nothing, continues
// at the given position, refuses a resume from before it and keeps its
// handle.
func TestResetRecordsALoss(t *testing.T) {
	st := New(0)
	var s *Stream
	for i := 1; i <= 5; i++ {
		s, _ = st.AppendAt([]byte("t"), spec, ev(i), Position{Offset: uint64(i), Epoch: "E"}, 1)
	}
	if got := st.Reset([]byte("t"), Position{Offset: 9, Epoch: "E"}); got != s {
		t.Fatal("Reset replaced the handle")
	}
	if s.Len() != 0 || s.First() != 9 || s.Last() != 8 {
		t.Fatalf("after Reset [%d, %d] %d", s.First(), s.Last(), s.Len())
	}
	if _, why := s.ResumeFrom(Position{Offset: 5, Epoch: "E"}); why != Trimmed {
		t.Fatalf("resume across the loss: %q, want trimmed", why)
	}
	st.AppendAt([]byte("t"), spec, ev(9), Position{Offset: 9, Epoch: "E"}, 2)
	if !equal(readAll(t, s), want(9, 9)) {
		t.Fatal("the next event does not follow the reset")
	}
	if st.Reset([]byte("none"), Position{Offset: 1, Epoch: "E"}) != nil {
		t.Fatal("Reset opened a stream")
	}
}
