package server

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// The outbox writes a connection's descriptor from outside its event loop
// (the dispatcher, the writer, the housekeeper). That is safe only because
// gnet calls OnClose, where the outbox is marked closed under its lock,
// before it closes the descriptor: gnet v2.5 closed it first, so a write
// racing the close could reach a descriptor the kernel had already given to
// a new connection. go.mod pins the minimum version; this test pins the
// behaviour, on the path the server uses (Engine.Register of an accepted
// net.Conn), for both a peer that hangs up and a Close from another
// goroutine (outbox hangup).

// closeOrderHandler records, in OnClose, whether the descriptor gnet hands
// over is still open and still the connection's socket.
type closeOrderHandler struct {
	gnet.BuiltinEventEngine
	boot   gnet.Engine
	ticked sync.Once
	eng    chan gnet.Engine
	opened chan gnet.Conn
	closed chan error // nil: the descriptor was open and the same socket
}

func (h *closeOrderHandler) OnBoot(e gnet.Engine) gnet.Action {
	h.boot = e
	return gnet.None
}

// OnTick hands the engine over once the loops run (Register before the
// first tick races gnet's start-up, as the server knows: listen.go).
func (h *closeOrderHandler) OnTick() (time.Duration, gnet.Action) {
	h.ticked.Do(func() { h.eng <- h.boot })
	return time.Hour, gnet.None
}

func (h *closeOrderHandler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	h.opened <- c
	return nil, gnet.None
}

func (h *closeOrderHandler) OnClose(c gnet.Conn, _ error) gnet.Action {
	h.closed <- sameSocket(c.Fd(), c.LocalAddr())
	return gnet.None
}

// sameSocket returns nil when fd is open and bound to want.
func sameSocket(fd int, want net.Addr) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return &os.SyscallError{Syscall: "fcntl(F_GETFD) in OnClose: the descriptor is already closed", Err: err}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return &os.SyscallError{Syscall: "getsockname in OnClose", Err: err}
	}
	in, ok := sa.(*unix.SockaddrInet4)
	if !ok || in.Port != want.(*net.TCPAddr).Port {
		return &net.AddrError{Err: "OnClose saw another socket on the descriptor", Addr: want.String()}
	}
	return nil
}

func TestGnetCallsOnCloseBeforeClosingTheDescriptor(t *testing.T) {
	h := &closeOrderHandler{eng: make(chan gnet.Engine, 1), opened: make(chan gnet.Conn, 1), closed: make(chan error, 1)}
	anchor := "unix://" + filepath.Join(t.TempDir(), "anchor.sock")
	done := make(chan error, 1)
	go func() {
		done <- gnet.Rotate(h, []string{anchor}, gnet.WithMulticore(true), gnet.WithNumEventLoop(2),
			gnet.WithLoadBalancing(gnet.LeastConnections), gnet.WithTicker(true),
			gnet.WithLogger(gnetLogger{slog.New(slog.DiscardHandler)}))
	}()
	var eng gnet.Engine
	select {
	case eng = <-h.eng:
	case err := <-done:
		t.Fatalf("gnet did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("gnet did not boot within 10s")
	}
	defer func() {
		_ = eng.Stop(context.Background())
		<-done
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	for _, tc := range []struct {
		name  string
		close func(client net.Conn, gc gnet.Conn)
	}{
		{"peer hangs up", func(client net.Conn, _ gnet.Conn) { client.Close() }},
		{"Close from another goroutine", func(_ net.Conn, gc gnet.Conn) { _ = gc.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			accepted, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			res, err := eng.Register(gnet.NewNetConnContext(context.Background(), accepted))
			if err != nil {
				t.Fatal(err)
			}
			var gc gnet.Conn
			select {
			case gc = <-h.opened:
			case <-time.After(10 * time.Second):
				t.Fatal("registered connection not opened within 10s")
			}
			if r := <-res; r.Err != nil {
				t.Fatal(r.Err)
			}
			tc.close(client, gc)
			select {
			case err := <-h.closed:
				if err != nil {
					t.Fatalf("gnet closed the descriptor before OnClose (outbox writes from other goroutines are unsafe with this gnet): %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("OnClose not called within 10s")
			}
		})
	}
}
