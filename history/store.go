package history

import (
	"container/heap"
	"unsafe"
)

// DefaultMaxBytes is the default global cap (--history-max-bytes): 128
// MiB of retained events across all topics, a few seconds of heavy
// traffic or minutes of ordinary traffic, small beside the outbound
// budget.
const DefaultMaxBytes = 128 << 20

// trimSlack is the fraction of the cap freed at once when the cap is
// passed (1/16): trimming scans the streams, so it runs once per this
// much traffic instead of at every event.
const trimSlack = 16

// Store is the history of every topic that keeps one. The zero value is
// not usable; call New. Owned by one goroutine; not safe for concurrent
// use.
type Store struct {
	streams  map[string]*Stream
	maxBytes int64
	bytes    int64
	trimmed  uint64 // entries dropped by the byte cap
	scratch  streamHeap
	newEpoch func() string

	// Fills in progress (fill.go): events read elsewhere, by topic, not
	// yet merged; their bytes; topics whose stage overflowed.
	staged      map[string]*Stream
	stagedBytes int64
	stagedOver  map[string]bool
}

// New returns an empty store holding at most maxBytes (payloads,
// entries, chunks' unused room and per-stream overhead); maxBytes <= 0
// means DefaultMaxBytes.
func New(maxBytes int64) *Store {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Store{streams: map[string]*Stream{}, maxBytes: maxBytes, newEpoch: NewEpoch}
}

// Lookup returns the stream of topic, or nil. It does not allocate.
func (st *Store) Lookup(topic []byte) *Stream {
	return st.streams[unsafe.String(unsafe.SliceData(topic), len(topic))]
}

// Open returns the stream of topic, creating an empty one with a new
// epoch (first 1, last 0) when there is none. A new stream counts
// against the cap at once (a resume opens one for any topic a client
// names), and may make room by dropping other streams that never had an
// event (trim).
func (st *Store) Open(topic string, spec Spec, now int64) *Stream {
	return st.OpenAt(topic, spec, "", now)
}

// OpenAt is Open with the epoch a new stream starts in: one assigned
// elsewhere (a clustered source's, for RecordAt), or a new one when
// epoch is empty.
func (st *Store) OpenAt(topic string, spec Spec, epoch string, now int64) *Stream {
	if s := st.streams[topic]; s != nil {
		return s
	}
	if epoch == "" {
		epoch = st.newEpoch()
	}
	return st.add(newStream(topic, spec, epoch, now))
}

// add records the new stream s, then applies the byte cap (s stays).
func (st *Store) add(s *Stream) *Stream {
	st.streams[s.topic] = s
	st.bytes += s.bytes
	if st.bytes > st.maxBytes {
		st.trim(s)
	}
	return s
}

// Append records payload (copied) as the next event of topic's stream,
// created with spec when there is none, and returns its position. now
// is the time in unix nanoseconds.
func (st *Store) Append(topic []byte, spec Spec, payload []byte, now int64) (*Stream, Position) {
	s := st.Lookup(topic)
	if s == nil {
		s = st.Open(string(topic), spec, now)
	}
	return s, st.Record(s, payload, now)
}

// Record is Append to s, a stream of st (Lookup, Open): for a caller
// that already holds the stream.
func (st *Store) Record(s *Stream, payload []byte, now int64) Position {
	st.record(s, payload, now)
	return Position{Offset: s.last, Epoch: s.epoch}
}

// AppendAt records payload at pos, a position assigned elsewhere (a
// clustered source): a new epoch starts the stream over at pos.Offset;
// an offset past last+1 drops the retained events (the stream must stay
// contiguous, so the gap cannot be served here); an offset at or below
// the latest is already known and is not recorded (ok false).
func (st *Store) AppendAt(topic []byte, spec Spec, payload []byte, pos Position, now int64) (s *Stream, ok bool) {
	s = st.Lookup(topic)
	if s == nil {
		s = st.OpenAt(string(topic), spec, pos.Epoch, now)
	}
	return s, st.RecordAt(s, payload, pos, now)
}

// RecordAt is AppendAt to s, a stream of st (Lookup, OpenAt): for a
// caller that already holds the stream.
func (st *Store) RecordAt(s *Stream, payload []byte, pos Position, now int64) bool {
	switch {
	case s.epoch != pos.Epoch || pos.Offset > s.last+1:
		st.dropEntries(s)
		s.reset(pos.Epoch, pos.Offset)
	case pos.Offset <= s.last:
		return false
	}
	st.record(s, payload, now)
	return true
}

// record pushes payload onto s, then applies the TTL and the byte cap.
func (st *Store) record(s *Stream, payload []byte, now int64) {
	before := s.bytes
	s.expire(now)
	s.push(payload, now)
	st.bytes += s.bytes - before
	if st.bytes > st.maxBytes {
		st.trim(s)
	}
}

// dropEntries empties s, keeping its counters right.
func (st *Store) dropEntries(s *Stream) {
	before := s.bytes
	for s.count > 0 {
		s.trimOne()
	}
	st.bytes += s.bytes - before
}

// Expire applies every stream's TTL at now and drops the streams that
// have retained nothing for another TTL (their epoch is then lost: a
// resume to them reports epoch_changed). The owner calls it about once a
// second.
func (st *Store) Expire(now int64) {
	for topic, s := range st.streams {
		st.ExpireStream(s, now)
		if s.count == 0 && now-s.lastAt > 2*int64(s.spec.TTL) {
			st.remove(topic, s)
		}
	}
}

// ExpireStream applies s's TTL at now (before a resume is checked).
func (st *Store) ExpireStream(s *Stream, now int64) {
	before := s.bytes
	s.expire(now)
	st.bytes += s.bytes - before
}

func (st *Store) remove(topic string, s *Stream) {
	delete(st.streams, topic)
	st.bytes -= s.bytes
	s.removed = true
}

// trim frees memory until the store holds at most 15/16 of its cap,
// keeping the stream keep (the one just written or opened). Streams that
// never had an event go first: only a resume opens those (for any topic
// a client names), no client can hold a position in one, and so opening
// streams never costs another stream's history. Then the oldest entries
// of the largest streams go; streams that retain nothing go when nothing
// else is left to trim.
func (st *Store) trim(keep *Stream) {
	target := st.maxBytes - st.maxBytes/trimSlack
	for topic, s := range st.streams {
		if st.bytes <= target {
			return
		}
		if s.last == 0 && s != keep {
			st.remove(topic, s)
		}
	}
	h := st.scratch[:0]
	for _, s := range st.streams {
		h = append(h, s)
	}
	st.scratch = h
	heap.Init(&st.scratch)
	for st.bytes > target && len(st.scratch) > 0 {
		s := st.scratch[0]
		if s.count == 0 {
			heap.Pop(&st.scratch)
			if s != keep {
				st.remove(s.topic, s)
			}
			continue
		}
		before := s.bytes
		s.trimOne()
		st.trimmed++
		st.bytes += s.bytes - before
		heap.Fix(&st.scratch, 0)
	}
	clear(st.scratch)
	st.scratch = st.scratch[:0]
}

// Stats is a snapshot of the store.
type Stats struct {
	Streams int
	Bytes   int64  // counted against the cap
	Trimmed uint64 // entries dropped by the byte cap
}

// Stats returns the store's counters.
func (st *Store) Stats() Stats {
	return Stats{Streams: len(st.streams), Bytes: st.bytes, Trimmed: st.trimmed}
}

// streamHeap orders streams by bytes, largest first.
type streamHeap []*Stream

func (h streamHeap) Len() int           { return len(h) }
func (h streamHeap) Less(i, j int) bool { return h[i].bytes > h[j].bytes }
func (h streamHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *streamHeap) Push(x any)        { *h = append(*h, x.(*Stream)) }
func (h *streamHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}
