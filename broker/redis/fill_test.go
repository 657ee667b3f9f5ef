package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/internal/redistest"
)

// waitFilled waits for fill id of topic to be answered.
func waitFilled(t *testing.T, n *node, topic string, id uint64) string {
	t.Helper()
	var found string
	eventually(t, 10*time.Second, func() error {
		for _, c := range n.in.calls("filled", topic) {
			if strings.HasPrefix(c, fmt.Sprintf("#%d ", id)) {
				found = c
				return nil
			}
		}
		return fmt.Errorf("fill #%d of %s not answered", id, topic)
	})
	return found
}

// TestFillReadsTheRangeUpToTheDeliveredOffset: a node listening to a
// topic is asked for the events after offset 5: it stages 6..20 from the
// Redis stream, in order, after the 20 live events it delivered, then
// answers with offset 20; with Max 4 only the newest 4 are staged.
func TestFillReadsTheRangeUpToTheDeliveredOffset(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r.URL(), nil)
	n.TopicAdded("t")
	waitReady(t, n)
	subscribed(t, r, "t", 1)
	publishN(t, n, "t", 0, 20)
	epoch := waitEvents(t, n, "t", 20)[0].pos.Epoch
	if !n.FillHistory(dispatch.FillRequest{ID: 1, Topic: "t", After: history.Position{Offset: 5, Epoch: epoch}, Max: 1000}) {
		t.Fatal("FillHistory refused")
	}
	if got := waitFilled(t, n, "t", 1); got != "#1 20" {
		t.Fatalf("filled %q, want at offset 20", got)
	}
	log := n.in.logOf("t")
	var want []string
	for i := 1; i <= 20; i++ {
		want = append(want, fmt.Sprintf("live t %d", i))
	}
	for i := 6; i <= 20; i++ {
		want = append(want, fmt.Sprintf(`stage t %d {"i":%d}`, i, i-1))
	}
	want = append(want, "filled t #1 20")
	if !slices.Equal(log, want) {
		t.Fatalf("inlet calls\n%v\nwant\n%v", log, want)
	}
	n.FillHistory(dispatch.FillRequest{ID: 2, Topic: "t", After: history.Position{Offset: 0, Epoch: epoch}, Max: 4})
	waitFilled(t, n, "t", 2)
	if got := n.in.calls("stage", "t")[15:]; !slices.Equal(got, []string{`17 {"i":16}`, `18 {"i":17}`, `19 {"i":18}`, `20 {"i":19}`}) {
		t.Fatalf("with Max 4 staged %v", got)
	}
	if s := n.Stats(); s.Fills != 2 {
		t.Fatalf("fills = %d, want 2", s.Fills)
	}
}

// TestFillOfATopicNewToTheNode: events published before a node listens
// to a topic are filled once its subscription is confirmed (the
// dispatcher adds the topic, then asks); a position in another epoch gets
// no events, only the live position; a quiet topic is served at once
// (the PING wakes the receiver), well within the read poll of a busy one.
func TestFillOfATopicNewToTheNode(t *testing.T) {
	r := redistest.Start(t)
	pub := startNode(t, r.URL(), nil)
	n := startNode(t, r.URL(), nil)
	waitReady(t, pub, n)
	publishN(t, pub, "u", 0, 10)
	epoch, err := newClient(t, r).HGet(context.Background(), "fraised:m:u", "e").Result()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n.TopicAdded("u")
	n.FillHistory(dispatch.FillRequest{ID: 7, Topic: "u", After: history.Position{Offset: 3, Epoch: epoch}, Max: 1000})
	if got := waitFilled(t, n, "u", 7); got != "#7 10" {
		t.Fatalf("filled %q, want at 10 (the position read before the subscribe)", got)
	}
	if got := n.in.calls("stage", "u"); len(got) != 7 || !strings.HasPrefix(got[0], "4 ") || !strings.HasPrefix(got[6], "10 ") {
		t.Fatalf("staged %v, want 4..10", got)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a fill of a new topic took %s", took)
	}
	n.FillHistory(dispatch.FillRequest{ID: 8, Topic: "u", After: history.Position{Offset: 3, Epoch: "other"}, Max: 1000})
	if got := waitFilled(t, n, "u", 8); got != "#8 10" {
		t.Fatalf("filled %q", got)
	}
	if got := len(n.in.calls("stage", "u")); got != 7 {
		t.Fatalf("a position in another epoch staged %d more events", got-7)
	}
	// A topic nobody wants any more: the request is dropped.
	n.FillHistory(dispatch.FillRequest{ID: 9, Topic: "gone", After: history.Position{Epoch: "x"}, Max: 1})
	time.Sleep(300 * time.Millisecond)
	if got := n.in.calls("filled", "gone"); len(got) != 0 {
		t.Fatalf("a fill of an unwanted topic was answered: %v", got)
	}
}

// TestLossReachesTheInlet: a gap past the repair window is handed to the
// inlet as a loss, between the last event before it and the first after.
func TestLossReachesTheInlet(t *testing.T) {
	r := redistest.Start(t)
	noWindow := func(c *Config) { c.RepairWindow = -1 }
	sub := startNode(t, r.URL(), noWindow)
	pub := startNode(t, r.URL(), noWindow)
	sub.TopicAdded("t")
	waitReady(t, sub, pub)
	subscribed(t, r, "t", 1)
	publishN(t, pub, "t", 0, 3)
	waitEvents(t, sub, "t", 3)
	// Offsets 4-8 taken without a PUBLISH (as if lost on the way).
	r.Do("HINCRBY", "fraised:m:t", "o", "5")
	publishN(t, pub, "t", 3, 4)
	eventually(t, 10*time.Second, func() error {
		if len(sub.in.calls("lost", "t")) == 0 {
			return errors.New("no loss handed to the inlet")
		}
		return nil
	})
	want := []string{"live t 1", "live t 2", "live t 3", "lost t trimmed 9", "live t 9"}
	eventually(t, 10*time.Second, func() error {
		if got := sub.in.logOf("t"); !slices.Equal(got, want) {
			return fmt.Errorf("inlet calls %v, want %v", got, want)
		}
		return nil
	})
}

// TestFillCatchesUpANodeBehindTheClient: the client has seen offsets this
// node has not received (here: written to the stream without a PUBLISH,
// as events still on their way): the node delivers them first, as a
// repair, and answers at the client's position, staging nothing.
func TestFillCatchesUpANodeBehindTheClient(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r.URL(), nil)
	n.TopicAdded("t")
	waitReady(t, n)
	subscribed(t, r, "t", 1)
	publishN(t, n, "t", 0, 3)
	epoch := waitEvents(t, n, "t", 3)[0].pos.Epoch
	r.Do("XADD", "fraised:s:t", "4-1", "p", `{"i":3}`)
	r.Do("XADD", "fraised:s:t", "5-1", "p", `{"i":4}`)
	r.Do("HSET", "fraised:m:t", "o", "5")
	n.FillHistory(dispatch.FillRequest{ID: 3, Topic: "t", After: history.Position{Offset: 5, Epoch: epoch}, Max: 1000})
	waitFilled(t, n, "t", 3)
	want := []string{"live t 1", "live t 2", "live t 3", "live t 4", "live t 5", "filled t #3 5"}
	if got := n.in.logOf("t"); !slices.Equal(got, want) {
		t.Fatalf("inlet calls %v, want %v", got, want)
	}
}
