package soak

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/perf/internal/respw"
	"github.com/fraised/fraised/perf/internal/wsframe"
)

// historySDL is the resume storm's and the cluster scenarios' schema:
// examples/schema.graphql's events field with @history, so every topic
// (the canary's too) keeps the whole run (in a cluster, Redis' stream of
// it: the history size) for a resume.
const historySDL = `type Event { seq: Int! ts: Float! body: String }
type Query { serverTime: String }
type Subscription {
  events(topic: String!): Event! @topic(name: "{topic}") @history(size: 200000, ttl: "2m")
}
`

// Bounds of the resume storm.
const (
	// stormCutMin and stormCutSpread: each client cuts its connection
	// after 50-450 ms, then reconnects and resumes.
	stormCutMin    = 50 * time.Millisecond
	stormCutSpread = 400
	// stormCatchUp bounds the wait, after publishing stops, for every
	// client to have every event.
	stormCatchUp = 30 * time.Second
	// stormPoll is how long a client waits for a frame to start before
	// it looks at its cut time and the stop signal again.
	stormPoll = 100 * time.Millisecond
)

// writeSDL writes sdl to a file in dir and returns its path.
func writeSDL(dir, name, sdl string) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, name+".graphql")
	return path, os.WriteFile(path, []byte(sdl), 0o600)
}

// resumeStorm: clients reconnect at random moments while events flow at
// a steady rate; each resumes (connection_init's fraised.resume) from
// its last offset. Every client must end with every event exactly once,
// in order (contiguous offsets), none refused.
func resumeStorm(e *Env) {
	const topic = "soak.storm"
	n, rate := e.scale(100, 20), e.scale(10_000, 2_000)
	dur := e.scaleD(10*time.Second, 2*time.Second)
	p, err := dialPub(nil, e.Child.Pub, 0)
	if err != nil {
		e.Fail("%v", err)
		return
	}
	defer p.conn.Close()
	if _, err := p.publishWait(topic, []byte(`{"seq":0,"ts":0,"body":"first"}`), 5*time.Second); err != nil {
		e.Fail("%v", err)
		return
	}
	var total atomic.Int64
	total.Store(-1)
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		published, err := stormPublish(e, p, topic, rate, dur)
		if err != nil {
			e.Fail("publisher: %v", err)
		}
		total.Store(published + 1) // and the first
	}()
	var wg sync.WaitGroup
	var reconnects atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			got, cuts, err := stormClient(e, topic, seed, stop, &total)
			reconnects.Add(int64(cuts))
			e.Deliveries(0, got)
			if err != nil {
				e.Fail("client %d: %v", seed, err)
			}
		}(uint64(i))
	}
	wg.Wait()
	e.Deliveries(total.Load()*int64(n), 0)
	e.Fig("clients", "%d", n)
	e.Fig("events", "%d", total.Load())
	e.Fig("rate", "%d/s", rate)
	e.Fig("reconnects", "%d", reconnects.Load())
}

// stormPublish publishes at rate for dur in batches every 10 ms (the
// replies are read on their own goroutine, so a slow round trip does not
// slow the schedule) and returns how many it published, once every reply
// arrived.
func stormPublish(e *Env, p *pubConn, topic string, rate int, dur time.Duration) (int64, error) {
	per := max(1, rate/100)
	var written atomic.Int64
	writerDone := make(chan struct{})
	replies := make(chan error, 1)
	go func() {
		var n int64
		for {
			select {
			case <-writerDone:
				if n == written.Load() {
					replies <- nil
					return
				}
			default:
			}
			if n == written.Load() {
				time.Sleep(time.Millisecond)
				continue
			}
			if kind, _, text, err := p.reply(replyWait); err != nil || kind != ':' {
				replies <- fmt.Errorf("reply %c%s %v", kind, text, err)
				return
			}
			n++
		}
	}()
	seq := int64(1)
	var b []byte
	var werr error
	start := time.Now()
	for tick := 0; time.Since(start) < dur && !e.done(); tick++ {
		b = b[:0]
		for range per {
			b = respw.AppendPublish(b, []byte(topic), fmt.Appendf(nil, `{"seq":%d,"ts":0,"body":"storm"}`, seq))
			seq++
		}
		if werr = p.write(b, replyWait); werr != nil { // the ring may hold it back a while
			break
		}
		written.Add(int64(per))
		if sleep := time.Until(start.Add(time.Duration(tick+1) * 10 * time.Millisecond)); sleep > 0 {
			time.Sleep(sleep)
		}
	}
	close(writerDone)
	if werr != nil {
		return written.Load(), werr
	}
	return written.Load(), <-replies
}

// stormClient keeps one resumable subscription through random cuts
// until publishing stopped and it has every event; it returns the events
// it received and its cuts.
func stormClient(e *Env, topic string, seed uint64, stop <-chan struct{}, total *atomic.Int64) (int64, int, error) {
	rng := rand.New(rand.NewPCG(seed, 11))
	var last uint64
	var epoch string
	cuts := 0
	var buf []byte
	deadline := time.Time{}
	for !e.done() {
		c, err := dialWS(e.src.next(), e.Child.WS, 0)
		if err != nil {
			return int64(last), cuts, err
		}
		init := `{"type":"connection_init","payload":{}}`
		if epoch != "" {
			init = fmt.Sprintf(`{"type":"connection_init","payload":{"fraised":{"resume":{"1":{"epoch":%q,"offset":%d}}}}}`, epoch, last)
		}
		sub := fmt.Sprintf(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"%s\") { seq } }"}}`, topic)
		if epoch == "" { // the first time: from the oldest retained (offset 0 needs the epoch: learn it)
			sub = fmt.Sprintf(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"%s\") { seq } }","extensions":{"fraised":{"resume":{"epoch":"learn0000000","offset":0}}}}}`, topic)
		}
		if c.send(init) != nil || c.send(sub) != nil {
			c.conn.Close()
			continue
		}
		cut := time.Now().Add(stormCutMin + time.Duration(rng.IntN(stormCutSpread))*time.Millisecond)
		for {
			select {
			case <-stop:
				if deadline.IsZero() {
					deadline = time.Now().Add(stormCatchUp)
				}
			default:
			}
			stopped := !deadline.IsZero()
			if stopped && int64(last) == total.Load() {
				c.conn.Close()
				return int64(last), cuts, nil
			}
			if stopped && time.Now().After(deadline) {
				c.conn.Close()
				return int64(last), cuts, fmt.Errorf("has %d of %d events %v after publishing stopped", last, total.Load(), stormCatchUp)
			}
			if !stopped && time.Now().After(cut) {
				c.conn.Close()
				cuts++
				break
			}
			f, b, err := c.pollFrame(buf, stormPoll)
			buf = b
			if isTimeout(err) && !errors.Is(err, errTruncated) {
				continue // no frame started: look at the clock again
			}
			if err != nil || f.op == wsframe.OpClose {
				// The server cut it (a slow consumer under this load gets
				// 1013): reconnect and resume, as a real client does.
				c.conn.Close()
				e.Code(serverEnd(f, err))
				break
			}
			if c.pong(f) || f.op != wsframe.OpText || bytes.Contains(f.payload, []byte(`"connection_ack"`)) {
				continue
			}
			m := gjson.ParseBytes(f.payload)
			if m.Get("type").Str == "error" && epoch == "" && m.Get("payload.0.extensions.reason").Str == "epoch_changed" {
				epoch = m.Get("payload.0.extensions.available.epoch").Str
				_ = c.send(fmt.Sprintf(`{"id":"2","type":"subscribe","payload":{"query":"subscription { events(topic: \"%s\") { seq } }","extensions":{"fraised":{"resume":{"epoch":%q,"offset":0}}}}}`, topic, epoch))
				continue
			}
			off := m.Get("payload.extensions.fraised.offset").Uint()
			if m.Get("type").Str != "next" || off != last+1 || m.Get("payload.extensions.fraised.epoch").Str != epoch {
				c.conn.Close()
				return int64(last), cuts, fmt.Errorf("after offset %d got %s", last, f.payload)
			}
			last = off
		}
	}
	return int64(last), cuts, errors.New("the run ended first")
}

// serverEnd names how the server ended a storm client's connection.
func serverEnd(f frame, err error) string {
	switch {
	case err == nil:
		return fmt.Sprint(closeCode(f.payload))
	case errors.Is(err, errTruncated) && isTimeout(err):
		return "TRUNC-HELD" // a frame started and did not end within dialTimeout
	case errors.Is(err, errTruncated):
		return "TRUNC"
	}
	return "EOF"
}
