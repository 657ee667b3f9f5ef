package server

import (
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fraised/fraised/gql"
)

// flakyListener fails its first accepts with EMFILE, as a process out of
// file descriptors does, then hands out real connections.
type flakyListener struct {
	net.Listener
	failures atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// newListenerTestServer returns a server with no publish listener of its
// own, for tests that run the accept loop on a listener they make.
func newListenerTestServer(t *testing.T) *Server {
	t.Helper()
	schema, err := gql.LoadSchemaFile("../examples/schema.graphql", gql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Schema: schema, PublishListen: "-"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAcceptBacksOffAndKeepsServing: accept errors (EMFILE) never stop the
// publish listener; it backs off and serves the next publisher.
func TestAcceptBacksOffAndKeepsServing(t *testing.T) {
	s := newListenerTestServer(t)
	go s.d.Run()
	defer s.d.Stop()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &flakyListener{Listener: inner}
	l.failures.Store(5) // 5+10+20+40+80 ms of back-off
	done := make(chan struct{})
	go func() {
		s.pubs.accept(l)
		close(done)
	}()
	conn, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := conn.Read(buf); err != nil || string(buf) != "+PONG\r\n" {
		t.Fatalf("after EMFILE errors: %q, %v", buf, err)
	}
	inner.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("accept loop did not return after its listener closed")
	}
	if l.failures.Load() >= 0 {
		t.Fatal("the listener's failures were not all seen")
	}
}

// TestNegativePublishOptions: options that cannot work are refused with
// the flag to change.
func TestNegativePublishOptions(t *testing.T) {
	schema, err := gql.LoadSchemaFile("../examples/schema.graphql", gql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for flag, o := range map[string]Options{
		"--ring-bytes":           {RingBytes: -1},
		"--max-publishers":       {MaxPublishers: -1},
		"--publish-read-timeout": {PublishReadTimeout: -time.Second},
	} {
		o.Schema = schema
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s negative: New = %v, want an error naming the flag", flag, err)
		}
	}
}

// brokenListener fails every accept with EINVAL, as a listening socket
// that was shut down does.
type brokenListener struct{ net.Listener }

func (l brokenListener) Accept() (net.Conn, error) {
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EINVAL}
}

// TestAcceptStopsOnBrokenListener: an error no retry can mend ends the
// publish accept loop instead of retrying it forever.
func TestAcceptStopsOnBrokenListener(t *testing.T) {
	s := newListenerTestServer(t)
	s.stopAsked.Store(true) // no engine to stop in this test
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	done := make(chan struct{})
	go func() {
		s.pubs.accept(brokenListener{inner})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("accept loop kept retrying a broken listener")
	}
}
