package history

// Filling a stream from elsewhere (a cluster's ordering authority, which
// keeps a longer history than this node has seen): the owner stages the
// events it reads there with Stage, in offset order, then merges them
// under its own stream with Fill, at the point in its event order where
// everything up to the authority's position it was read at has been
// recorded here (so the merge is by offset: the staged events go before
// the stream's oldest retained one, and nothing after it comes from the
// stage). Reset records a loss the authority reported: the stream
// continues at a later position and retains nothing before it.
//
// Staged events are counted apart from the streams, against maxStaged of
// the cap: past it a stage is dropped and its fill merges nothing (a
// resume it was for then gets "trimmed": never a stream with a hole).

// stagedShare is the fraction of the cap that staged events may hold
// together (1/2): fills come from resumes, each bounded by its stream's
// size, so this only binds in a storm of resumes to many large streams,
// where refusing some is the right answer.
const stagedShare = 2

// Stage records payload (copied) at pos as an event of topic read from
// elsewhere, to be merged by the next Fill of topic. Events must come in
// offset order; a new epoch or a gap starts the stage over, an offset
// already staged is ignored. spec is the topic's history: the stage keeps
// at most spec.Size events (the newest). now is the time in unix
// nanoseconds.
func (st *Store) Stage(topic []byte, spec Spec, payload []byte, pos Position, now int64) {
	if st.staged == nil {
		st.staged = map[string]*Stream{}
	}
	s := st.staged[string(topic)]
	if s == nil {
		if st.stagedOver[string(topic)] {
			return
		}
		s = newStream(string(topic), spec, pos.Epoch, now)
		s.reset(pos.Epoch, pos.Offset)
		st.staged[s.topic] = s
		st.stagedBytes += s.bytes
	}
	before := s.bytes
	switch {
	case s.epoch != pos.Epoch || pos.Offset > s.last+1:
		for s.count > 0 {
			s.trimOne()
		}
		s.reset(pos.Epoch, pos.Offset)
	case pos.Offset <= s.last:
		return
	}
	s.push(payload, now)
	st.stagedBytes += s.bytes - before
	if st.stagedBytes > st.maxBytes/stagedShare {
		st.dropStage(s.topic)
		if st.stagedOver == nil {
			st.stagedOver = map[string]bool{}
		}
		st.stagedOver[s.topic] = true // until its Fill: the merge must not have a hole
	}
}

// dropStage forgets topic's staged events.
func (st *Store) dropStage(topic string) {
	if s := st.staged[topic]; s != nil {
		st.stagedBytes -= s.bytes
		delete(st.staged, topic)
	}
}

// DropStage forgets what was staged for topic (a fill nobody waits for
// any more).
func (st *Store) DropStage(topic string) {
	st.dropStage(topic)
	delete(st.stagedOver, topic)
}

// Fill merges topic's staged events into its stream and returns the
// stream. live is the authority's position of topic at the point of the
// owner's event order where Fill is called: every event up to it has
// been recorded here (or is staged), none after. The stream ends up in
// live's epoch with live.Offset as its latest: a stream in another epoch,
// or behind live, is started over at live.Offset+1 (it missed what it was
// not told of, so it serves none of it), then the staged events older
// than its oldest retained one go before it when they reach it without a
// gap. The stream's size and the cap apply to the result; staged events
// are recorded at the time of the stream's oldest retained one (or now),
// so the TTL never drops an older one after a newer one. A stream is
// opened with spec when there is none; an empty live epoch (the authority
// has no history of the topic) merges nothing and returns the stream as
// it is, possibly nil.
func (st *Store) Fill(topic string, spec Spec, live Position, now int64) *Stream {
	stage := st.staged[topic]
	st.dropStage(topic)
	delete(st.stagedOver, topic)
	s := st.streams[topic]
	if live.Epoch == "" {
		return s
	}
	if s == nil {
		s = newStream(topic, spec, live.Epoch, now)
		s.reset(live.Epoch, live.Offset+1)
		st.streams[topic] = s
		st.bytes += s.bytes
	}
	if s.epoch != live.Epoch || s.last < live.Offset {
		st.dropEntries(s)
		s.reset(live.Epoch, live.Offset+1)
	}
	if stage == nil || stage.epoch != s.epoch || stage.count == 0 || stage.first >= s.first || stage.last+1 < s.first {
		return s // nothing older to add, or it would leave a hole
	}
	st.prepend(s, stage, now)
	return s
}

// prepend rebuilds s as stage's events older than s.first followed by
// s's own, keeping s's identity (replays hold it) and its newest
// spec.Size events.
func (st *Store) prepend(s, stage *Stream, now int64) {
	at := now
	if s.count > 0 {
		at = min(at, s.entries[s.head].at)
	}
	merged := newStream(s.topic, s.spec, s.epoch, now)
	merged.reset(s.epoch, stage.first)
	var scratch []byte
	for off := stage.first; off < s.first; off++ {
		p, _ := stage.Read(off, &scratch)
		merged.push(p, at)
	}
	for off := s.first; off <= s.last; off++ {
		p, _ := s.Read(off, &scratch)
		merged.push(p, s.entries[(s.head+int(off-s.first))%len(s.entries)].at)
	}
	merged.lastAt = max(s.lastAt, at)
	st.bytes += merged.bytes - s.bytes
	*s = *merged
	if st.bytes > st.maxBytes {
		st.trim(s)
	}
}

// Reset records that topic's events before next are lost (the authority
// reported a gap, or a new epoch): its stream, if any, retains nothing
// and continues at next (first next.Offset, in next.Epoch), so a resume
// from before next is refused, never served around the hole. It returns
// the stream (nil when there is none).
func (st *Store) Reset(topic []byte, next Position) *Stream {
	s := st.Lookup(topic)
	if s == nil {
		return nil
	}
	st.dropEntries(s)
	s.reset(next.Epoch, max(next.Offset, 1))
	return s
}
