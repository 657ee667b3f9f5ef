package server_test

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fraised/fraised/server"
)

// serverSideSndbuf finds, among this process's descriptors, the server's
// end of conn (the test server runs in-process: its local address is
// conn's remote one and its peer conn's local one; an ephemeral port alone
// is not unique, as other tests connect to other servers) and returns its
// SO_SNDBUF once it equals want, or the last value seen.
func serverSideSndbuf(t *testing.T, conn net.Conn, want int) int {
	t.Helper()
	client := conn.LocalAddr().(*net.TCPAddr)
	srv := conn.RemoteAddr().(*net.TCPAddr)
	seen, found := 0, false
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for fd := 3; fd < 4096; fd++ {
			peer, err := unix.Getpeername(fd)
			if err != nil {
				continue
			}
			local, err := unix.Getsockname(fd)
			if err != nil {
				continue
			}
			p, ok1 := peer.(*unix.SockaddrInet4)
			l, ok2 := local.(*unix.SockaddrInet4)
			if !ok1 || !ok2 || p.Port != client.Port || l.Port != srv.Port {
				continue
			}
			if n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil {
				seen, found = n, true
				if n == want {
					return n
				}
			}
		}
		time.Sleep(20 * time.Millisecond) // the event loop may not have opened it yet
	}
	if !found {
		t.Fatal("the server's end of the connection was not found")
	}
	return seen
}

// TestSendBufferBoundsKernelMemory: every client connection gets the
// configured SO_SNDBUF (Linux reports twice the value set), so a client
// that stops reading holds at most that much in the kernel.
func TestSendBufferBoundsKernelMemory(t *testing.T) {
	for _, c := range []struct {
		set, want int
	}{{0, 2 * server.DefaultSendBuffer}, {64 << 10, 2 * 64 << 10}} {
		s := startServer(t, func(o *server.Options) { o.SendBuffer = c.set })
		conn := dialFrom(t, "127.0.0.1", s.opts.Listen)
		if got := serverSideSndbuf(t, conn, c.want); got != c.want {
			t.Errorf("SendBuffer %d: server socket SO_SNDBUF %d, want %d", c.set, got, c.want)
		}
	}
}
