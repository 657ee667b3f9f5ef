package loadgen

import (
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loopbackPair returns a connected TCP pair on 127.0.0.1: the client end
// (with SO_TIMESTAMPNS if stamp) and the server end.
func loopbackPair(t *testing.T, stamp bool) (cli, srv int) {
	t.Helper()
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(ln) })
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	if cli, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(cli) })
	if stamp {
		if err := unix.SetsockoptInt(cli, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Connect(cli, sa); err != nil {
		t.Fatal(err)
	}
	if srv, _, err = unix.Accept(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(srv) })
	return cli, srv
}

// recvStamp sends one byte from srv to cli and returns rxTimestamp of the
// read that takes it, with the wall clock before the send and after the read.
func recvStamp(t *testing.T, cli, srv int) (rx, before, after int64) {
	t.Helper()
	before = time.Now().UnixNano()
	if _, err := unix.Write(srv, []byte{'x'}); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 16), make([]byte, 64)
	n, oobn, _, _, err := unix.Recvmsg(cli, buf, oob, 0) // blocking socket
	if err != nil || n != 1 {
		t.Fatalf("recvmsg: n=%d err=%v", n, err)
	}
	return rxTimestamp(oob[:oobn]), before, time.Now().UnixNano()
}

// TestRxTimestampFromTheKernel: with SO_TIMESTAMPNS (as dial sets it) the
// read carries the kernel's receive time, between the send and the read's
// return on the wall clock; without it rxTimestamp says 0, never a time.
// The kernel turns stamping on asynchronously when the first socket asks
// for it, so the first reads may carry none (the receiver leaves such
// reads out of the kernel histogram): the test reads until one does.
func TestRxTimestampFromTheKernel(t *testing.T) {
	cli, srv := loopbackPair(t, true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rx, before, after := recvStamp(t, cli, srv)
		if rx != 0 {
			if rx < before || rx > after {
				t.Fatalf("kernel receive time %d outside [send %d, read %d]", rx, before, after)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no read carried a kernel receive timestamp in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cli, srv = loopbackPair(t, false)
	if rx, _, _ := recvStamp(t, cli, srv); rx != 0 {
		t.Fatalf("without SO_TIMESTAMPNS rxTimestamp = %d, want 0", rx)
	}
}

// TestRxTimestampBadControlMessages: a control buffer that is truncated or
// whose header lies about its length yields 0, and is never read past.
func TestRxTimestampBadControlMessages(t *testing.T) {
	cli, srv := loopbackPair(t, true)
	var good []byte
	for deadline := time.Now().Add(10 * time.Second); rxTimestamp(good) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no read carried a kernel receive timestamp in 10 s")
		}
		if _, err := unix.Write(srv, []byte{'x'}); err != nil {
			t.Fatal(err)
		}
		buf, oob := make([]byte, 16), make([]byte, 64)
		_, oobn, _, _, err := unix.Recvmsg(cli, buf, oob, 0)
		if err != nil {
			t.Fatal(err)
		}
		good = oob[:oobn]
	}
	for cut := range len(good) {
		if got := rxTimestamp(good[:cut]); got != 0 {
			t.Fatalf("truncated to %d of %d bytes: rxTimestamp = %d, want 0", cut, len(good), got)
		}
	}
	lying := append([]byte(nil), good...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&lying[0]))
	for _, l := range []int{0, 1, len(lying) + 1} {
		h.SetLen(l)
		if got := rxTimestamp(lying); got != 0 {
			t.Fatalf("header length %d: rxTimestamp = %d, want 0", l, got)
		}
	}
}
