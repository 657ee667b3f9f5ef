package dispatch

import (
	"sync/atomic"

	"github.com/fraised/fraised/gql"
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

	handle  *registry.Sub[group, member] // dispatcher-owned
	removed atomic.Bool
}

// Remove marks s removed (a registration still queued is then skipped);
// it reports false when s already was. The caller queues QueueRemove after
// a true result. Safe for concurrent use.
func (s *Subscription) Remove() bool { return !s.removed.Swap(true) }

// Removed reports whether Remove was called. Safe for concurrent use.
func (s *Subscription) Removed() bool { return s.removed.Load() }
