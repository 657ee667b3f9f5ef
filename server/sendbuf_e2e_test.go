package server_test

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fraised/fraised/server"
)

// serverSideSndbuf finds, among this process's descriptors, the server's
// end of conn (the test server runs in-process) and returns its SO_SNDBUF.
func serverSideSndbuf(t *testing.T, conn net.Conn) int {
	t.Helper()
	client := conn.LocalAddr().(*net.TCPAddr)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for fd := 3; fd < 4096; fd++ {
			peer, err := unix.Getpeername(fd)
			if err != nil {
				continue
			}
			if p, ok := peer.(*unix.SockaddrInet4); ok && p.Port == client.Port {
				if n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil {
					return n
				}
			}
		}
		time.Sleep(20 * time.Millisecond) // the accept loop may not have handed it over yet
	}
	t.Fatal("the server's end of the connection was not found")
	return 0
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
		if got := serverSideSndbuf(t, conn); got != c.want {
			t.Errorf("SendBuffer %d: server socket SO_SNDBUF %d, want %d", c.set, got, c.want)
		}
	}
}
