package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/golang-jwt/jwt/v5"
	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/resp"
	"github.com/fraised/fraised/server"
)

// historySDL keeps history on feed.* (large), short.* (5 events, 1 s)
// and the tenant feed (a claim filter); plain.* keeps none.
const historySDL = `
type Event { seq: Int! body: String tenant: String }
type Query { a: String }
type Subscription {
  feed(room: String!): Event! @topic(name: "feed.{room}") @history(size: 20000, ttl: "1m")
  short(room: String!): Event! @topic(name: "short.{room}") @history(size: 5, ttl: "1s")
  mid(room: String!): Event! @topic(name: "mid.{room}") @history(size: 2000, ttl: "1m")
  plain(topic: String!): Event! @topic(name: "plain.{topic}")
  tenantFeed(room: String!): Event! @topic(name: "tf.{room}") @filter(field: "tenant", claim: "tenant_id") @history(size: 100, ttl: "1m")
}
`

func historySchema(t testing.TB) *gql.Schema {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.graphql")
	if err := os.WriteFile(path, []byte(historySDL), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := gql.LoadSchemaFile(path, gql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startHistory(t testing.TB, tweak func(*server.Options)) *testServer {
	return startServer(t, func(o *server.Options) {
		o.Schema = historySchema(t)
		if tweak != nil {
			tweak(o)
		}
	})
}

const feedDoc = `subscription($room: String!) { feed(room: $room) { seq } }`

// positioned is a next of a history topic as a client sees it.
type positioned struct {
	seq    int64
	offset uint64
	epoch  string
}

// nextPos reads a next for id and returns its seq and position.
func (c *client) nextPos(id string) positioned {
	c.t.Helper()
	m := c.next()
	if gjson.Get(m, "type").String() != "next" || gjson.Get(m, "id").String() != id {
		c.t.Fatalf("want a next for %s, got %s", id, m)
	}
	p := gjson.Get(m, "payload")
	return positioned{
		seq:    p.Get("data.*.seq").Int(),
		offset: p.Get("extensions.fraised.offset").Uint(),
		epoch:  p.Get("extensions.fraised.epoch").String(),
	}
}

// subscribeResume subscribes with a resume position in the extensions.
func (c *client) subscribeResume(id, room, epoch string, offset uint64) {
	c.t.Helper()
	c.send(fmt.Sprintf(`{"id":%q,"type":"subscribe","payload":{"query":%q,"variables":{"room":%q},"extensions":{"fraised":{"resume":{"epoch":%q,"offset":%d}}}}}`,
		id, feedDoc, room, epoch, offset))
}

// publishN pipelines n PUBLISH commands to topic (seq from..from+n-1)
// and reads their replies.
func (p *publisher) publishN(topic string, from, n int, body string) {
	p.t.Helper()
	var b []byte
	for i := from; i < from+n; i++ {
		b = resp.AppendArray(b, []byte("PUBLISH"), []byte(topic), []byte(fmt.Sprintf(`{"seq":%d,"body":%q}`, i, body)))
	}
	p.write(b)
	for i := 0; i < n; i++ {
		if l := p.line(); !strings.HasPrefix(l, ":") {
			p.t.Fatalf("publish replied %q", l)
		}
	}
}

// TestHistoryOffsets: every next of a history topic carries offsets
// 1..n of one epoch beside data; a topic without history is unchanged,
// byte for byte.
func TestHistoryOffsets(t *testing.T) {
	s := startHistory(t, nil)
	c := connect(t, s.opts.Listen)
	c.subscribe("h", feedDoc, map[string]any{"room": "r"})
	c.subscribe("p", `subscription { plain(topic: "x") { seq } }`, nil)
	s.waitSubs(t, 2)
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	pub.publishN("feed.r", 1, 5, "")
	var epoch string
	for i := 1; i <= 5; i++ {
		p := c.nextPos("h")
		if p.seq != int64(i) || p.offset != uint64(i) || len(p.epoch) != 12 || (epoch != "" && p.epoch != epoch) {
			t.Fatalf("event %d: %+v (epoch before %q)", i, p, epoch)
		}
		epoch = p.epoch
	}
	if got := pub.publish("plain.x", `{"seq":7}`); got != ":1" {
		t.Fatalf("plain publish %s", got)
	}
	c.expect(`{"id":"p","type":"next","payload":{"data":{"plain":{"seq":7}}}}`)
	pub.publishN("feed.r", 6, 1, "")
	m := c.next()
	if want := `{"id":"h","type":"next","payload":{"data":{"feed":{"seq":6}},"extensions":{"fraised":{"offset":6,"epoch":"` + epoch + `"}}}}`; m != want {
		t.Fatalf("got  %s\nwant %s", m, want)
	}
}

// TestResumeBySubscribeExtensions: a client that left after offset 3
// resumes with the subscribe's extensions and gets exactly 4..8, then
// the live events.
func TestResumeBySubscribeExtensions(t *testing.T) {
	s := startHistory(t, nil)
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	a := connect(t, s.opts.Listen)
	a.subscribe("1", feedDoc, map[string]any{"room": "r"})
	s.waitSubs(t, 1)
	pub.publishN("feed.r", 1, 3, "")
	var last positioned
	for i := 0; i < 3; i++ {
		last = a.nextPos("1")
	}
	a.conn.Close()
	s.waitSubs(t, 0)
	pub.publishN("feed.r", 4, 5, "") // missed
	b := connect(t, s.opts.Listen)
	b.subscribeResume("1", "r", last.epoch, last.offset)
	for i := 4; i <= 8; i++ {
		if p := b.nextPos("1"); p.seq != int64(i) || p.offset != uint64(i) || p.epoch != last.epoch {
			t.Fatalf("replayed %+v, want seq and offset %d", p, i)
		}
	}
	s.waitSubs(t, 1) // live once caught up
	pub.publishN("feed.r", 9, 2, "")
	for i := 9; i <= 10; i++ {
		if p := b.nextPos("1"); p.seq != int64(i) || p.offset != uint64(i) {
			t.Fatalf("live %+v, want %d", p, i)
		}
	}
}

// TestResumeByConnectionInit: the position comes from connection_init,
// keyed by the operation id, as the recipe's connectionParams sends it.
func TestResumeByConnectionInit(t *testing.T) {
	s := startHistory(t, nil)
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	pub.publishN("feed.r", 1, 6, "")
	a := connect(t, s.opts.Listen)
	a.subscribeResume("x", "r", "probe0000000", 0) // learn the epoch: an epoch_changed error names it
	epoch := gjson.Get(a.next(), "payload.0.extensions.available.epoch").String()
	b := dial(t, s.opts.Listen)
	b.send(`{"type":"connection_init","payload":{"fraised":{"resume":{"op-7":{"epoch":"` + epoch + `","offset":2},"other":{"epoch":"` + epoch + `","offset":0}}}}}`)
	b.expect(`{"type":"connection_ack"}`)
	b.subscribe("op-7", feedDoc, map[string]any{"room": "r"})
	for i := 3; i <= 6; i++ {
		if p := b.nextPos("op-7"); p.seq != int64(i) || p.offset != uint64(i) {
			t.Fatalf("replayed %+v, want %d", p, i)
		}
	}
	s.waitSubs(t, 1)
	pub.publishN("feed.r", 7, 1, "")
	if p := b.nextPos("op-7"); p.offset != 7 {
		t.Fatalf("live %+v", p)
	}
	// The subscribe's own position wins over the init entry.
	c := dial(t, s.opts.Listen)
	c.send(`{"type":"connection_init","payload":{"fraised":{"resume":{"w":{"epoch":"` + epoch + `","offset":1}}}}}`)
	c.expect(`{"type":"connection_ack"}`)
	c.subscribeResume("w", "r", epoch, 5)
	for i := 6; i <= 7; i++ {
		if p := c.nextPos("w"); p.offset != uint64(i) {
			t.Fatalf("with both positions got %+v, want offset %d (the subscribe's)", p, i)
		}
	}
	// The init entry is used once: the same id subscribed again after
	// complete starts live, without a replay.
	b.send(`{"id":"op-7","type":"complete"}`)
	s.waitSubs(t, 1) // c's
	b.subscribe("op-7", feedDoc, map[string]any{"room": "r"})
	s.waitSubs(t, 2)
	pub.publishN("feed.r", 8, 1, "")
	if p := c.nextPos("w"); p.offset != 8 {
		t.Fatalf("c live: %+v", p)
	}
	if p := b.nextPos("op-7"); p.offset != 8 {
		t.Fatalf("after resubscribe got %+v, want offset 8 only", p)
	}
}

// expectResumeError reads the resume error for id and checks its
// reason and available range.
func (c *client) expectResumeError(id, reason string, first, last uint64) string {
	c.t.Helper()
	m := c.next()
	if gjson.Get(m, "type").String() != "error" || gjson.Get(m, "id").String() != id {
		c.t.Fatalf("want an error for %s, got %s", id, m)
	}
	e := gjson.Get(m, "payload.0")
	if e.Get("message").String() != "resume position not available" || e.Get("extensions.code").String() != "FRAISED_RESUME_UNAVAILABLE" ||
		e.Get("extensions.reason").String() != reason {
		c.t.Fatalf("error %s, want reason %s", m, reason)
	}
	if av := e.Get("extensions.available"); av.Get("first").Uint() != first || av.Get("last").Uint() != last || len(av.Get("epoch").String()) != 12 {
		c.t.Fatalf("available %s, want first %d last %d", av.Raw, first, last)
	}
	return e.Get("extensions.available.epoch").String()
}

// TestResumeUnavailable: trimmed, ahead, another epoch and TTL-expired
// positions each get one error message and no next; the id is free
// again afterwards.
func TestResumeUnavailable(t *testing.T) {
	s := startHistory(t, nil)
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	pub.publishN("short.r", 1, 10, "") // keeps 6..10
	c := connect(t, s.opts.Listen)
	doc := `subscription { short(room: "r") { seq } }`
	sub := func(id, epoch string, offset uint64) {
		c.send(fmt.Sprintf(`{"id":%q,"type":"subscribe","payload":{"query":%q,"extensions":{"fraised":{"resume":{"epoch":%q,"offset":%d}}}}}`, id, doc, epoch, offset))
	}
	sub("e", "NotTheEpoch1", 5)
	epoch := c.expectResumeError("e", "epoch_changed", 6, 10)
	sub("t", epoch, 4) // the error was all for e: the next message answers t
	c.expectResumeError("t", "trimmed", 6, 10)
	sub("a", epoch, 11)
	c.expectResumeError("a", "ahead", 6, 10)
	sub("ok", epoch, 5) // N+1 = 6 is the oldest retained: served
	for i := 6; i <= 10; i++ {
		if p := c.nextPos("ok"); p.offset != uint64(i) {
			t.Fatalf("replayed %+v, want %d", p, i)
		}
	}
	// TTL: after 1 s the retained events expire.
	time.Sleep(1200 * time.Millisecond)
	sub("ttl", epoch, 7)
	c.expectResumeError("ttl", "trimmed", 11, 10)
	// The ids of refused resumes are free: subscribing with one again is
	// not a duplicate (4409).
	c.subscribe("t", doc, nil)
	s.waitSubs(t, 2)
	if got := pub.publish("short.r", `{"seq":11}`); got != ":2" {
		t.Fatalf("publish reached %s, want ok and t", got)
	}
	for range 2 {
		if p := positionedOf(t, c.next()); p.offset != 11 {
			t.Fatalf("got %+v", p)
		}
	}
}

func positionedOf(t testing.TB, m string) positioned {
	t.Helper()
	p := gjson.Get(m, "payload")
	if gjson.Get(m, "type").String() != "next" {
		t.Fatalf("want a next, got %s", m)
	}
	return positioned{seq: p.Get("data.*.seq").Int(), offset: p.Get("extensions.fraised.offset").Uint(), epoch: p.Get("extensions.fraised.epoch").String()}
}

// TestResumeEpochChangesAtRestart: history is in memory; a position of
// the previous process gets epoch_changed.
func TestResumeEpochChangesAtRestart(t *testing.T) {
	schema := historySchema(t)
	first := startServer(t, func(o *server.Options) { o.Schema = schema })
	pub := dialPublisher(t, "tcp", first.opts.PublishListen)
	pub.write(resp.AppendArray(nil, []byte("FPUBLISH"), []byte("feed.r"), []byte(`{"seq":1}`)))
	reply := []string{pub.line(), pub.line(), pub.line(), pub.line(), pub.line()}
	old := reply[4]
	if reply[2] != ":1" || len(old) != 12 {
		t.Fatalf("FPUBLISH replied %q", reply)
	}
	second := startServer(t, func(o *server.Options) { o.Schema = schema })
	c := connect(t, second.opts.Listen)
	c.subscribeResume("1", "r", old, 1)
	if got := c.expectResumeError("1", "epoch_changed", 1, 0); got == old {
		t.Fatalf("the restarted server kept epoch %s", old)
	}
}

// TestResumeAppliesTenantFilters: a replay passes the claim filters of
// the subscriber's current identity.
func TestResumeAppliesTenantFilters(t *testing.T) {
	s := startServer(t, func(o *server.Options) {
		o.Schema = historySchema(t)
		o.Security = server.Security{Auth: auth.ModeRequired, Verifier: testVerifier(t)}
	})
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	var b []byte
	for i := 1; i <= 20; i++ {
		tn := []string{"acme", "globex"}[i%2]
		b = resp.AppendArray(b, []byte("PUBLISH"), []byte("tf.r"), []byte(fmt.Sprintf(`{"seq":%d,"tenant":%q}`, i, tn)))
	}
	pub.write(b)
	for range 20 {
		pub.line()
	}
	c := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"tenant_id": "acme"}))
	probe := `subscription { tenantFeed(room: "r") { seq tenant } }`
	c.send(fmt.Sprintf(`{"id":"p","type":"subscribe","payload":{"query":%q,"extensions":{"fraised":{"resume":{"epoch":"probe0000000","offset":0}}}}}`, probe))
	m := c.next()
	epoch := gjson.Get(m, "payload.0.extensions.available.epoch").String()
	c.send(fmt.Sprintf(`{"id":"1","type":"subscribe","payload":{"query":%q,"extensions":{"fraised":{"resume":{"epoch":%q,"offset":0}}}}}`, probe, epoch))
	for i := 2; i <= 20; i += 2 { // acme has the even ones
		m := c.next()
		if gjson.Get(m, "payload.data.tenantFeed.tenant").String() != "acme" || gjson.Get(m, "payload.data.tenantFeed.seq").Int() != int64(i) ||
			gjson.Get(m, "payload.extensions.fraised.offset").Int() != int64(i) {
			t.Fatalf("replay %s, want acme's seq and offset %d", m, i)
		}
	}
	c.pingPong() // nothing of globex follows
}

// TestResumeLongReplayIsPaced: 10,000 missed 1 KiB events (10 MB, ten
// times --max-outbound) are replayed without a slow-consumer cut, while
// more events are published: the client sees every offset once, in
// order, then the live ones.
func TestResumeLongReplayIsPaced(t *testing.T) {
	s := startHistory(t, func(o *server.Options) { o.MaxOutbound = 1 << 20 })
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	body := strings.Repeat("x", 1000)
	const missed, during = 10_000, 500
	for i := 1; i <= missed; i += 500 {
		pub.publishN("feed.big", i, 500, body)
	}
	c := connect(t, s.opts.Listen)
	if err := c.conn.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil { // the kernel holds little for it
		t.Fatal(err)
	}
	epoch := probeEpoch(t, c, "big")
	c.send(fmt.Sprintf(`{"id":"1","type":"subscribe","payload":{"query":"subscription { feed(room: \"big\") { seq body } }","extensions":{"fraised":{"resume":{"epoch":%q,"offset":0}}}}}`, epoch))
	done := make(chan struct{})
	go func() {
		defer close(done)
		live := dialPublisher(t, "tcp", s.opts.PublishListen)
		for i := missed + 1; i <= missed+during; i += 50 {
			live.publishN("feed.big", i, 50, body)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for i := 1; i <= missed+during; i++ {
		if i%100 == 0 {
			time.Sleep(2 * time.Millisecond) // a client slower than the server: unpaced, 10 MB would pile up
		}
		m, err := c.read()
		if err != nil {
			t.Fatalf("after %d events: %v", i-1, err)
		}
		if p := positionedOf(t, m); p.offset != uint64(i) || p.seq != int64(i) {
			t.Fatalf("event %d: got %+v", i, p)
		}
	}
	<-done
}

// probeEpoch learns the epoch of feed.room from an epoch_changed error.
func probeEpoch(t testing.TB, c *client, room string) string {
	t.Helper()
	c.subscribeResume("probe", room, "probe0000000", 0)
	m := c.next()
	e := gjson.Get(m, "payload.0.extensions.available.epoch").String()
	if e == "" {
		t.Fatalf("probe: %s", m)
	}
	return e
}

// TestPublishPositions: FPUBLISH answers [delivered, offset, epoch]
// (nulls without history), PUBLISH keeps its integer, and HTTP publish
// to a history topic answers the position.
func TestPublishPositions(t *testing.T) {
	s := startHistory(t, func(o *server.Options) { o.PublishToken = "tok" })
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	fpublish := func(topic string) []string {
		pub.write(resp.AppendArray(nil, []byte("FPUBLISH"), []byte(topic), []byte(`{"seq":1}`)))
		out := []string{pub.line(), pub.line(), pub.line(), pub.line()}
		if out[3] != "$-1" {
			out = append(out, pub.line()) // the epoch's bulk string
		}
		return out
	}
	got := fpublish("feed.p")
	if got[0] != "*3" || got[1] != ":0" || got[2] != ":1" || got[3] != "$12" || len(got[4]) != 12 {
		t.Fatalf("FPUBLISH replied %q", got)
	}
	epoch := got[4]
	if got := pub.publish("feed.p", `{"seq":2}`); got != ":0" {
		t.Fatalf("PUBLISH replied %q", got)
	}
	if got := fpublish("plain.p"); strings.Join(got, " ") != "*3 :0 $-1 $-1" {
		t.Fatalf("FPUBLISH without history replied %q", got)
	}
	post := func(topic string) string {
		req, _ := http.NewRequest("POST", "http://"+s.opts.Listen+"/publish/"+topic, strings.NewReader(`{"seq":3}`))
		req.Header.Set("Authorization", "Bearer tok")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if got, want := post("feed.p"), `{"delivered":0,"offset":3,"epoch":"`+epoch+`"}`; got != want {
		t.Fatalf("HTTP publish %s, want %s", got, want)
	}
	if got := post("plain.p"); got != `{"delivered":0}` {
		t.Fatalf("HTTP publish without history %s", got)
	}
}

// TestResumeInputErrors: a malformed subscribe resume is refused with an
// error message; a malformed connection_init one closes 4400.
func TestResumeInputErrors(t *testing.T) {
	s := startHistory(t, nil)
	c := connect(t, s.opts.Listen)
	for _, r := range []string{`{"epoch":"a\"b","offset":1}`, `{"epoch":"abc","offset":-1}`, `{"epoch":"abc","offset":1.5}`, `{"epoch":"abc"}`, `"x"`} {
		c.send(fmt.Sprintf(`{"id":"1","type":"subscribe","payload":{"query":%q,"variables":{"room":"r"},"extensions":{"fraised":{"resume":%s}}}}`, feedDoc, r))
		m := c.next()
		if gjson.Get(m, "type").String() != "error" || gjson.Get(m, "payload.0.extensions.code").String() != "FRAISED_RESUME_INVALID" {
			t.Fatalf("resume %s: got %s", r, m)
		}
	}
	for _, init := range []string{`{"fraised":{"resume":[]}}`, `{"fraised":{"resume":{"1":{"epoch":"","offset":0}}}}`} {
		d := dial(t, s.opts.Listen)
		d.send(`{"type":"connection_init","payload":` + init + `}`)
		if reason := d.expectClose(4400); !strings.Contains(reason, "resume") {
			t.Fatalf("init %s: reason %q", init, reason)
		}
	}
}

// TestResumeStorm: clients reconnect at random moments while events
// flow; each resumes from its last offset and ends with every event
// exactly once, in order (the bounded version of the soak's storm).
func TestResumeStorm(t *testing.T) {
	s := startHistory(t, nil)
	const clients, rate = 30, 2000
	dur := 2 * time.Second
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	pub.publishN("feed.storm", 1, 1, "") // the stream exists: its epoch is known
	epoch := probeEpoch(t, connect(t, s.opts.Listen), "storm")
	stop := make(chan struct{})
	var total atomic.Int64
	go func() {
		defer close(stop)
		seq := 2
		start := time.Now()
		for time.Since(start) < dur {
			pub.publishN("feed.storm", seq, rate/100, "")
			seq += rate / 100
			time.Sleep(10 * time.Millisecond)
		}
		total.Store(int64(seq - 1))
	}()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			errs <- stormClient(s.opts.Listen, epoch, seed, stop, &total)
		}(uint64(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// stormClient keeps a resumable subscription through random reconnects
// until publishing stopped and it has every event; it checks offsets
// arrive contiguously. Safe to run on its own goroutine.
func stormClient(addr, epoch string, seed uint64, stop <-chan struct{}, total *atomic.Int64) error {
	rng := rand.New(rand.NewPCG(seed, 7))
	last := uint64(0)
	reconnects := 0
	for {
		c, err := rawDial(addr)
		if err != nil {
			return err
		}
		pos := fmt.Sprintf(`{"s":{"epoch":%q,"offset":%d}}`, epoch, last) // 0 at first: from the oldest retained
		c.write(`{"type":"connection_init","payload":{"fraised":{"resume":` + pos + `}}}`)
		c.write(fmt.Sprintf(`{"id":"s","type":"subscribe","payload":{"query":%q,"variables":{"room":"storm"}}}`, feedDoc))
		cut := time.Now().Add(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		for {
			stopped := false
			select {
			case <-stop:
				stopped = true
			default:
			}
			if stopped && last == uint64(total.Load()) {
				c.conn.Close()
				if reconnects == 0 {
					return fmt.Errorf("client %d never reconnected", seed)
				}
				return nil
			}
			if !stopped && time.Now().After(cut) {
				c.conn.Close()
				reconnects++
				break
			}
			m, err := c.read(100 * time.Millisecond)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			if err != nil {
				return fmt.Errorf("client %d after offset %d: %v", seed, last, err)
			}
			if gjson.Get(m, "type").String() == "connection_ack" {
				continue
			}
			off := gjson.Get(m, "payload.extensions.fraised.offset").Uint()
			if gjson.Get(m, "type").String() != "next" || off != last+1 {
				return fmt.Errorf("client %d: after offset %d got %s", seed, last, m)
			}
			last = off
		}
	}
}

// wsRaw is a minimal graphql-transport-ws client for goroutines (no
// testing.TB calls).
type wsRaw struct {
	conn net.Conn
	r    *bufio.Reader
}

func rawDial(addr string) (*wsRaw, error) {
	d := ws.Dialer{Protocols: []string{"graphql-transport-ws"}, Timeout: 5 * time.Second}
	conn, br, _, err := d.Dial(context.Background(), "ws://"+addr+"/graphql")
	if err != nil {
		return nil, err
	}
	if br == nil {
		br = bufio.NewReader(conn)
	}
	return &wsRaw{conn: conn, r: br}, nil
}

func (c *wsRaw) write(msg string) { _ = wsutil.WriteClientText(c.conn, []byte(msg)) }

// read returns the next text message within d (a timeout keeps the
// connection usable only between frames; the caller reads again).
func (c *wsRaw) read(d time.Duration) (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			return "", err
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // a frame started: finish it
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(c.r, payload); err != nil {
			return "", err
		}
		switch h.OpCode {
		case ws.OpText:
			return string(payload), nil
		case ws.OpPing:
			_ = wsutil.WriteClientMessage(c.conn, ws.OpPong, payload)
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(payload)
			return "", wsutil.ClosedError{Code: code, Reason: reason}
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(d))
	}
}

// TestReplayOvertakenByTrimming: a replay waiting for a client that does
// not read, while publishing trims the events it has not sent yet, ends
// with the resume error after the last contiguous event it sent: never a
// silent gap.
func TestReplayOvertakenByTrimming(t *testing.T) {
	s := startHistory(t, nil)
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	body := strings.Repeat("y", 1000)
	pub.publishN("mid.t", 1, 2000, body)
	c := dialSmallWindow(t, s.opts.Listen)
	c.send(`{"type":"connection_init","payload":{}}`)
	c.expect(`{"type":"connection_ack"}`)
	doc := `subscription { mid(room: "t") { seq body } }`
	sub := func(id, epoch string) {
		c.send(fmt.Sprintf(`{"id":%q,"type":"subscribe","payload":{"query":%q,"extensions":{"fraised":{"resume":{"epoch":%q,"offset":0}}}}}`, id, doc, epoch))
	}
	sub("probe", "probe0000000")
	epoch := gjson.Get(c.next(), "payload.0.extensions.available.epoch").String()
	sub("1", epoch) // 2 MB to replay, and the client does not read yet
	time.Sleep(200 * time.Millisecond)
	pub.publishN("mid.t", 2001, 4000, body) // the stream keeps 2,000: 1..4,000 go
	var last uint64
	for {
		m, err := c.read()
		if err != nil {
			t.Fatalf("after offset %d: %v", last, err)
		}
		if gjson.Get(m, "type").String() == "error" {
			e := gjson.Get(m, "payload.0.extensions")
			if e.Get("reason").String() != "trimmed" || e.Get("requested.offset").Uint() != last || e.Get("available.first").Uint() != 4001 {
				t.Fatalf("after offset %d: %s", last, m)
			}
			break
		}
		p := positionedOf(t, m)
		if p.offset != last+1 {
			t.Fatalf("after offset %d got %+v", last, p)
		}
		last = p.offset
	}
	if last == 0 || last >= 4000 {
		t.Fatalf("the replay sent up to %d before the error", last)
	}
	c.pingPong() // the operation is over: nothing follows
}

// dialSmallWindow opens a WebSocket whose receive buffer is set to 4 KiB
// before connecting, so the kernel holds little for a client that does
// not read.
func dialSmallWindow(t testing.TB, addr string) *client {
	t.Helper()
	small := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
			if err != nil {
				return err
			}
			return serr
		}}
		return d.DialContext(ctx, network, addr)
	}
	return dialWith(t, addr, ws.Dialer{Protocols: []string{"graphql-transport-ws"}, Timeout: 5 * time.Second, NetDial: small})
}
