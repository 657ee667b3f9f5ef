package server_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/server"
)

// handlerUpgrade opens a TCP connection to ts and sends a WebSocket
// upgrade; it returns the connection and the response's status and
// Retry-After.
func handlerUpgrade(t *testing.T, ts *httptest.Server) (net.Conn, int, string) {
	t.Helper()
	conn, err := net.Dial(ts.Listener.Addr().Network(), ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte(rawUpgrade)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	return conn, resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestHandlerCountsAgainstMaxConnections: Handler WebSockets hold slots
// of --max-connections, the same as the listener's connections: past the
// cap an upgrade gets 503 with Retry-After before it is upgraded, on
// Handler and on the listener, and a slot comes back when a connection
// ends. Plain HTTP requests to Handler are not counted.
func TestHandlerCountsAgainstMaxConnections(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxConnections = 2 })
	mux := http.NewServeMux()
	mux.Handle("/graphql", s.Handler())
	ts := httptest.NewServer(mux)
	defer ts.Close()

	first, st, _ := handlerUpgrade(t, ts)
	if st != http.StatusSwitchingProtocols {
		t.Fatalf("first upgrade: %d", st)
	}
	if _, st, _ := handlerUpgrade(t, ts); st != http.StatusSwitchingProtocols {
		t.Fatalf("second upgrade: %d", st)
	}
	if _, st, retry := handlerUpgrade(t, ts); st != http.StatusServiceUnavailable || retry == "" {
		t.Fatalf("third upgrade past --max-connections 2: %d (Retry-After %q), want 503 with Retry-After", st, retry)
	}
	if st := upgradeWith(t, dialFrom(t, "127.0.0.1", s.opts.Listen), nil, ""); st != http.StatusServiceUnavailable {
		t.Fatalf("listener upgrade while Handler holds the cap: %d, want 503", st)
	}
	resp, err := http.Post(ts.URL+"/graphql", "application/json", strings.NewReader(`{"query":"{ __typename }"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a query at the cap: %d; plain HTTP requests are the host's", resp.StatusCode)
	}
	if got := s.Stats().RefusedConns; got < 2 {
		t.Errorf("RefusedConns = %d, want the two refusals", got)
	}

	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, st, _ := handlerUpgrade(t, ts)
		if st == http.StatusSwitchingProtocols {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not given back after a Handler connection ended: %d", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHandlerCountsAgainstMaxIPConnections: --max-ip-connections holds
// for Handler WebSockets too, per client address.
func TestHandlerCountsAgainstMaxIPConnections(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxConnectionsPerAddr = 1 })
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if _, st, _ := handlerUpgrade(t, ts); st != http.StatusSwitchingProtocols {
		t.Fatalf("first upgrade: %d", st)
	}
	if _, st, retry := handlerUpgrade(t, ts); st != http.StatusServiceUnavailable || retry == "" {
		t.Fatalf("second upgrade from the same address: %d (Retry-After %q), want 503", st, retry)
	}
}

// TestHandlerRateLimitsConnectionsPerIP: --limit-ip-connections holds for
// Handler WebSockets as on the listener: past the burst an upgrade gets
// 429, counted, audited (conn.refused) and logged like the listener's.
func TestHandlerRateLimitsConnectionsPerIP(t *testing.T) {
	s, sink := startSecure(t, auth.ModeOff, func(o *server.Options) {
		o.Security.Limits.ConnsPerIP = ratelimit.Limit{Rate: 0.01, Burst: 1}
	})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if _, st, _ := handlerUpgrade(t, ts); st != http.StatusSwitchingProtocols {
		t.Fatalf("first upgrade: %d", st)
	}
	if _, st, _ := handlerUpgrade(t, ts); st != http.StatusTooManyRequests {
		t.Fatalf("second upgrade past the burst of 1: %d, want 429", st)
	}
	sink.wait(t, audit.EventConnRefused, func(r auditRec) bool { return strings.Contains(r.Reason, "connections per IP") })
	if st := s.Stats(); st.RefusedConns == 0 || st.RateLimited == 0 {
		t.Fatalf("refusal not counted: %+v", st)
	}
}

// TestHandlerOnUnixSocket: a Handler mounted on a Unix-socket server (a
// reverse proxy in front of it) has no client address to cap or rate:
// its WebSockets are not all counted as one address (which would refuse
// every client past --max-ip-connections), while --max-connections
// still holds.
func TestHandlerOnUnixSocket(t *testing.T) {
	s := startServer(t, func(o *server.Options) {
		o.MaxConnections = 3
		o.MaxConnectionsPerAddr = 1
		o.Security.Limits.ConnsPerIP = ratelimit.Limit{Rate: 0.01, Burst: 1}
	})
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "h.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	defer ts.Close()
	for i := range 3 {
		if _, st, _ := handlerUpgrade(t, ts); st != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade %d over the Unix socket: %d, want 101 (no client address to cap)", i+1, st)
		}
	}
	if _, st, retry := handlerUpgrade(t, ts); st != http.StatusServiceUnavailable || retry == "" {
		t.Fatalf("upgrade past --max-connections 3: %d (Retry-After %q), want 503", st, retry)
	}
}
