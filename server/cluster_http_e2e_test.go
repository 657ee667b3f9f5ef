package server_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/server"
)

// gatedCluster is a fakeCluster whose single publishes (the HTTP path's,
// through broker.Async) wait until released.
type gatedCluster struct {
	*fakeCluster
	entered chan struct{}
	release chan struct{}
}

func (g *gatedCluster) Publish(ctx context.Context, topic, payload []byte) (broker.Receipt, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.fakeCluster.Publish(ctx, topic, payload)
}

// startGatedPublish starts a server on a gatedCluster (with opts) and
// sends it an HTTP publish, returning once the broker holds it.
func startGatedPublish(t *testing.T, opts func(*server.Options)) (*testServer, *gatedCluster, net.Conn) {
	t.Helper()
	g := &gatedCluster{fakeCluster: newFakeCluster(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := startServer(t, func(o *server.Options) {
		o.Cluster = g
		o.PublishToken = "tok"
		if opts != nil {
			opts(o)
		}
	})
	conn, err := net.Dial("tcp", s.opts.Listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_, _ = conn.Write([]byte("POST /publish/t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nContent-Length: 7\r\n\r\n" + `{"n":1}`))
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the publish did not reach the broker within 10s")
	}
	return s, g, conn
}

// expectReceipt reads the answer to the publish on conn: 200 with the
// broker's receipt.
func expectReceipt(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the publish the broker took: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"nodes":7`) {
		t.Fatalf("answer %d %q, want 200 with the receipt", resp.StatusCode, b)
	}
}

// TestDrainAnswersClusterHTTPPublish: an HTTP publish the broker is still
// taking when Shutdown begins gets its 200 receipt before the server
// stops (the event was published: a client left without the answer would
// publish it again).
func TestDrainAnswersClusterHTTPPublish(t *testing.T) {
	s, g, conn := startGatedPublish(t, nil)
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		drained <- s.Shutdown(ctx)
	}()
	waitUntil(t, "draining", func() bool {
		c, err := net.Dial("tcp", s.opts.Listen)
		if err != nil {
			return true // the listener is closed: the drain has begun
		}
		c.Close()
		return false
	})
	close(g.release)
	expectReceipt(t, conn)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
}

// TestClusterHTTPPublishOutlivesReadTimeout: an HTTP publish the broker
// takes longer than --http-read-timeout to answer (within its own
// broker.AsyncTimeout) gets the broker's answer, not a 408: the request
// had arrived whole.
func TestClusterHTTPPublishOutlivesReadTimeout(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	_, g, conn := startGatedPublish(t, func(o *server.Options) { o.HTTPReadTimeout = readTimeout })
	time.Sleep(4 * readTimeout) // several housekeeper ticks past the read deadline
	close(g.release)
	expectReceipt(t, conn)
}
