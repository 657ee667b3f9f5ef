package history

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"regexp"
	"runtime"
	"testing"
	"time"
)

var spec = Spec{Size: 100, TTL: time.Minute}

func payload(i, n int) []byte {
	b := bytes.Repeat([]byte{'a' + byte(i%26)}, n)
	copy(b, fmt.Sprintf("%d:", i))
	return b
}

func TestOffsetsAreContiguousAndReadBack(t *testing.T) {
	st := New(0)
	rng := rand.New(rand.NewPCG(1, 2))
	var want [][]byte
	var s *Stream
	for i := 1; i <= 100; i++ {
		p := payload(i, 1+rng.IntN(3000)) // spans chunks now and then
		var pos Position
		s, pos = st.Append([]byte("t"), spec, p, 1)
		if pos.Offset != uint64(i) || pos.Epoch != s.Epoch() {
			t.Fatalf("event %d got %+v", i, pos)
		}
		want = append(want, p)
	}
	for i, p := range want {
		got, ok := s.Read(uint64(i+1), new([]byte))
		if !ok || !bytes.Equal(got, p) {
			t.Fatalf("offset %d: ok=%v len %d, want len %d", i+1, ok, len(got), len(p))
		}
	}
	if _, ok := s.Read(0, new([]byte)); ok {
		t.Fatal("offset 0 read")
	}
	if _, ok := s.Read(101, new([]byte)); ok {
		t.Fatal("offset past last read")
	}
}

func TestEpochIsRandomAlphanumeric(t *testing.T) {
	re := regexp.MustCompile(`^[0-9A-Za-z]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		e := NewEpoch()
		if !re.MatchString(e) || seen[e] {
			t.Fatalf("epoch %q (seen before: %v)", e, seen[e])
		}
		seen[e] = true
		if !ValidEpoch(e) {
			t.Fatalf("%q not valid", e)
		}
	}
	for _, bad := range []string{"", "a b", `a"`, "é", string(bytes.Repeat([]byte("a"), MaxEpochLen+1))} {
		if ValidEpoch(bad) {
			t.Fatalf("%q valid", bad)
		}
	}
}

func TestSizeKeepsTheNewest(t *testing.T) {
	st := New(0)
	var s *Stream
	for i := 1; i <= 250; i++ {
		s, _ = st.Append([]byte("t"), Spec{Size: 10, TTL: time.Minute}, payload(i, 100), 1)
	}
	if s.First() != 241 || s.Last() != 250 || s.Len() != 10 {
		t.Fatalf("first %d last %d len %d", s.First(), s.Last(), s.Len())
	}
	got, _ := s.Read(241, new([]byte))
	if !bytes.Equal(got, payload(241, 100)) {
		t.Fatalf("offset 241 = %q", got)
	}
}

func TestTTLExpiresAndStreamIsDroppedLater(t *testing.T) {
	st := New(0)
	sp := Spec{Size: 10, TTL: time.Second}
	s, _ := st.Append([]byte("t"), sp, []byte("{}"), 0)
	st.Append([]byte("t"), sp, []byte("{}"), int64(500*time.Millisecond))
	st.ExpireStream(s, int64(1200*time.Millisecond))
	if s.First() != 2 || s.Last() != 2 {
		t.Fatalf("after the first expired: first %d last %d", s.First(), s.Last())
	}
	if from, why := s.ResumeFrom(Position{Offset: 0, Epoch: s.Epoch()}); why != "" || from != 2 {
		t.Fatalf("resume from 0: %d %q", from, why)
	}
	if _, why := s.ResumeFrom(Position{Offset: 0 + 0, Epoch: "other"}); why != EpochChanged {
		t.Fatalf("other epoch: %q", why)
	}
	st.Expire(int64(2 * time.Second))
	if s.Len() != 0 || s.First() != 3 || s.Removed() {
		t.Fatalf("after all expired: len %d first %d removed %v", s.Len(), s.First(), s.Removed())
	}
	if _, why := s.ResumeFrom(Position{Offset: 1, Epoch: s.Epoch()}); why != Trimmed {
		t.Fatalf("expired position: %q", why)
	}
	if from, why := s.ResumeFrom(Position{Offset: 2, Epoch: s.Epoch()}); why != "" || from != 3 {
		t.Fatalf("up-to-date position: %d %q", from, why)
	}
	st.Expire(int64(3 * time.Second))
	if !s.Removed() || st.Lookup([]byte("t")) != nil || st.Stats().Bytes != 0 {
		t.Fatalf("stream idle for 2 TTLs kept: removed %v bytes %d", s.Removed(), st.Stats().Bytes)
	}
	if _, why := s.ResumeFrom(Position{Offset: 2, Epoch: s.Epoch()}); why != EpochChanged {
		t.Fatalf("dropped stream: %q", why)
	}
}

func TestResumeFrom(t *testing.T) {
	st := New(0)
	var s *Stream
	for i := 1; i <= 20; i++ {
		s, _ = st.Append([]byte("t"), Spec{Size: 10, TTL: time.Minute}, []byte("{}"), 1)
	}
	e := s.Epoch()
	for _, c := range []struct {
		pos  Position
		from uint64
		why  Reason
	}{
		{Position{0, e}, 11, ""},
		{Position{10, e}, 11, ""},
		{Position{15, e}, 16, ""},
		{Position{20, e}, 21, ""},
		{Position{9, e}, 0, Trimmed},
		{Position{21, e}, 0, Ahead},
		{Position{15, "x"}, 0, EpochChanged},
	} {
		from, why := s.ResumeFrom(c.pos)
		if from != c.from || why != c.why {
			t.Errorf("%+v: got %d %q, want %d %q", c.pos, from, why, c.from, c.why)
		}
	}
}

func TestByteCapTrimsTheLargestFirst(t *testing.T) {
	const max = 1 << 20
	st := New(max)
	sp := Spec{Size: 100_000, TTL: time.Hour}
	for i := 0; i < 100; i++ {
		st.Append([]byte("small"), sp, payload(i, 100), 1)
	}
	for i := 0; i < 2000; i++ {
		st.Append([]byte("big"), sp, payload(i, 1000), 1)
		if st.Stats().Bytes > max {
			t.Fatalf("over the cap: %d", st.Stats().Bytes)
		}
	}
	small, big := st.Lookup([]byte("small")), st.Lookup([]byte("big"))
	if small.Len() != 100 || small.First() != 1 {
		t.Fatalf("the small stream was trimmed: len %d", small.Len())
	}
	if big.Last() != 2000 || big.First() == 1 || st.Stats().Trimmed == 0 {
		t.Fatalf("big: first %d last %d trimmed %d", big.First(), big.Last(), st.Stats().Trimmed)
	}
	got, ok := big.Read(big.First(), new([]byte))
	if !ok || !bytes.Equal(got, payload(int(big.First()-1), 1000)) {
		t.Fatal("oldest retained of big reads wrong")
	}
}

func TestAppendAt(t *testing.T) {
	st := New(0)
	sp := Spec{Size: 10, TTL: time.Minute}
	s, ok := st.AppendAt([]byte("t"), sp, []byte("a"), Position{Offset: 5, Epoch: "E1"}, 1)
	if !ok || s.Epoch() != "E1" || s.First() != 5 || s.Last() != 5 {
		t.Fatalf("first external: %v %s %d %d", ok, s.Epoch(), s.First(), s.Last())
	}
	if _, ok := st.AppendAt([]byte("t"), sp, []byte("b"), Position{Offset: 6, Epoch: "E1"}, 1); !ok {
		t.Fatal("next offset refused")
	}
	if _, ok := st.AppendAt([]byte("t"), sp, []byte("dup"), Position{Offset: 6, Epoch: "E1"}, 1); ok {
		t.Fatal("duplicate recorded")
	}
	st.AppendAt([]byte("t"), sp, []byte("c"), Position{Offset: 9, Epoch: "E1"}, 1)
	if s.First() != 9 || s.Last() != 9 {
		t.Fatalf("after a gap: first %d last %d", s.First(), s.Last())
	}
	st.AppendAt([]byte("t"), sp, []byte("d"), Position{Offset: 1, Epoch: "E2"}, 1)
	if s.Epoch() != "E2" || s.First() != 1 || s.Last() != 1 {
		t.Fatalf("new epoch: %s %d %d", s.Epoch(), s.First(), s.Last())
	}
	if got, _ := s.Read(1, new([]byte)); string(got) != "d" {
		t.Fatalf("read %q", got)
	}
	if s.AppendExt(nil, 7); string(s.AppendExt(nil, 7)) != `,"extensions":{"fraised":{"offset":7,"epoch":"E2"}}}` {
		t.Fatalf("ext %s", s.AppendExt(nil, 7))
	}
}

func TestSpecCheck(t *testing.T) {
	for _, c := range []struct {
		s  Spec
		ok bool
	}{
		{Spec{1, time.Second}, true},
		{Spec{MaxSize, MaxTTL}, true},
		{Spec{0, time.Minute}, false},
		{Spec{MaxSize + 1, time.Minute}, false},
		{Spec{10, time.Second - 1}, false},
		{Spec{10, MaxTTL + 1}, false},
	} {
		if err := c.s.Check(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.s, err)
		}
	}
}

// TestMemoryPerRetainedEvent checks the bound: a retained event
// costs its payload plus at most 64 bytes, measured on the heap with
// full streams of several payload sizes.
func TestMemoryPerRetainedEvent(t *testing.T) {
	for _, size := range []int{100, 1000, 1024, 3000} {
		over := overheadPerEvent(size, 30, 1000)
		t.Logf("payload %d B: %.1f B per retained event besides the payload", size, over)
		if over > 64 {
			t.Errorf("payload %d B: %.1f B overhead per event, want <= 64", size, over)
		}
	}
}

// overheadPerEvent fills topics streams of size events of n bytes (twice
// over, so each is full and has trimmed) and returns the heap bytes per
// retained event minus n.
func overheadPerEvent(n, topics, size int) float64 {
	p := payload(1, n)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	st := New(1 << 40)
	sp := Spec{Size: size, TTL: time.Hour}
	for tp := 0; tp < topics; tp++ {
		topic := []byte(fmt.Sprintf("topic.%d", tp))
		for i := 0; i < 2*size; i++ {
			st.Append(topic, sp, p, 1)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(st)
	events := float64(topics * size)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/events - float64(n)
}

func BenchmarkAppend(b *testing.B) {
	st := New(0)
	p := payload(1, 100)
	topic := []byte("bench")
	sp := Spec{Size: 1000, TTL: time.Hour}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for i := 0; b.Loop(); i++ {
		st.Append(topic, sp, p, int64(i))
	}
}
