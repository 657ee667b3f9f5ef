package history

// Reason says why a resume position cannot be served.
type Reason string

// The reasons of FRAISED_RESUME_UNAVAILABLE.
const (
	// Trimmed: the events after the position are no longer retained
	// (size, TTL or the byte cap dropped them).
	Trimmed Reason = "trimmed"
	// EpochChanged: the position belongs to another life of the stream
	// (a restart, or a stream dropped after its TTL).
	EpochChanged Reason = "epoch_changed"
	// Ahead: the position is past the latest event.
	Ahead Reason = "ahead"
	// Unavailable: the history could not be read in time (a cluster node
	// whose ordering authority does not answer).
	Unavailable Reason = "unavailable"
)

// ResumeFrom returns the first offset to send a client whose last event
// is at pos, or why it cannot be served. Offset 0 with the current
// epoch means "from the oldest retained". The caller applies the TTL
// first (Store.ExpireStream). A result past Last means nothing is
// missed.
func (s *Stream) ResumeFrom(pos Position) (from uint64, why Reason) {
	switch {
	case s.removed || pos.Epoch != s.epoch:
		return 0, EpochChanged
	case pos.Offset > s.last:
		return 0, Ahead
	case pos.Offset == 0:
		return s.first, ""
	case pos.Offset+1 < s.first:
		return 0, Trimmed
	}
	return pos.Offset + 1, ""
}
