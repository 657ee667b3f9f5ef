package dispatch

import (
	"sync/atomic"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/registry"
)

// Subscription is the dispatcher's part of a subscribe: where its frames
// go, its id and the operation it compiled to. The session that made it
// fills Out, ID and Op, then hands it to QueueAdd and never writes those
// fields again; the dispatcher takes Op (the group keeps it) and owns the
// registry handle.
type Subscription struct {
	Out *outbox.Outbox
	ID  []byte         // JSON string literal, owned
	Op  *gql.Operation // until the dispatcher registers it
	// Resume, when set, is the position of the last event the client
	// has: the dispatcher replays what follows before going live, or
	// ends the subscription with the resume error (history.go).
	Resume *history.Position
	// Fail, when set, ends the subscription with the error message errs
	// (a JSON array): the session drops it, then sends the message. It
	// is called on the dispatcher goroutine and must not block: for a
	// resume position that cannot be served, and for a registered
	// subscription of a history topic whose events were lost on their way
	// to this node (cluster, fill.go). Without it the dispatcher sends the
	// message itself.
	Fail func(errs []byte)

	handle  *registry.Sub[group, member] // dispatcher-owned
	filled  bool                         // dispatcher-owned: its resume had its fill (fill.go)
	removed atomic.Bool
}

// Remove marks s removed (a registration still queued is then skipped);
// it reports false when s already was. The caller queues QueueRemove after
// a true result. Safe for concurrent use.
func (s *Subscription) Remove() bool { return !s.removed.Swap(true) }

// Removed reports whether Remove was called. Safe for concurrent use.
func (s *Subscription) Removed() bool { return s.removed.Load() }
