package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/resp"
	"github.com/fraised/fraised/server"
)

// gatedSchema has a subscription whose resolver, run inline on the
// dispatcher (stallingResolvers), blocks it until the test opens the gate:
// the way to keep the ring full.
const gatedSchema = `
type Event { seq: Int }
type Query { x: String }
type Subscription {
  events(topic: String!): Event @topic(name: "{topic}")
  held: Event @topic(name: "held")
}
`

// gate blocks the dispatcher in a resolver.
type gate struct {
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 1), open: make(chan struct{})}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// startGated starts a server whose "held" subscription blocks the
// dispatcher, subscribes one client to it and returns the gate.
func startGated(t *testing.T, tweak func(*server.Options)) (*testServer, *gate) {
	t.Helper()
	g := newGate()
	resolvers := map[string]gql.ResolverFunc{
		"Subscription.held": func(ctx context.Context, p gql.ResolveParams) (any, error) {
			select {
			case g.entered <- struct{}{}:
			default:
			}
			select {
			case <-g.open:
			case <-time.After(20 * time.Second): // never hang the dispatcher for good
			}
			return map[string]any{"seq": gjson.GetBytes(p.Event, "seq").Int()}, nil
		},
	}
	schema, err := gql.LoadSchema("gated.graphql", gatedSchema, gql.Options{Resolvers: resolvers})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(o *server.Options) {
		o.Schema = schema
		o.Resolvers = stallingResolvers("Subscription.held")
		if tweak != nil {
			tweak(o)
		}
	})
	t.Cleanup(g.release)
	return s, g
}

// blockDispatcher subscribes a client to "held" and publishes one event to
// it, returning once the dispatcher is stuck in the resolver.
// subs is the number of subscriptions the server has before.
func blockDispatcher(t *testing.T, s *testServer, g *gate, p *publisher, subs int64) *client {
	t.Helper()
	c := connect(t, s.opts.Listen)
	c.subscribe("h", `subscription { held { seq } }`, nil)
	s.waitSubs(t, subs+1)
	p.write(resp.AppendArray(nil, []byte("PUBLISH"), []byte("held"), []byte(`{"seq":0}`)))
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the dispatcher never reached the gated resolver")
	}
	return c
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestHiddenPublishNeverRuns is issue 7.3's attack: with the ring kept
// full, a PUBLISH whose payload is over the limit hides a second PUBLISH
// inside the payload. The oversized command must be refused as a whole,
// the hidden one must never run, and every reply must belong to its
// command.
func TestHiddenPublishNeverRuns(t *testing.T) {
	s, g := startGated(t, func(o *server.Options) {
		o.RingSize = 2
		o.MaxPayload = 256
	})
	victim := connect(t, s.opts.Listen)
	victim.subscribe("v", `subscription { events(topic: "victim") { seq } }`, nil)
	s.waitSubs(t, 1)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	held := blockDispatcher(t, s, g, p, 1)

	const flood = 500 // events ahead of the attack: the ring stays full while they go through
	var in []byte
	for seq := 1; seq <= flood; seq++ {
		in = resp.AppendArray(in, []byte("PUBLISH"), []byte("held"), fmt.Appendf(nil, `{"seq":%d}`, seq))
	}
	// The hidden command ends the payload, after blanks: a parser that
	// resumed skipping from the start of the command instead of the start
	// of the payload would run the payload's last bytes as a command.
	hidden := []byte(`PUBLISH victim {"seq":666}`)
	payload := slices.Concat(bytes.Repeat([]byte("x"), 300), bytes.Repeat([]byte(" "), 60), hidden)
	in = resp.AppendArray(in, []byte("PUBLISH"), []byte("victim"), payload)
	in = resp.AppendArray(in, []byte("PUBLISH"), []byte("victim"), []byte(`{"seq":1}`))
	in = resp.AppendArray(in, []byte("PING"))
	p.write(in)
	waitUntil(t, "the ring is full", func() bool { return server.RingFull(s.Server) })
	g.release()

	want := []string{":1"} // the blocked event
	for range flood {
		want = append(want, ":1")
	}
	want = append(want, "-ERR payload too large (limit 256 bytes)", ":1", "+PONG")
	for i, w := range want {
		if got := p.line(); got != w {
			t.Fatalf("reply %d = %q, want %q", i, got, w)
		}
	}
	for seq := 0; seq <= flood; seq++ {
		held.expect(fmt.Sprintf(`{"id":"h","type":"next","payload":{"data":{"held":{"seq":%d}}}}`, seq))
	}
	victim.expect(`{"id":"v","type":"next","payload":{"data":{"events":{"seq":1}}}}`)
	if got := s.Stats().Published; got != flood+2 {
		t.Fatalf("%d events published, want %d: the hidden PUBLISH ran", got, flood+2)
	}
}

// TestHugeBulkLength: a bulk length orders of magnitude over the limit is
// answered with -ERR and the connection is closed, as Redis does, instead
// of the server swallowing the next terabyte.
func TestHugeBulkLength(t *testing.T) {
	s := startServer(t, nil)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	p.write([]byte("*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$999999999999\r\n*1\r\n$4\r\nPING\r\n"))
	if got := p.line(); got != "-ERR Protocol error: invalid bulk length" {
		t.Fatalf("reply %q", got)
	}
	p.expectEOF()
}

// TestTransactions: MULTI/EXEC as redis-py's and go-redis's transactional
// pipelines send them.
func TestTransactions(t *testing.T) {
	s := startServer(t, nil)
	c := connect(t, s.opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "tx"})
	s.waitSubs(t, 1)
	p := dialPublisher(t, "unix", s.opts.PublishUnix)
	pub := func(payload string) []byte {
		return resp.AppendArray(nil, []byte("PUBLISH"), []byte("tx"), []byte(payload))
	}
	steps := []struct {
		name string
		in   []byte
		want []string
	}{
		{"exec", slices.Concat([]byte("*1\r\n$5\r\nMULTI\r\n"), pub(`{"seq":1}`), pub(`{"seq":2}`), []byte("PING\r\nEXEC\r\n")),
			[]string{"+OK", "+QUEUED", "+QUEUED", "+QUEUED", "*3", ":1", ":1", "+PONG"}},
		{"refused while queuing aborts", slices.Concat([]byte("MULTI\r\n"), pub(`{"seq":3}`), pub(`not json`), []byte("EXEC\r\n")),
			[]string{"+OK", "+QUEUED", "-ERR payload must be a JSON object", "-EXECABORT Transaction discarded because of previous errors."}},
		{"unknown command aborts", slices.Concat([]byte("MULTI\r\n"), pub(`{"seq":4}`), []byte("GET k\r\nEXEC\r\n")),
			[]string{"+OK", "+QUEUED", "-ERR 'GET' is not supported inside MULTI (queue PUBLISH, FPUBLISH, PING or ECHO)", "-EXECABORT Transaction discarded because of previous errors."}},
		{"discard", slices.Concat([]byte("MULTI\r\n"), pub(`{"seq":5}`), []byte("DISCARD\r\n")),
			[]string{"+OK", "+QUEUED", "+OK"}},
		{"empty", []byte("MULTI\r\nEXEC\r\n"), []string{"+OK", "*0"}},
		{"errors", []byte("EXEC\r\nDISCARD\r\nMULTI\r\nMULTI\r\nEXEC\r\n"),
			[]string{"-ERR EXEC without MULTI", "-ERR DISCARD without MULTI", "+OK", "-ERR MULTI calls can not be nested", "*0"}},
		{"after", pub(`{"seq":6}`), []string{":1"}},
	}
	for _, st := range steps {
		p.write(st.in)
		for i, w := range st.want {
			if got := p.line(); got != w {
				t.Fatalf("%s: reply %d = %q, want %q", st.name, i, got, w)
			}
		}
	}
	for _, seq := range []int{1, 2, 6} { // nothing of the aborted or discarded transactions
		c.expect(fmt.Sprintf(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":%d,"body":null}}}}`, seq))
	}
}

// TestHandshakeCommands: the connection commands common clients send get
// the answers they expect.
func TestHandshakeCommands(t *testing.T) {
	s := startServer(t, nil)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	tests := []struct {
		in   string
		want []string
	}{
		{"HELLO 3\r\n", []string{"%7", "$6", "server", "$7", "fraised", "$7", "version", "$5", "7.0.0", "$5", "proto", ":3", "$2", "id", ":1",
			"$4", "mode", "$10", "standalone", "$4", "role", "$6", "master", "$7", "modules", "*0"}},
		{"COMMAND DOCS\r\n", []string{"%0"}},
		{"HELLO 2 SETNAME app\r\n", []string{"*14", "$6", "server", "$7", "fraised", "$7", "version", "$5", "7.0.0", "$5", "proto", ":2", "$2", "id", ":1",
			"$4", "mode", "$10", "standalone", "$4", "role", "$6", "master", "$7", "modules", "*0"}},
		{"CLIENT GETNAME\r\n", []string{"$3", "app"}},
		{"HELLO 4\r\n", []string{"-NOPROTO unsupported protocol version"}},
		{"HELLO 3 AUTH u p\r\n", []string{"-ERR AUTH is not supported: fraised publishers are trusted backends (keep --publish-listen on a private address)"}},
		{"CLIENT SETINFO LIB-NAME redis-py\r\nCLIENT SETINFO LIB-VER 5.0\r\nCLIENT SETNAME worker-1\r\n", []string{"+OK", "+OK", "+OK"}},
		{"CLIENT SETNAME 'a b'\r\n", []string{"-ERR Client names cannot contain spaces, newlines or special characters."}},
		{"CLIENT ID\r\nCLIENT KILL x\r\n", []string{":1", "-ERR unknown subcommand or wrong number of arguments for 'KILL'. Try CLIENT HELP."}},
		{"SELECT 0\r\nSELECT 1\r\nSELECT x\r\n", []string{"+OK", "-ERR DB index is out of range (fraised has only database 0)", "-ERR value is not an integer or out of range"}},
		{"COMMAND DOCS\r\nCOMMAND\r\nCOMMAND COUNT\r\n", []string{"*0", "*0", ":0"}},
		{"ECHO hi\r\nPING\r\nPING x\r\nECHO\r\n", []string{"$2", "hi", "+PONG", "$1", "x", "-ERR wrong number of arguments for 'echo' command"}},
		{"INFO\r\n", []string{"$103", "# Server", "redis_version:7.0.0", "redis_mode:standalone", "server_name:fraised", "", "# Persistence", "loading:0", ""}},
		{"QUIT\r\n", []string{"+OK"}},
	}
	for _, tt := range tests {
		p.write([]byte(tt.in))
		for i, w := range tt.want {
			if got := p.line(); got != w {
				t.Fatalf("%q: line %d = %q, want %q", tt.in, i, got, w)
			}
		}
	}
	p.expectEOF()
}

// TestBlockedPublisherIsNotRead: while the ring is full, a publisher's
// socket is not read at all, so what it can write is bounded by the
// kernel's buffers and one read buffer (issue 8: gnet's inbound buffer
// used to absorb 8-64 MiB), and everything it wrote is answered in order
// once the ring drains.
func TestBlockedPublisherIsNotRead(t *testing.T) {
	s, g := startGated(t, func(o *server.Options) { o.RingSize = 64 })
	p := dialPublisher(t, "unix", s.opts.PublishUnix)
	blockDispatcher(t, s, g, p, 0)
	cmd := resp.AppendArray(nil, []byte("PUBLISH"), []byte("nobody"), []byte(`{"seq":1}`))
	chunk := bytes.Repeat(cmd, (64<<10)/len(cmd))
	written := writeUntilBlocked(t, p.conn, chunk)
	const bound = 16 << 20
	if written > bound {
		t.Fatalf("the server read %d bytes from a publisher it could not serve (want at most %d)", written, bound)
	}
	waitUntil(t, "the publisher waits for ring space", func() bool { return server.WaitingPublishers(s.Server) == 1 })
	g.release()
	if rest := written % len(cmd); rest != 0 {
		go p.conn.Write(cmd[rest:]) // finish the last command
	}
	if got := p.line(); got != ":1" { // the gated event
		t.Fatalf("reply %q", got)
	}
	for i := 0; i < (written+len(cmd)-1)/len(cmd); i++ {
		if got := p.line(); got != ":0" {
			t.Fatalf("reply %d = %q, want :0", i, got)
		}
	}
	t.Logf("a blocked publisher could write %d bytes before TCP held it back", written)
}

// writeUntilBlocked writes chunk repeatedly until a write makes no
// progress for a second, and returns the bytes written (the last command
// may be partial).
func writeUntilBlocked(t *testing.T, conn net.Conn, chunk []byte) int {
	t.Helper()
	written := 0
	for written < 256<<20 {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := conn.Write(chunk)
		written += n
		if err != nil {
			if !os.IsTimeout(err) {
				t.Fatalf("write: %v", err)
			}
			break
		}
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return written
}

// TestUnreadRepliesStopReading: a publisher that never reads its replies
// is not read either once its unsent replies pass the cap, so it cannot
// grow the server's memory; when it reads at last, every reply arrives,
// in order.
func TestUnreadRepliesStopReading(t *testing.T) {
	s := startServer(t, nil)
	p := dialPublisher(t, "unix", s.opts.PublishUnix)
	ping := []byte("*1\r\n$4\r\nPING\r\n")
	written := writeUntilBlocked(t, p.conn, bytes.Repeat(ping, 4096))
	// 1 MiB of unsent +PONG replies is ~150k commands (2.2 MB); add the
	// read buffer and the kernel's socket buffers both ways.
	const bound = 16 << 20
	if written > bound {
		t.Fatalf("the server read %d bytes from a publisher that reads no replies (want at most %d)", written, bound)
	}
	if rest := written % len(ping); rest != 0 {
		go p.conn.Write(ping[rest:])
	}
	for i := 0; i < (written+len(ping)-1)/len(ping); i++ {
		if got := p.line(); got != "+PONG" {
			t.Fatalf("reply %d = %q", i, got)
		}
	}
	t.Logf("a publisher reading no replies could write %d bytes", written)
}

// TestPartialCommandDeadline: half a command followed by silence is cut
// after --publish-read-timeout, and so is a command trickled byte by byte;
// an idle publisher (no partial command) stays connected.
func TestPartialCommandDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := startServer(t, func(o *server.Options) { o.PublishReadTimeout = timeout })
	idle := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := idle.publish("t", `{"a":1}`); got != ":0" {
		t.Fatalf("reply %q", got)
	}
	half := dialPublisher(t, "tcp", s.opts.PublishListen)
	start := time.Now()
	half.write([]byte("*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$7\r\n{\"a\""))
	if got := half.line(); got != "-ERR Protocol error: command not completed within 300ms (--publish-read-timeout)" {
		t.Fatalf("reply %q", got)
	}
	half.expectEOF()
	if d := time.Since(start); d < timeout {
		t.Fatalf("cut after %s, before the %s deadline", d, timeout)
	}
	trickle := dialPublisher(t, "tcp", s.opts.PublishListen)
	cmd := resp.AppendArray(nil, []byte("PUBLISH"), []byte("t"), []byte(`{"a":1}`))
	cut := false
	for _, b := range cmd {
		if _, err := trickle.conn.Write([]byte{b}); err != nil {
			cut = true
			break
		}
		time.Sleep(timeout / 8)
	}
	if !cut {
		trickle.expectEOFAfterError(t)
	}
	// The idle publisher outlived several deadlines.
	if got := idle.publish("t", `{"a":2}`); got != ":0" {
		t.Fatalf("idle publisher: reply %q", got)
	}
}

// expectEOFAfterError reads one -ERR reply, then the close.
func (p *publisher) expectEOFAfterError(t *testing.T) {
	t.Helper()
	if got := p.line(); !strings.HasPrefix(got, "-ERR Protocol error: command not completed") {
		t.Fatalf("reply %q", got)
	}
	p.expectEOF()
}

// TestMaxPublishers: past --max-publishers a publisher gets Redis's error
// and is closed; a slot freed is reusable.
func TestMaxPublishers(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxPublishers = 2 })
	a := dialPublisher(t, "tcp", s.opts.PublishListen)
	b := dialPublisher(t, "unix", s.opts.PublishUnix)
	for _, p := range []*publisher{a, b} {
		if got := p.publish("t", `{}`); got != ":0" {
			t.Fatalf("reply %q", got)
		}
	}
	c := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := c.line(); got != "-ERR max number of clients reached" {
		t.Fatalf("third publisher: %q", got)
	}
	c.expectEOF()
	a.conn.Close()
	waitUntil(t, "the closed publisher is gone", func() bool { return server.Publishers(s.Server) == 1 })
	d := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := d.publish("t", `{}`); got != ":0" {
		t.Fatalf("publisher in the freed slot: %q", got)
	}
}

// TestDrainRefusesPublishes: once Shutdown starts, RESP publishes answer
// -ERR and HTTP publishes 503, new publishers are refused, and events
// acknowledged before are still delivered.
func TestDrainRefusesPublishes(t *testing.T) {
	s, g := startGated(t, func(o *server.Options) { o.PublishToken = "tok" })
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	held := blockDispatcher(t, s, g, p, 0)
	p.write(resp.AppendArray(nil, []byte("PUBLISH"), []byte("held"), []byte(`{"seq":1}`))) // waits in the ring
	waitUntil(t, "the second event is in the ring", func() bool { return server.RingBytes(s.Server) > 0 })
	web, err := net.Dial("tcp", s.opts.Listen) // HTTP publisher connected before the drain
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	webr := bufio.NewReader(web)
	fmt.Fprintf(web, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") // served: not refused by the drain
	_ = web.SetReadDeadline(time.Now().Add(5 * time.Second))
	if res, err := http.ReadResponse(webr, nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz before the drain: %v %v", res, err)
	} else {
		io.Copy(io.Discard, res.Body)
	}

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	waitUntil(t, "new publishers are refused", func() bool {
		c, err := net.Dial("tcp", s.opts.PublishListen)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	p.write(resp.AppendArray(nil, []byte("PUBLISH"), []byte("held"), []byte(`{"seq":2}`)))
	body := `{"seq":3}`
	fmt.Fprintf(web, "POST /publish/held HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	_ = web.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(webr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("HTTP publish while draining: %d", res.StatusCode)
	}
	g.release()
	for i, w := range []string{":1", ":1", "-ERR server is draining (shutting down): publish to another instance or retry after it restarts"} {
		if got := p.line(); got != w {
			t.Fatalf("reply %d = %q, want %q", i, got, w)
		}
	}
	p.expectEOF()
	for seq := 0; seq <= 1; seq++ {
		held.expect(fmt.Sprintf(`{"id":"h","type":"next","payload":{"data":{"held":{"seq":%d}}}}`, seq))
	}
	held.expectClose(1001)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestRingByteBudget: the ring holds at most --ring-bytes of events (one
// event more at most), however many slots are free.
func TestRingByteBudget(t *testing.T) {
	const budget = 16 << 10
	s, g := startGated(t, func(o *server.Options) { o.RingBytes = budget })
	p := dialPublisher(t, "unix", s.opts.PublishUnix)
	blockDispatcher(t, s, g, p, 0)
	event := fmt.Appendf(nil, `{"seq":1,"pad":"%s"}`, bytes.Repeat([]byte("x"), 1000))
	var in []byte
	const n = 100 // 100 KB of events: six times the budget
	for range n {
		in = resp.AppendArray(in, []byte("PUBLISH"), []byte("nobody"), event)
	}
	p.write(in)
	waitUntil(t, "the publisher waits for ring space", func() bool { return server.WaitingPublishers(s.Server) == 1 })
	if got := server.RingBytes(s.Server); got > budget {
		t.Fatalf("%d bytes in the ring, budget %d", got, budget)
	}
	g.release()
	if got := p.line(); got != ":1" {
		t.Fatalf("reply %q", got)
	}
	for i := range n {
		if got := p.line(); got != ":0" {
			t.Fatalf("reply %d = %q", i, got)
		}
	}
}

// TestRateLimitChargedOncePerCommand: a command that waits for ring space
// is charged against the publish rate limit once, not once per retry.
func TestRateLimitChargedOncePerCommand(t *testing.T) {
	const burst = 8
	s, g := startGated(t, func(o *server.Options) {
		o.RingSize = 2
		o.Security.Limits.PublishesPerConn = ratelimit.Limit{Rate: 0.001, Burst: burst}
	})
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	blockDispatcher(t, s, g, p, 0) // the first of the burst
	var in []byte
	for seq := 1; seq < burst; seq++ {
		in = resp.AppendArray(in, []byte("PUBLISH"), []byte("nobody"), fmt.Appendf(nil, `{"seq":%d}`, seq))
	}
	p.write(in)
	waitUntil(t, "the publisher waits for ring space", func() bool { return server.WaitingPublishers(s.Server) == 1 })
	g.release()
	if got := p.line(); got != ":1" {
		t.Fatalf("reply %q", got)
	}
	for i := 1; i < burst; i++ {
		if got := p.line(); got != ":0" {
			t.Fatalf("command %d of a burst of %d: reply %q (charged more than once?)", i, burst, got)
		}
	}
	if got := p.publish("nobody", `{}`); got != "-ERR rate limit exceeded: publish commands on this connection" {
		t.Fatalf("command past the burst: %q", got)
	}
}

// TestHTTPPublishWaitsForRingSpace: an HTTP publish that finds the ring
// full waits its turn (on its event loop, without blocking it) and is
// answered once there is room.
func TestHTTPPublishWaitsForRingSpace(t *testing.T) {
	s, g := startGated(t, func(o *server.Options) {
		o.RingSize = 2
		o.PublishToken = "tok"
	})
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	held := blockDispatcher(t, s, g, p, 0)
	var in []byte
	for seq := 1; seq <= 3; seq++ {
		in = resp.AppendArray(in, []byte("PUBLISH"), []byte("held"), fmt.Appendf(nil, `{"seq":%d}`, seq))
	}
	p.write(in)
	waitUntil(t, "the ring is full", func() bool { return server.RingFull(s.Server) })
	done := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+s.opts.Listen+"/publish/held", strings.NewReader(`{"seq":4}`))
		req.Header.Set("Authorization", "Bearer tok")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- fmt.Sprintf("%d %s", res.StatusCode, b)
	}()
	waitUntil(t, "two publishers wait for ring space", func() bool { return server.WaitingPublishers(s.Server) == 2 })
	g.release()
	select {
	case got := <-done:
		if got != `200 {"delivered":1}` {
			t.Fatalf("HTTP publish: %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("HTTP publish never answered")
	}
	// The RESP publisher's events arrive in its command order; the HTTP
	// event (seq 4) is another publisher's, so it may come before seq 3:
	// a woken publisher's retry races the next one's turn.
	var resp []string
	gotHTTP := false
	for range 5 {
		m := held.next()
		if m == `{"id":"h","type":"next","payload":{"data":{"held":{"seq":4}}}}` && !gotHTTP {
			gotHTTP = true
			continue
		}
		resp = append(resp, m)
	}
	for seq, m := range resp {
		if want := fmt.Sprintf(`{"id":"h","type":"next","payload":{"data":{"held":{"seq":%d}}}}`, seq); m != want || !gotHTTP {
			t.Fatalf("deliveries: RESP %q (HTTP seen: %v), want seq 0..3 in order and seq 4", resp, gotHTTP)
		}
	}
}
