package edge

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestGateCaps(t *testing.T) {
	g := NewGate(3, 2)
	a := netip.MustParseAddr("192.0.2.1")
	t1 := &Ticket{gate: g}
	if !g.acquire() || !t1.ChargeAddr(a) {
		t.Fatal("first connection refused")
	}
	t2 := &Ticket{gate: g}
	if !g.acquire() || !t2.ChargeAddr(a) {
		t.Fatal("second connection refused")
	}
	t3 := &Ticket{gate: g}
	if !g.acquire() {
		t.Fatal("third global slot refused")
	}
	if t3.ChargeAddr(a) {
		t.Fatal("third connection of one address admitted past the per-address cap 2")
	}
	if !t3.ChargeAddr(netip.MustParseAddr("192.0.2.2")) {
		t.Fatal("another address refused")
	}
	if g.acquire() {
		t.Fatal("fourth connection admitted past the global cap 3")
	}
	t1.Release()
	t1.Release() // idempotent
	if g.Open() != 2 || g.AddrCount(a) != 1 {
		t.Fatalf("after release: open %d, %s holds %d", g.Open(), a, g.AddrCount(a))
	}
	t2.Release()
	t3.Release()
	if g.Open() != 0 || g.AddrCount(a) != 0 {
		t.Fatalf("after releases: open %d, %s holds %d", g.Open(), a, g.AddrCount(a))
	}
}

func TestAddrKeyGroupsIPv6By64(t *testing.T) {
	f := func(a, b string, same bool) {
		t.Helper()
		if got := AddrKey(netip.MustParseAddr(a)) == AddrKey(netip.MustParseAddr(b)); got != same {
			t.Errorf("AddrKey(%s) == AddrKey(%s): %v, want %v", a, b, got, same)
		}
	}
	f("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true)
	f("2001:db8:1:2::1", "2001:db8:1:3::1", false)
	f("::ffff:192.0.2.1", "192.0.2.1", true)
	f("192.0.2.1", "192.0.2.2", false)
}

func TestGateConcurrent(t *testing.T) {
	g := NewGate(0, 0)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a := netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 3)})
			for j := 0; j < 1000; j++ {
				tk := &Ticket{gate: g}
				g.acquire()
				tk.ChargeAddr(a)
				tk.Release()
			}
		}(i)
	}
	wg.Wait()
	if g.Open() != 0 {
		t.Fatalf("open %d after balanced acquire/release", g.Open())
	}
}

func TestParseTrusted(t *testing.T) {
	tr, err := ParseTrusted(" 10.0.0.0/8, 192.0.2.7 ,::1, ::ffff:172.16.0.0/108")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true}, {"11.0.0.1", false}, {"192.0.2.7", true}, {"192.0.2.8", false},
		{"::1", true}, {"::ffff:10.0.0.1", true}, {"172.16.3.4", true}, {"172.32.0.1", false},
	} {
		if got := tr.Contains(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Contains(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	if _, err := ParseTrusted("10.0.0.0/33"); err == nil {
		t.Error("invalid prefix accepted")
	}
	if _, err := ParseTrusted("proxy.example"); err == nil {
		t.Error("host name accepted")
	}
	var none *Trusted
	if none.Contains(netip.MustParseAddr("10.0.0.1")) || !none.Empty() {
		t.Error("nil Trusted trusts")
	}
}

func TestClientAddr(t *testing.T) {
	tr, _ := ParseTrusted("10.0.0.0/8")
	f := func(h Header, value, want string) {
		t.Helper()
		a, ok := ClientAddr(h, []byte(value), tr)
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("ClientAddr(%q) = %q, want %q", value, got, want)
		}
	}
	f(HeaderXFF, "", "")
	f(HeaderXFF, "198.51.100.7", "198.51.100.7")
	f(HeaderXFF, "203.0.113.1, 198.51.100.7", "198.51.100.7") // the client forged the left entry
	f(HeaderXFF, "198.51.100.7, 10.0.0.2, 10.0.0.3", "198.51.100.7")
	f(HeaderXFF, "10.0.0.5, 10.0.0.3", "10.0.0.5") // all trusted: the leftmost
	f(HeaderXFF, "198.51.100.7:4711", "198.51.100.7")
	f(HeaderXFF, "[2001:db8::1]:4711", "2001:db8::1")
	f(HeaderXFF, "2001:db8::1", "2001:db8::1")
	f(HeaderXFF, "::ffff:198.51.100.7", "198.51.100.7")
	f(HeaderXFF, "198.51.100.7, unknown", "")
	f(HeaderXFF, "junk, 10.0.0.1", "")
	f(HeaderXFF, "fe80::1%eth0", "")
	f(HeaderForwarded, `for=192.0.2.60;proto=http;by=203.0.113.43`, "192.0.2.60")
	f(HeaderForwarded, `for=192.0.2.43, for="[2001:db8:cafe::17]:4711"`, "2001:db8:cafe::17")
	f(HeaderForwarded, `For="192.0.2.1:80", for=10.0.0.1`, "192.0.2.1")
	f(HeaderForwarded, `proto=https`, "")
	f(HeaderForwarded, `for=_hidden`, "")
	f(HeaderForwarded, `for=unknown`, "")
}

func TestClientAddrBoundsHops(t *testing.T) {
	tr, _ := ParseTrusted("10.0.0.0/8")
	v := "198.51.100.7"
	for i := 0; i < 10*maxForwardedHops; i++ {
		v += ", 10.0.0.1"
	}
	a, ok := ClientAddr(HeaderXFF, []byte(v), tr)
	if !ok || a.String() != "10.0.0.1" {
		t.Fatalf("long chain of trusted hops: %v %v, want the last examined hop", a, ok)
	}
}

// fakeListener returns errs, then conns, then ErrClosed.
type fakeListener struct {
	mu    sync.Mutex
	errs  []error
	conns []net.Conn
}

func (l *fakeListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	if len(l.conns) > 0 {
		c := l.conns[0]
		l.conns = l.conns[1:]
		return c, nil
	}
	return nil, net.ErrClosed
}
func (l *fakeListener) Close() error   { return nil }
func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestAcceptorBacksOffOnEMFILE: accept errors pause the loop with a
// doubling backoff and never stop it; the next connection is admitted.
func TestAcceptorBacksOffOnEMFILE(t *testing.T) {
	srv, cli := net.Pipe()
	defer cli.Close()
	emfile := &net.OpError{Op: "accept", Err: syscall.EMFILE}
	l := &fakeListener{errs: []error{emfile, emfile, emfile}, conns: []net.Conn{srv}}
	var pauses []time.Duration
	admitted := 0
	a := &Acceptor{
		Gate:         NewGate(0, 0),
		Admit:        func(net.Conn, *Ticket) error { admitted++; return nil },
		AcceptFailed: func(err error, p time.Duration) { pauses = append(pauses, p) },
	}
	if err := a.Serve(l, nil); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
	if len(pauses) != 3 || pauses[0] != want[0] || pauses[1] != want[1] || pauses[2] != want[2] {
		t.Fatalf("pauses %v, want %v", pauses, want)
	}
	if admitted != 1 {
		t.Fatalf("admitted %d connections after the errors, want 1", admitted)
	}
}

func TestAcceptorBackoffCapsAtOneSecond(t *testing.T) {
	p := time.Duration(0)
	for i := 0; i < 20; i++ {
		p = min(max(2*p, acceptBackoffMin), acceptBackoffMax)
	}
	if p != time.Second {
		t.Fatalf("backoff reached %v, want 1s", p)
	}
	stop := make(chan struct{})
	close(stop)
	l := &fakeListener{errs: []error{&net.OpError{Op: "accept", Err: syscall.ENFILE}}}
	if err := (&Acceptor{Gate: NewGate(0, 0)}).Serve(l, stop); err != nil {
		t.Fatal(err)
	}
	// A broken listener is not retried: Serve returns its error.
	broken := &net.OpError{Op: "accept", Err: syscall.EINVAL}
	l = &fakeListener{errs: []error{broken}}
	if err := (&Acceptor{Gate: NewGate(0, 0)}).Serve(l, nil); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Serve on a broken listener returned %v, want its EINVAL", err)
	}
}

// TestAcceptorRefusesOverCap: over the cap a real client gets a 503 with
// Retry-After, read to the end (a FIN, not a reset).
func TestAcceptorRefusesOverCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused []Reason
	var mu sync.Mutex
	held := make(chan net.Conn, 4)
	a := &Acceptor{
		Gate:    NewGate(1, 0),
		Admit:   func(c net.Conn, _ *Ticket) error { held <- c; return nil },
		Refused: func(_ netip.AddrPort, r Reason) { mu.Lock(); refused = append(refused, r); mu.Unlock() },
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Serve(ln, nil) }()
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	<-held
	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_, _ = second.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = second.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _ := readFull(second, buf)
	got := string(buf[:n])
	if want := string(ReasonGlobalCap.Response()); got != want {
		t.Fatalf("refused client got %q, want %q", got, want)
	}
	ln.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(refused) != 1 || refused[0] != ReasonGlobalCap {
		t.Fatalf("refusals %v", refused)
	}
}

func readFull(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestTemporaryAcceptErrors(t *testing.T) {
	for _, err := range []error{unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ECONNABORTED,
		&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", unix.EMFILE)}} {
		if !Temporary(err) {
			t.Errorf("%v: accept can succeed later, so it must be retried", err)
		}
	}
	for _, err := range []error{unix.EINVAL, unix.EBADF, unix.ENOTSOCK,
		&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", unix.EINVAL)}} {
		if Temporary(err) {
			t.Errorf("%v: the listener is broken; retrying forever would hide it", err)
		}
	}
}
