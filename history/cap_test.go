package history

import (
	"fmt"
	"testing"
	"time"
)

// TestEmptyStreamsCannotPushOutHistory: streams that never had an event
// (opened by resumes on topics nobody publishes to: any client can open
// one per topic name it makes up) count against the cap as soon as they
// are opened, and go before anything else: a flood of them neither grows
// the store past its cap nor trims the history of the streams that have
// events, nor drops a stream whose events expired (clients hold
// positions in it).
func TestEmptyStreamsCannotPushOutHistory(t *testing.T) {
	const max = 1 << 20
	st := New(max)
	sp := Spec{Size: 100_000, TTL: time.Hour}
	for i := 0; i < 500; i++ {
		st.Append([]byte("real"), sp, payload(i, 1000), 1)
	}
	real := st.Lookup([]byte("real"))
	quiet, _ := st.Append([]byte("quiet"), Spec{Size: 10, TTL: time.Second}, payload(0, 10), 1)
	st.ExpireStream(quiet, int64(2*time.Second)) // retains nothing, last 1
	for i := 0; i < 20_000; i++ {                // about 5 MB of stream overhead
		s := st.Open(fmt.Sprintf("made.up.%d", i), sp, 1)
		if s.Removed() || st.Lookup([]byte(s.Topic())) != s {
			t.Fatalf("the stream just opened (%d) is gone", i)
		}
		if b := st.Stats().Bytes; b > max {
			t.Fatalf("after %d empty streams the store holds %d bytes, over its cap %d", i+1, b, max)
		}
	}
	st.Append([]byte("real"), sp, payload(500, 1000), 1)
	if real.Removed() || real.First() != 1 || real.Len() != 501 || st.Stats().Trimmed != 0 {
		t.Fatalf("the real stream lost history: first %d len %d (trimmed %d)", real.First(), real.Len(), st.Stats().Trimmed)
	}
	if quiet.Removed() || quiet.Len() != 0 || quiet.Last() != 1 {
		t.Fatalf("the quiet stream: removed %v len %d last %d", quiet.Removed(), quiet.Len(), quiet.Last())
	}
	if n := st.Stats().Streams; n > max/streamOverhead {
		t.Fatalf("%d streams kept", n)
	}
}
