// Package history keeps bounded per-topic event streams for resume:
// contiguous offsets (1, 2, 3, ...) per topic, a random epoch per stream
// (new whenever the stream's history is lost), a size and a TTL per
// stream, and a global byte cap that trims the oldest entries of the
// largest streams first.
//
// A Store is owned by one goroutine (the dispatcher): it takes no locks
// and is not safe for concurrent use. Reading history and registering a
// subscriber can therefore be one step of that goroutine, which is what
// makes a resume gap-free and duplicate-free.
package history

import (
	"crypto/rand"
	"fmt"
	"time"
)

// Position is where an event sits in its topic's stream. Offsets are
// contiguous per epoch and start at 1; an epoch names one life of a
// stream. The dispatcher assigns positions to events it records; a
// clustered source may assign them elsewhere (for example in Redis) and
// hand them over as they are (Store.AppendAt).
type Position struct {
	Offset uint64
	Epoch  string
}

// Spec is the history kept for a topic: at most Size events, each for at
// most TTL.
type Spec struct {
	Size int
	TTL  time.Duration
}

// Limits of a Spec, checked where @history is declared.
const (
	// MaxSize is the largest @history size: a million events per topic is
	// far beyond a reconnect's catch-up (seconds of traffic) while the
	// global byte cap bounds the memory anyway.
	MaxSize = 1_000_000
	// MinTTL is the shortest @history ttl: below a second a reconnect
	// (backoff, TLS, connection_init) cannot make it in time.
	MinTTL = time.Second
	// MaxTTL is the longest @history ttl: history lives in memory and is
	// lost at every restart, so a week is already past what it can
	// promise.
	MaxTTL = 7 * 24 * time.Hour
)

// Check returns an error saying what to change when s is out of bounds.
func (s Spec) Check() error {
	if s.Size <= 0 || s.Size > MaxSize {
		return fmt.Errorf("size %d is out of range: use 1 to %d events", s.Size, MaxSize)
	}
	if s.TTL < MinTTL || s.TTL > MaxTTL {
		return fmt.Errorf("ttl %s is out of range: use %s to %s", s.TTL, MinTTL, MaxTTL)
	}
	return nil
}

// EpochLen is the length of the epochs a Store draws.
const EpochLen = 12

// MaxEpochLen is the longest epoch a client may send back or a source
// may assign: generous for externally assigned epochs, small enough to
// bound what a resume input holds.
const MaxEpochLen = 64

const epochAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewEpoch returns EpochLen random characters of [0-9A-Za-z] from
// crypto/rand (unbiased: bytes past the largest multiple of 62 are
// drawn again).
func NewEpoch() string {
	var out [EpochLen]byte
	var buf [32]byte
	n := 0
	for n < EpochLen {
		_, _ = rand.Read(buf[:]) // crypto/rand does not fail
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62
				continue
			}
			out[n] = epochAlphabet[b%62]
			if n++; n == EpochLen {
				break
			}
		}
	}
	return string(out[:])
}

// ValidEpoch reports whether e can be an epoch: 1 to MaxEpochLen
// characters of [0-9A-Za-z_-] (the Store's own are [0-9A-Za-z]; the
// rest leaves room for externally assigned ones). An epoch is written
// into JSON as is, so nothing that needs escaping is allowed.
func ValidEpoch(e string) bool {
	if len(e) == 0 || len(e) > MaxEpochLen {
		return false
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
