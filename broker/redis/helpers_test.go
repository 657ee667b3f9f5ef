package redis

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/internal/redistest"
)

// got is one event an inlet received.
type got struct {
	pos     broker.Position
	payload string
}

// recInlet records what a node receives, per topic, and (as a
// broker.HistoryInlet) every call in order in log.
type recInlet struct {
	mu     sync.Mutex
	topics map[string][]got
	log    []string
}

func newRecInlet() *recInlet { return &recInlet{topics: map[string][]got{}} }

var _ broker.HistoryInlet = (*recInlet)(nil)

func (r *recInlet) Deliver(topic, payload []byte, pos broker.Position, _ <-chan struct{}) bool {
	r.mu.Lock()
	r.topics[string(topic)] = append(r.topics[string(topic)], got{pos, string(payload)})
	r.log = append(r.log, fmt.Sprintf("live %s %d", topic, pos.Offset))
	r.mu.Unlock()
	return true
}

func (r *recInlet) Stage(topic, payload []byte, pos broker.Position, _ <-chan struct{}) bool {
	r.record(fmt.Sprintf("stage %s %d %s", topic, pos.Offset, payload))
	return true
}

func (r *recInlet) Filled(id uint64, topic []byte, live broker.Position, _ <-chan struct{}) bool {
	r.record(fmt.Sprintf("filled %s #%d %d", topic, id, live.Offset))
	return true
}

func (r *recInlet) Lost(topic []byte, why history.Reason, next broker.Position, _ <-chan struct{}) bool {
	r.record(fmt.Sprintf("lost %s %s %d", topic, why, next.Offset))
	return true
}

func (r *recInlet) record(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

// calls returns the calls of kind (live, stage, filled, lost) on topic,
// in order, each without its kind and topic.
func (r *recInlet) calls(kind, topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.log {
		if rest, ok := strings.CutPrefix(l, kind+" "+topic+" "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// logOf returns every call on topic, in order.
func (r *recInlet) logOf(topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.log {
		if f := strings.Fields(l); len(f) > 1 && f[1] == topic {
			out = append(out, l)
		}
	}
	return out
}

func (r *recInlet) events(topic string) []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.topics[topic]...)
}

// lossLog records the broker's loss reports.
type lossLog struct {
	mu     sync.Mutex
	losses []Loss
}

func (l *lossLog) add(x Loss) {
	l.mu.Lock()
	l.losses = append(l.losses, x)
	l.mu.Unlock()
}

func (l *lossLog) all() []Loss {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Loss(nil), l.losses...)
}

// node is one broker started on redis, with its inlet and losses.
type node struct {
	*Broker
	in     *recInlet
	losses *lossLog
}

func startNode(t *testing.T, url string, tune func(*Config)) *node {
	t.Helper()
	l := &lossLog{}
	cfg := Config{URL: url, OnLoss: l.add, ProbeIdle: 300 * time.Millisecond, ProbeTimeout: time.Second,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	if tune != nil {
		tune(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{Broker: b, in: newRecInlet(), losses: l}
	if err := b.Start(n.in); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return n
}

// waitReady waits until every node is ready.
func waitReady(t *testing.T, nodes ...*node) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		for i, n := range nodes {
			if err := n.Ready(); err != nil {
				return fmt.Errorf("node %d: %w", i, err)
			}
		}
		return nil
	})
}

// eventually polls cond until it returns nil, failing with its last error
// after d.
func eventually(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: %v", d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// subscribed waits until redis reports want subscribers of topic's
// channel.
func subscribed(t *testing.T, r *redistest.Server, topic string, want int) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if n := numsub(t, r, topic); n != want {
			return fmt.Errorf("PUBSUB NUMSUB %s = %d, want %d", topic, n, want)
		}
		return nil
	})
}

// numsub returns PUBSUB NUMSUB for topic's channel.
func numsub(t *testing.T, r *redistest.Server, topic string) int {
	t.Helper()
	c := newClient(t, r)
	res, err := c.PubSubNumSub(context.Background(), channelPrefix+topic).Result()
	if err != nil {
		t.Fatal(err)
	}
	return int(res[channelPrefix+topic])
}

// checkContiguous checks that evs hold offsets from..to in one epoch,
// each once, with payload {"i":offset-from+first}.
func checkContiguous(t *testing.T, who string, evs []got, n int) {
	t.Helper()
	if len(evs) != n {
		t.Fatalf("%s received %d events, want %d", who, len(evs), n)
	}
	for i, e := range evs {
		if e.pos.Offset != uint64(i+1) || e.pos.Epoch != evs[0].pos.Epoch {
			t.Fatalf("%s event %d at position %+v (first epoch %q)", who, i, e.pos, evs[0].pos.Epoch)
		}
	}
}
