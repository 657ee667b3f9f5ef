package history

import (
	"sort"
	"strconv"
)

// entry is one retained event: where its payload starts in the stream's
// byte queue, its length and when it was recorded (unix nanoseconds).
// 24 bytes; the offset is implicit (first + index).
type entry struct {
	pos uint64
	at  int64
	n   uint32
}

const entrySize = 24

// chunk is a piece of a stream's byte queue: payload bytes from byte
// position start on.
type chunk struct {
	start uint64
	b     []byte // len: bytes used
}

// Chunk sizes of a stream's byte queue: a chunk holds about 1/256 of the
// stream's retained bytes (within these bounds, a power of two: an exact
// size class of Go's allocator), so the unused tail of the newest chunk
// and the trimmed head of the oldest cost at most ~1 % of the payload,
// and a stream of a few small events holds 1 KiB.
const (
	minChunk = 1 << 10
	maxChunk = 64 << 10
)

// streamOverhead is what a stream costs besides its entries and chunks
// (the struct, its map entry, its epoch), counted against the byte cap
// with its topic so that many tiny streams are not free.
const streamOverhead = 256

// Stream is one topic's history. Its methods belong to the Store's
// goroutine.
type Stream struct {
	topic string
	spec  Spec
	epoch string
	ext   []byte // `,"epoch":"E"}}}`: ends a next payload's extensions

	first, last uint64 // oldest retained offset; latest assigned (first = last+1 when none is retained)
	entries     []entry
	head, count int // ring of count entries from head

	chunks  []chunk // the byte queue, oldest first
	tailPos uint64  // byte position after the last payload

	bytes   int64 // memory counted against the cap
	lastAt  int64 // when the latest event was recorded
	removed bool  // dropped from the Store: its history is lost
}

func newStream(topic string, spec Spec, epoch string, now int64) *Stream {
	s := &Stream{topic: topic, spec: spec, lastAt: now}
	s.reset(epoch, 1)
	s.bytes = streamOverhead + int64(len(topic))
	return s
}

// reset drops every entry and starts epoch at offset next.
func (s *Stream) reset(epoch string, next uint64) {
	s.epoch = epoch
	s.ext = append(append(append(s.ext[:0], `,"epoch":"`...), epoch...), `"}}}`...)
	s.first, s.last = next, next-1
	s.head, s.count = 0, 0
	s.entries = nil
	s.setChunks(nil)
	s.tailPos = 0
}

// Topic returns the stream's topic.
func (s *Stream) Topic() string { return s.topic }

// Epoch returns the stream's epoch.
func (s *Stream) Epoch() string { return s.epoch }

// First returns the oldest retained offset (Last()+1 when none is).
func (s *Stream) First() uint64 { return s.first }

// Last returns the latest offset assigned.
func (s *Stream) Last() uint64 { return s.last }

// Len returns the retained events.
func (s *Stream) Len() int { return s.count }

// Removed reports whether the Store dropped the stream (its history is
// lost; a new stream of the topic has another epoch).
func (s *Stream) Removed() bool { return s.removed }

// AppendExt appends the extensions that end a next payload for the
// event at offset: `,"extensions":{"fraised":{"offset":N,"epoch":"E"}}}`.
// The caller removes the payload's closing brace first.
func (s *Stream) AppendExt(dst []byte, offset uint64) []byte {
	dst = append(dst, `,"extensions":{"fraised":{"offset":`...)
	dst = strconv.AppendUint(dst, offset, 10)
	return append(dst, s.ext...)
}

// Read returns the payload of the event at offset, or false when it is
// not retained. The result aliases the stream's storage, or *scratch
// (grown as needed) when the payload spans chunks, and is valid until
// the stream or *scratch changes.
func (s *Stream) Read(offset uint64, scratch *[]byte) ([]byte, bool) {
	if offset < s.first || offset > s.last {
		return nil, false
	}
	e := s.entries[(s.head+int(offset-s.first))%len(s.entries)]
	i := sort.Search(len(s.chunks), func(i int) bool {
		c := s.chunks[i]
		return c.start+uint64(len(c.b)) > e.pos
	})
	c := s.chunks[i]
	from := int(e.pos - c.start)
	if from+int(e.n) <= len(c.b) {
		return c.b[from : from+int(e.n) : from+int(e.n)], true
	}
	out := append((*scratch)[:0], c.b[from:]...)
	for j := i + 1; len(out) < int(e.n); j++ {
		need := int(e.n) - len(out)
		out = append(out, s.chunks[j].b[:min(need, len(s.chunks[j].b))]...)
	}
	*scratch = out
	return out, true
}

// push records payload as offset last+1 at now and returns the offset.
func (s *Stream) push(payload []byte, now int64) uint64 {
	if s.count == s.spec.Size {
		s.trimOne()
	}
	s.growEntries()
	s.entries[(s.head+s.count)%len(s.entries)] = entry{pos: s.tailPos, at: now, n: uint32(len(payload))}
	s.count++
	s.last++
	s.lastAt = now
	s.write(payload)
	return s.last
}

// growEntries makes room for one more entry: the ring doubles up to the
// stream's size, so a full stream holds exactly Size entries.
func (s *Stream) growEntries() {
	if s.count < len(s.entries) {
		return
	}
	n := min(max(8, 2*len(s.entries)), s.spec.Size)
	grown := make([]entry, n)
	for i := 0; i < s.count; i++ {
		grown[i] = s.entries[(s.head+i)%len(s.entries)]
	}
	s.bytes += int64(n-len(s.entries)) * entrySize
	s.entries, s.head = grown, 0
}

// write appends payload to the byte queue, filling the newest chunk and
// starting new ones as needed (a payload may span chunks).
func (s *Stream) write(p []byte) {
	for len(p) > 0 {
		if len(s.chunks) == 0 || len(s.chunks[len(s.chunks)-1].b) == cap(s.chunks[len(s.chunks)-1].b) {
			s.addChunk()
		}
		c := &s.chunks[len(s.chunks)-1]
		n := min(len(p), cap(c.b)-len(c.b))
		c.b = append(c.b, p[:n]...)
		p = p[n:]
		s.tailPos += uint64(n)
	}
}

// addChunk starts a chunk of about 1/256 of the retained bytes.
func (s *Stream) addChunk() {
	retained := uint64(0)
	if len(s.chunks) > 0 {
		retained = s.tailPos - s.chunks[0].start
	}
	size := minChunk
	for size < maxChunk && uint64(size) < retained/256 {
		size *= 2
	}
	s.setChunks(append(s.chunks, chunk{start: s.tailPos, b: make([]byte, 0, size)}))
	s.bytes += int64(size)
}

// trimOne drops the oldest retained entry, and the chunks no entry uses
// any more.
func (s *Stream) trimOne() {
	if s.count == 0 {
		return
	}
	s.head = (s.head + 1) % len(s.entries)
	s.count--
	s.first++
	if s.count == 0 {
		for _, c := range s.chunks {
			s.bytes -= int64(cap(c.b))
		}
		clear(s.chunks)
		s.chunks = s.chunks[:0]
		s.bytes -= int64(len(s.entries)) * entrySize
		s.entries, s.head = nil, 0
		return
	}
	headPos := s.entries[s.head].pos
	drop := 0
	for drop < len(s.chunks)-1 && s.chunks[drop].start+uint64(cap(s.chunks[drop].b)) <= headPos {
		s.bytes -= int64(cap(s.chunks[drop].b))
		drop++
	}
	if drop > 0 {
		n := copy(s.chunks, s.chunks[drop:])
		clear(s.chunks[n:])
		s.chunks = s.chunks[:n]
		if cap(s.chunks) > 64 && n < cap(s.chunks)/4 {
			// The stream ramped up through many small chunks: give the
			// list back its room.
			s.setChunks(append(make([]chunk, 0, 2*n), s.chunks...))
		}
	}
}

// chunkSize is the memory of one chunk list slot.
const chunkSize = 32

// setChunks replaces the chunk list, counting its capacity.
func (s *Stream) setChunks(c []chunk) {
	s.bytes += int64(cap(c)-cap(s.chunks)) * chunkSize
	s.chunks = c
}

// expire drops the entries older than the stream's TTL at now.
func (s *Stream) expire(now int64) {
	limit := now - int64(s.spec.TTL)
	for s.count > 0 && s.entries[s.head].at <= limit {
		s.trimOne()
	}
}
