package redisclients

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestClientsAgree checks that every client under test runs
// fraised_publish with the broker's arguments, alone and pipelined, and
// receives its message through pub/sub: the benchmarks measure working
// calls.
func TestClientsAgree(t *testing.T) {
	s := startRedis(t)
	channel := channelPrefix + string(topic)
	var epoch string
	next := int64(1)
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			c := dial(t, s, cl.dial)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan string, batchSize+1)
			if err := c.subscribe(ctx, channel, func(ch, data string) {
				if ch == channel {
					got <- data
				}
			}); err != nil {
				t.Fatal(err)
			}
			s.waitSubscribed(t, channel, 1)
			r, err := c.publish(ctx, topic, payload)
			if err != nil {
				t.Fatal(err)
			}
			if epoch == "" {
				epoch = r.epoch
			}
			if r.receivers != 1 || r.offset != next || r.epoch != epoch || len(epoch) != 10 {
				t.Fatalf("receipt %+v, want 1 receiver, offset %d, epoch %q", r, next, epoch)
			}
			out := make([]receipt, batchSize)
			payloads := make([][]byte, batchSize)
			for i := range payloads {
				payloads[i] = payload
			}
			if err := c.publishBatch(ctx, topic, payloads, out); err != nil {
				t.Fatal(err)
			}
			for i, r := range out {
				if r.offset != next+1+int64(i) || r.epoch != epoch {
					t.Fatalf("batch receipt %d: %+v, want offset %d epoch %q", i, r, next+1+int64(i), epoch)
				}
			}
			for i := range batchSize + 1 {
				want := "F1 " + strconv.FormatInt(next+int64(i), 10) + " " + epoch + "\n" + string(payload)
				select {
				case m := <-got:
					if m != want {
						t.Fatalf("message %d: %q, want %q", i, m, want)
					}
				case <-time.After(arrivalTimeout):
					t.Fatalf("message %d did not arrive within %s", i, arrivalTimeout)
				}
			}
			next += batchSize + 1
			cancel()
			s.waitSubscribed(t, channel, 0) // the subscription ends with its context
		})
	}
}

// TestRawPublisherAllocs guards BenchmarkPubSub's attribution: its
// publisher allocates nothing, so the allocations it reports are the
// subscribing client's.
func TestRawPublisherAllocs(t *testing.T) {
	s := startRedis(t)
	p := newRawPublisher(t, s, topic, payload)
	var err error
	if n := testing.AllocsPerRun(200, func() {
		if e := p.publish(); e != nil {
			err = e
		}
	}); n != 0 {
		t.Fatalf("raw publish: %v allocations per run, want 0", n)
	}
	if err != nil {
		t.Fatal(err)
	}
}
