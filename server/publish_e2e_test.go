package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/resp"
	"github.com/fraised/fraised/server"
)

func TestPublishOverTCPAndUnix(t *testing.T) {
	s := startServer(t, nil)
	c := connect(t, s.opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "t1"})
	s.waitSubs(t, 1)
	for _, p := range []*publisher{
		dialPublisher(t, "tcp", s.opts.PublishListen),
		dialPublisher(t, "unix", s.opts.PublishUnix),
	} {
		if got := p.publish("t1", `{"seq":7,"body":"x"}`); got != ":1" {
			t.Fatalf("reply %q", got)
		}
		c.expect(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":7,"body":"x"}}}}`)
	}
}

func TestPublishReplies(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxPayload = 64 })
	c := connect(t, s.opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "t"})
	s.waitSubs(t, 1)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	tests := []struct {
		name, in, want string
	}{
		{"ping", "*1\r\n$4\r\nPING\r\n", "+PONG"},
		{"inline ping", "PING\r\n", "+PONG"},
		{"inline publish", `PUBLISH t '{"seq":1}'` + "\r\n", ":1"},
		{"inline publish unquoted", `publish t {"seq":2}` + "\r\n", ":1"},
		{"not JSON", string(resp.AppendArray(nil, []byte("PUBLISH"), []byte("t"), []byte("nope"))), "-ERR payload must be a JSON object"},
		{"JSON array", string(resp.AppendArray(nil, []byte("PUBLISH"), []byte("t"), []byte("[1]"))), "-ERR payload must be a JSON object"},
		{"unknown command", "*1\r\n$3\r\nGET\r\n", "-ERR unknown command 'GET'"},
		{"wrong arity", "*2\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n", "-ERR wrong number of arguments for 'publish' command"},
		{"oversized", string(resp.AppendArray(nil, []byte("PUBLISH"), []byte("t"), []byte(`{"b":"`+strings.Repeat("x", 100)+`"}`))), "-ERR"},
		{"still works", string(resp.AppendArray(nil, []byte("PUBLISH"), []byte("t"), []byte(`{"seq":3}`))), ":1"},
	}
	for _, tt := range tests {
		p.write([]byte(tt.in))
		if got := p.line(); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: reply %q, want prefix %q", tt.name, got, tt.want)
		}
	}
	// A malformed header desynchronises the stream: answered, then closed.
	p.write([]byte("*2\r\n$x\r\n"))
	if got := p.line(); got != "-ERR Protocol error: invalid bulk length" {
		t.Errorf("malformed: reply %q", got)
	}
	p.expectEOF()
	for _, seq := range []int{1, 2, 3} {
		c.expect(fmt.Sprintf(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":%d,"body":null}}}}`, seq))
	}
}

// TestPipelinedOrder publishes a pipelined burst mixing good and bad
// commands: replies come in command order and events arrive in publish order.
func TestPipelinedOrder(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.RingSize = 64 }) // small ring: exercise backpressure
	subs := make([]*client, 3)
	for i := range subs {
		subs[i] = connect(t, s.opts.Listen)
		subs[i].subscribe("s", eventsQuery, map[string]any{"t": "order"})
	}
	s.waitSubs(t, 3)
	p := dialPublisher(t, "unix", s.opts.PublishUnix)
	const n = 2000
	var buf []byte
	var want []string
	for i := 0; i < n; i++ {
		if i%100 == 50 {
			buf = append(buf, "*1\r\n$4\r\nPING\r\n"...)
			want = append(want, "+PONG")
			buf = resp.AppendArray(buf, []byte("PUBLISH"), []byte("order"), []byte("bad"))
			want = append(want, "-ERR payload must be a JSON object")
		}
		buf = resp.AppendArray(buf, []byte("PUBLISH"), []byte("order"), []byte(fmt.Sprintf(`{"seq":%d}`, i)))
		want = append(want, ":3")
	}
	go p.conn.Write(buf)
	for i, w := range want {
		if got := p.line(); got != w {
			t.Fatalf("reply %d = %q, want %q", i, got, w)
		}
	}
	for _, c := range subs {
		for i := 0; i < n; i++ {
			m := c.next()
			if seq := gjson.Get(m, "payload.data.events.seq").Int(); seq != int64(i) {
				t.Fatalf("event %d has seq %d", i, seq)
			}
		}
	}
}

func TestHTTPPublish(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.PublishToken = "s3cret" })
	c := connect(t, s.opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "web"})
	s.waitSubs(t, 1)
	post := func(token, body string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+s.opts.Listen+"/publish/web", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := post("", `{"seq":1}`); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := post("wrong", `{"seq":1}`); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _ := post("s3cret", `not json`); code != 400 {
		t.Fatalf("bad body: %d", code)
	}
	code, body := post("s3cret", `{"seq":5}`)
	if code != 200 || body != `{"delivered":1}` {
		t.Fatalf("publish: %d %s", code, body)
	}
	c.expect(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":5,"body":null}}}}`)
}

func TestHTTPPublishDisabledWithoutToken(t *testing.T) {
	s := startServer(t, nil)
	res, err := http.Post("http://"+s.opts.Listen+"/publish/x", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("status %d, want 404", res.StatusCode)
	}
	res, err = http.Get("http://" + s.opts.Listen + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("healthz %d", res.StatusCode)
	}
}

// TestSlowConsumerIsolation: a subscriber that stops reading is cut off
// with a close reason; the others get every event. The publisher sends in
// chunks and waits for the fast clients after each, so they never lag
// (the test does not depend on the machine's speed); the slow client's
// backlog grows past the kernel's socket buffers and then the cap.
func TestSlowConsumerIsolation(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxOutbound = 256 << 10 })
	slow := connect(t, s.opts.Listen)
	slow.subscribe("1", eventsQuery, map[string]any{"t": "firehose"})
	fast := make([]*client, 3)
	for i := range fast {
		fast[i] = connect(t, s.opts.Listen)
		fast[i].subscribe("1", eventsQuery, map[string]any{"t": "firehose"})
	}
	s.waitSubs(t, 4)
	const chunks, perChunk = 40, 500
	body := strings.Repeat("x", 1000) // 40 chunks × 500 × ~1 KB = 20 MB for the slow client
	progress := make(chan int, len(fast)*chunks)
	var wg sync.WaitGroup
	for _, c := range fast {
		wg.Add(1)
		go func(c *client) {
			defer wg.Done()
			for i := 0; i < chunks*perChunk; i++ {
				m, err := c.read()
				if err != nil {
					t.Errorf("fast client: %v after %d events", err, i)
					return
				}
				if seq := gjson.Get(m, "payload.data.events.seq").Int(); seq != int64(i) {
					t.Errorf("fast client got seq %d, want %d", seq, i)
					return
				}
				if (i+1)%perChunk == 0 {
					progress <- i + 1
				}
			}
		}(c)
	}
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	for chunk := 0; chunk < chunks; chunk++ {
		var buf bytes.Buffer
		for i := chunk * perChunk; i < (chunk+1)*perChunk; i++ {
			buf.Write(resp.AppendArray(nil, []byte("PUBLISH"), []byte("firehose"), []byte(fmt.Sprintf(`{"seq":%d,"body":%q}`, i, body))))
		}
		p.write(buf.Bytes())
		for i := 0; i < perChunk; i++ {
			p.line()
		}
		for range fast {
			select {
			case <-progress:
			case <-time.After(10 * time.Second):
				t.Fatalf("fast clients stalled in chunk %d", chunk)
			}
		}
	}
	wg.Wait()
	if got := s.Stats().SlowConsumers; got != 1 {
		t.Fatalf("slow consumers = %d, want 1", got)
	}
	// The slow client, reading at last, finds its stream ends.
	_ = slow.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, slow.conn); err != nil && !isClosedErr(err) {
		t.Fatalf("slow client: %v", err)
	}
}

func isClosedErr(err error) bool {
	ne, ok := err.(net.Error)
	return !ok || !ne.Timeout()
}
