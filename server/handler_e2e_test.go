package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gobwas/ws"

	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/server"
)

// dialTLS opens a graphql-transport-ws WebSocket to url (wss://) with the
// test server's certificate trusted and header added to the upgrade.
func dialTLS(t *testing.T, ts *httptest.Server, url string, header map[string]string) *client {
	t.Helper()
	pool := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	h := http.Header{}
	for k, v := range header {
		h.Set(k, v)
	}
	d := ws.Dialer{Protocols: []string{"graphql-transport-ws"}, Timeout: 5 * time.Second,
		TLSConfig: &tls.Config{RootCAs: pool}, Header: ws.HandshakeHeaderHTTP(h)}
	conn, br, _, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close() })
	if br == nil {
		br = bufio.NewReader(conn)
	}
	return &client{t: t, conn: conn, r: br}
}

// wssURL turns the test server's https:// URL into wss:// at path.
func wssURL(ts *httptest.Server, path string) string {
	return "wss://" + strings.TrimPrefix(ts.URL, "https://") + path
}

// TestHandlerOverTLSServeMux: fraised's Handler mounted on the standard
// ServeMux of a TLS server (*tls.Conn connections): a subscription gets
// events published with Publish, a query over the socket answers, and a
// query over plain HTTPS is GraphQL over HTTP.
func TestHandlerOverTLSServeMux(t *testing.T) {
	s := startServer(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/graphql", s.Handler())
	ts := httptest.NewTLSServer(mux)
	defer ts.Close()

	c := dialTLS(t, ts, wssURL(ts, "/graphql"), nil)
	c.send(`{"type":"connection_init"}`)
	c.expect(`{"type":"connection_ack"}`)
	c.send(`{"id":"q","type":"subscribe","payload":{"query":"{ __typename }"}}`)
	c.expect(`{"id":"q","type":"next","payload":{"data":{"__typename":"Query"}}}`)
	c.expect(`{"id":"q","type":"complete"}`)
	c.subscribe("1", eventsQuery, map[string]any{"t": "tls"})
	s.waitSubs(t, 1)
	for i := range 3 {
		if err := s.Publish(context.Background(), "tls", []byte(`{"seq":`+itoa(i)+`,"body":"b"}`)); err != nil {
			t.Fatal(err)
		}
		c.expect(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":` + itoa(i) + `,"body":"b"}}}}`)
	}

	resp, err := ts.Client().Post(ts.URL+"/graphql", "application/json", strings.NewReader(`{"query":"subscription { events(topic: \"x\") { seq } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "wss://"+strings.TrimPrefix(ts.URL, "https://")+"/graphql") {
		t.Errorf("a subscription over HTTPS: %s; want the error naming the wss:// endpoint", body)
	}
}

// TestHandlerChi: the Handler under a chi router at another path, behind
// a middleware; the client's close is echoed.
func TestHandlerChi(t *testing.T) {
	s := startServer(t, nil)
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Mw", "1")
			next.ServeHTTP(w, r)
		})
	})
	r.Handle("/api/graphql", s.Handler())
	ts := httptest.NewTLSServer(r)
	defer ts.Close()

	resp, err := ts.Client().Post(ts.URL+"/api/graphql", "application/json", strings.NewReader(`{"query":"{ __typename }"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"data":{"__typename":"Query"}}` || resp.Header.Get("X-Mw") != "1" {
		t.Fatalf("query through chi: %s %v", body, resp.Header)
	}
	c := dialTLS(t, ts, wssURL(ts, "/api/graphql"), nil)
	c.send(`{"type":"connection_init"}`)
	c.expect(`{"type":"connection_ack"}`)
	c.subscribe("1", eventsQuery, map[string]any{"t": "chi"})
	s.waitSubs(t, 1)
	if err := s.Publish(context.Background(), "chi", []byte(`{"seq":1}`)); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":1,"body":null}}}}`)
	_ = writeClientClose(c, ws.StatusNormalClosure)
	c.expectClose(ws.StatusNormalClosure)
	s.waitSubs(t, 0)
}

// TestHandlerSecurity: the Handler applies --auth required (4403 without
// a token; the upgrade's Authorization header is accepted), the Origin
// allowlist (403), and the init deadline (4408).
func TestHandlerSecurity(t *testing.T) {
	s, _ := startSecure(t, auth.ModeRequired, func(o *server.Options) { o.InitTimeout = 300 * time.Millisecond })
	mux := http.NewServeMux()
	mux.Handle("/graphql", s.Handler())
	ts := httptest.NewTLSServer(mux)
	defer ts.Close()
	url := wssURL(ts, "/graphql")

	c := dialTLS(t, ts, url, nil)
	c.send(`{"type":"connection_init"}`)
	c.expectClose(4403)

	c = dialTLS(t, ts, url, map[string]string{"Authorization": "Bearer " + mint(t, nil)})
	c.send(`{"type":"connection_init"}`)
	c.expect(`{"type":"connection_ack"}`)

	c = dialTLS(t, ts, url, nil)
	c.expectClose(4408) // no connection_init within InitTimeout

	pool := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	h := http.Header{}
	h.Set("Origin", "https://evil.example")
	d := ws.Dialer{Protocols: []string{"graphql-transport-ws"}, Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: pool}, Header: ws.HandshakeHeaderHTTP(h)}
	if _, _, _, err := d.Dial(context.Background(), url); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("upgrade from another origin: %v, want 403", err)
	}
}

// TestHandlerDrain: Shutdown closes the Handler's WebSockets with 1001
// after their queued frames.
func TestHandlerDrain(t *testing.T) {
	s := startServer(t, nil)
	ts := httptest.NewTLSServer(s.Handler())
	defer ts.Close()
	c := dialTLS(t, ts, wssURL(ts, "/"), nil)
	c.send(`{"type":"connection_init"}`)
	c.expect(`{"type":"connection_ack"}`)
	c.subscribe("1", eventsQuery, map[string]any{"t": "drain"})
	s.waitSubs(t, 1)
	if err := s.Publish(context.Background(), "drain", []byte(`{"seq":9}`)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	c.expect(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":9,"body":null}}}}`)
	c.expectClose(ws.StatusGoingAway)
	_ = writeClientClose(c, ws.StatusGoingAway)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestHandlerSlowConsumer: a client that stops reading is cut once its
// pending output passes --max-outbound, and the others keep receiving.
func TestHandlerSlowConsumer(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxOutbound = 64 << 10; o.WriteTimeout = time.Second })
	ts := httptest.NewTLSServer(s.Handler())
	defer ts.Close()
	slow := dialTLS(t, ts, wssURL(ts, "/"), nil)
	slow.send(`{"type":"connection_init"}`)
	slow.expect(`{"type":"connection_ack"}`)
	slow.subscribe("1", eventsQuery, map[string]any{"t": "flood"})
	fast := dialTLS(t, ts, wssURL(ts, "/"), nil)
	fast.send(`{"type":"connection_init"}`)
	fast.expect(`{"type":"connection_ack"}`)
	fast.subscribe("1", eventsQuery, map[string]any{"t": "flood"})
	s.waitSubs(t, 2)
	body := strings.Repeat("z", 4000)
	go func() { // the fast client reads everything
		for {
			if _, err := fast.read(); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for s.Stats().SlowConsumers == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client that does not read was not cut")
		}
		_ = s.Publish(context.Background(), "flood", []byte(`{"seq":1,"body":"`+body+`"}`))
	}
}

// writeClientClose sends a masked close frame with code.
func writeClientClose(c *client, code ws.StatusCode) error {
	return ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, ""))))
}

// TestHandlerKeepAlive: the Handler pings every KeepAlive and drops a
// client that sends nothing for two intervals; one that answers stays.
func TestHandlerKeepAlive(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.KeepAlive = 300 * time.Millisecond })
	ts := httptest.NewTLSServer(s.Handler())
	defer ts.Close()
	live := dialTLS(t, ts, wssURL(ts, "/"), nil)
	live.send(`{"type":"connection_init"}`)
	live.expect(`{"type":"connection_ack"}`)
	silent := dialTLS(t, ts, wssURL(ts, "/"), nil)
	silent.send(`{"type":"connection_init"}`)
	silent.expect(`{"type":"connection_ack"}`)
	_ = silent.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	dropped := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, silent.conn); dropped <- err }()
	for { // the live client keeps talking (and answers pings as it reads)
		select {
		case err := <-dropped:
			if err != nil {
				t.Fatalf("silent client: %v (want EOF once dropped)", err)
			}
			if d := time.Since(start); d < 500*time.Millisecond {
				t.Fatalf("silent client dropped after %v, before two keep-alive intervals", d)
			}
			live.send(`{"type":"ping"}`)
			live.expect(`{"type":"pong"}`)
			return
		case <-time.After(100 * time.Millisecond):
			live.send(`{"type":"ping"}`)
			live.expect(`{"type":"pong"}`)
		}
	}
}

// TestHandlerOutboundBudget: a Handler client that stops reading counts
// against --max-outbound-total and is cut by the budget sweep when it
// holds the most.
func TestHandlerOutboundBudget(t *testing.T) {
	s := startServer(t, func(o *server.Options) {
		o.MaxOutbound = 64 << 20 // far above the budget: only the budget can cut
		o.MaxOutboundTotal = 512 << 10
		o.WriteTimeout = 30 * time.Second
	})
	ts := httptest.NewTLSServer(s.Handler())
	defer ts.Close()
	slow := dialTLS(t, ts, wssURL(ts, "/"), nil)
	slow.send(`{"type":"connection_init"}`)
	slow.expect(`{"type":"connection_ack"}`)
	slow.subscribe("1", eventsQuery, map[string]any{"t": "budget"})
	s.waitSubs(t, 1)
	body := strings.Repeat("w", 8000)
	// 1000 events of 8 KB: 8 MB, far under --max-outbound (64 MiB) but 16
	// times the budget.
	for i := 0; i < 1000 && s.Stats().SlowConsumers == 0; i++ {
		_ = s.Publish(context.Background(), "budget", []byte(`{"seq":1,"body":"`+body+`"}`))
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().SlowConsumers == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not cut by the budget; held %d bytes", s.Stats().OutboundHeld)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
