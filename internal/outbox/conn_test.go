package outbox

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// tryAgainLater is close code 1013, a slow consumer's.
const tryAgainLater ws.StatusCode = 1013

// connOwner is a testOwner that closes the connection on Hangup, as a
// real one does.
type connOwner struct {
	testOwner
	conn net.Conn
}

func (o *connOwner) Hangup() { o.testOwner.Hangup(); _ = o.conn.Close() }

// tlsPair returns the server and client ends of a TLS connection over
// loopback TCP.
func tlsPair(t *testing.T) (server, client *tls.Conn) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *tls.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- tls.Server(c, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	}()
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client = tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	server = <-accepted
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// newConnOutbox returns an outbox on conn with its writer goroutine
// running, and a channel closed when WriteLoop returns.
func newConnOutbox(t *testing.T, conn net.Conn, timeout time.Duration) (*Outbox, *connOwner, chan struct{}) {
	t.Helper()
	w, err := NewWriter(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	owner := &connOwner{conn: conn}
	o := &Outbox{}
	o.InitConn(conn, w, owner, timeout)
	done := make(chan struct{})
	go func() { o.WriteLoop(); close(done) }()
	t.Cleanup(func() { o.Close(); <-done })
	return o, owner, done
}

// TestConnWriterOverTLS: frames delivered to an outbox on a *tls.Conn
// arrive whole and in order, the close frame last, then EOF (the write
// side is shut after it); the writer goroutine then returns.
func TestConnWriterOverTLS(t *testing.T) {
	srv, cli := tlsPair(t)
	o, _, done := newConnOutbox(t, srv, 10*time.Second)
	payload := bytes.Repeat([]byte("x"), 1000)
	const count = 500
	for range count {
		if _, _, ok := o.Deliver([]byte(`"1"`), payload, 1<<20); !ok {
			t.Fatal("output ended")
		}
	}
	o.Flush()
	if !o.EndWithClose(ws.StatusNormalClosure, "bye", false) {
		t.Fatal("EndWithClose refused")
	}
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(cli) // until EOF: the write side was shut
	if err != nil {
		t.Fatalf("read: %v after %d bytes", err, len(got))
	}
	hs := frames(t, got)
	if len(hs) != count+1 || hs[count].OpCode != ws.OpClose {
		t.Fatalf("got %d frames, last %v; want %d next frames and a close frame", len(hs), hs[len(hs)-1].OpCode, count)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WriteLoop did not return after the last output")
	}
	if !o.PeerClose() {
		t.Fatal("PeerClose: the close frame is written but the outbox does not say so")
	}
}

// TestConnWriterCut: a cut drops the frames not yet taken by the writer
// and ends with the close frame; nothing torn reaches the peer.
func TestConnWriterCut(t *testing.T) {
	srv, cli := net.Pipe() // synchronous: the writer blocks until the peer reads
	o, _, _ := newConnOutbox(t, srv, 10*time.Second)
	payload := bytes.Repeat([]byte("y"), 100)
	for range 100 {
		o.Deliver([]byte(`"1"`), payload, 0) // flush each: the writer takes the first while others queue
	}
	if !o.Cut(tryAgainLater, "slow consumer") {
		t.Fatal("Cut refused")
	}
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := cli.Read(buf)
		got = append(got, buf[:n]...)
		if hs, ok := tryFrames(got); ok && len(hs) > 0 && hs[len(hs)-1].OpCode == ws.OpClose {
			break
		}
		if err != nil {
			t.Fatalf("read: %v after %d bytes", err, len(got))
		}
	}
	hs := frames(t, got)
	if len(hs) >= 101 {
		t.Fatalf("all %d frames arrived: the cut dropped nothing", len(hs)-1)
	}
	last := got[len(got)-int(hs[len(hs)-1].Length):]
	if code := ws.StatusCode(uint16(last[0])<<8 | uint16(last[1])); code != tryAgainLater {
		t.Fatalf("close code %d, want 1013", code)
	}
}

// TestConnWriterStalledPeerHungUp: a peer that reads nothing is hung up
// once a write has waited for the write timeout, and the writer returns;
// the held bytes are given back.
func TestConnWriterStalledPeerHungUp(t *testing.T) {
	srv, _ := net.Pipe() // nobody reads the other end
	o, owner, done := newConnOutbox(t, srv, 100*time.Millisecond)
	o.Deliver([]byte(`"1"`), []byte(`{"a":1}`), 0)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer is still blocked on a peer that reads nothing")
	}
	if owner.hangups.Load() != 1 {
		t.Fatalf("hangups = %d, want 1", owner.hangups.Load())
	}
	if h := o.w.Held(); h != 0 {
		t.Fatalf("%d bytes still counted as held", h)
	}
}

// TestConnWriterIdleWakesOnce: while the writer is busy, further
// deliveries do not signal it again (the wake-up happens only when the
// output goes from idle to pending), and all of them arrive.
func TestConnWriterIdleWakesOnce(t *testing.T) {
	srv, cli := net.Pipe()
	o, _, _ := newConnOutbox(t, srv, 10*time.Second)
	want := 0
	for i := range 50 {
		n, _, _ := o.Deliver([]byte(`"1"`), []byte(`{"i":`+strconv.Itoa(i)+`}`), 0)
		want += n
		o.mu.Lock()
		if !o.blocked {
			o.mu.Unlock()
			t.Fatal("pending output is not owned by the writer")
		}
		o.mu.Unlock()
	}
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 0, want)
	buf := make([]byte, 4096)
	for len(got) < want {
		n, err := cli.Read(buf)
		if err != nil {
			t.Fatalf("read: %v after %d of %d bytes", err, len(got), want)
		}
		got = append(got, buf[:n]...)
	}
	if hs := frames(t, got); len(hs) != 50 {
		t.Fatalf("%d frames, want 50", len(hs))
	}
}

// TestConnWriterNotifyDrained: on a net.Conn, "drained" means the socket
// took the bytes, not that the writer took them from pending: the
// callback waits for the chunk in flight.
func TestConnWriterNotifyDrained(t *testing.T) {
	srv, cli := net.Pipe()
	o, _, _ := newConnOutbox(t, srv, 10*time.Second)
	n, _, _ := o.Deliver([]byte(`"1"`), []byte(`{"a":1}`), 0)
	drained := make(chan struct{})
	o.NotifyDrained(func() { close(drained) })
	select {
	case <-drained:
		t.Fatal("drained before the peer read anything")
	case <-time.After(50 * time.Millisecond):
	}
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(cli, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("not drained after the peer read everything")
	}
}
