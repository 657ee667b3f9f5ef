package history

import "testing"

// TestDropForgetsTheStream: after Drop the topic has no stream (a resume
// to it cannot be served), its bytes leave the store's count, the handle
// reads as removed, and a later event starts a new epoch.
func TestDropForgetsTheStream(t *testing.T) {
	st := New(0)
	s, pos := st.Append([]byte("t"), spec, payload(1, 100), 1)
	st.Append([]byte("u"), spec, payload(1, 100), 1)
	before := st.Stats().Bytes
	st.Drop("t")
	st.Drop("t")       // twice is a no-op
	st.Drop("missing") // so is an unknown topic
	if st.Lookup([]byte("t")) != nil || !s.Removed() {
		t.Fatal("the dropped stream is still there")
	}
	if after := st.Stats().Bytes; after >= before || after <= 0 {
		t.Fatalf("bytes %d after Drop, %d before: want only t's gone", after, before)
	}
	s2, pos2 := st.Append([]byte("t"), spec, payload(2, 100), 2)
	if s2 == s || pos2.Offset != 1 || pos2.Epoch == pos.Epoch {
		t.Fatalf("after Drop the next event is at %+v (was %+v), want offset 1 in a new epoch", pos2, pos)
	}
}
