package redis

import (
	"fmt"
	"testing"

	"github.com/fraised/fraised/internal/redistest"
)

// brokenRead is a fraised library whose fraised_read answers nothing, as a
// faulty or foreign library loaded over fraised's would.
const brokenRead = `#!lua name=fraised
redis.register_function{function_name = 'fraised_read', callback = function() return {} end, flags = {'no-writes'}}`

// TestMalformedReadAnswerEndsTheSession: a gap on a live topic makes the
// node repair from the stream; when fraised_read's answer is malformed
// (another library loaded over fraised's) the node must not crash: the
// session ends, the reconnect reloads fraised's functions, and the repair
// then delivers the events in order.
func TestMalformedReadAnswerEndsTheSession(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r.URL(), nil)
	n.TopicAdded("t")
	waitReady(t, n)
	subscribed(t, r, "t", 1)
	publishN(t, n, "t", 0, 1)
	epoch := waitEvents(t, n, "t", 1)[0].pos.Epoch
	// Events 2 to 4 published where the node does not hear them, the
	// library replaced, then event 4 live: the node sees a gap.
	for i := 1; i <= 3; i++ {
		r.Do("FCALL", "fraised_publish", "2", "fraised:m:t", "fraised:s:t", "elsewhere", fmt.Sprintf(`{"i":%d}`, i), "100", "60000", "600000")
	}
	r.Do("FUNCTION", "LOAD", "REPLACE", brokenRead)
	r.Do("PUBLISH", channelPrefix+"t", string(appendMessage(nil, 4, epoch, []byte(`{"i":3}`))))
	checkContiguous(t, "node", waitEvents(t, n, "t", 4), 4)
	if s := n.Stats(); s.Lost != 0 || s.Reconnects == 0 {
		t.Fatalf("stats %+v, want a reconnect and nothing lost", s)
	}
}
