package edge

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Accept error backoff: a failed accept (EMFILE, ENFILE, ENOBUFS...) is
// retried after a pause that starts at acceptBackoffMin and doubles up to
// acceptBackoffMax, the schedule net/http uses: short enough that a
// descriptor freed by a closing client is used within a second, long
// enough that a loop at the limit does not spin on a core.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// RetryAfterSeconds is the Retry-After of a connection refused at a cap:
// a few seconds, about the time graphql-ws's first reconnect waits, so
// clients come back once other connections may have closed.
const RetryAfterSeconds = 5

// refuseDrainBytes is how much of a refused connection's request is read
// (and discarded) before the 503 and the close: the request head, so the
// close is a FIN and the client reads the 503 instead of a reset.
const refuseDrainBytes = 16 << 10

// Reason says why a connection was refused at accept.
type Reason uint8

// Refusal reasons.
const (
	ReasonGlobalCap Reason = iota + 1 // the server holds its maximum of connections
	ReasonAddrCap                     // the client's address holds its maximum
)

func (r Reason) String() string {
	if r == ReasonAddrCap {
		return "too many connections from this address"
	}
	return "server at its connection limit"
}

// Response returns the HTTP response a connection refused for r gets.
func (r Reason) Response() []byte {
	body := r.String() + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Retry-After: " + strconv.Itoa(RetryAfterSeconds) + "\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

var refusals = [...][]byte{ReasonGlobalCap: ReasonGlobalCap.Response(), ReasonAddrCap: ReasonAddrCap.Response()}

// Acceptor accepts connections from a listener, admits them through a
// Gate and hands them to Admit. A connection over a cap is answered 503
// with Retry-After and closed by the accept loop itself, so it never costs
// the server more than a moment's descriptor. Accept errors never stop the
// loop: it backs off and retries, so running out of descriptors delays new
// clients instead of dropping the established ones.
type Acceptor struct {
	Gate    *Gate
	Trusted *Trusted
	// Admit takes over an admitted connection and its ticket. It may block
	// (the accept loop then waits, which bounds hand-offs in flight). On
	// error the acceptor closes conn and releases t.
	Admit func(conn net.Conn, t *Ticket) error
	// Refused, if set, is told about each connection refused at a cap.
	Refused func(peer netip.AddrPort, r Reason)
	// AcceptFailed, if set, is told about each accept error and the pause
	// before the next attempt.
	AcceptFailed func(err error, pause time.Duration)
}

// Serve accepts until ln is closed (it then returns nil), stop is closed
// during a backoff pause (nil), or accept fails in a way no retry can mend
// (the listening socket was shut down or is no socket: that error).
func (a *Acceptor) Serve(ln net.Listener, stop <-chan struct{}) error {
	return AcceptLoop(ln, stop, a.AcceptFailed, a.admit)
}

// AcceptLoop hands every connection ln accepts to handle, on the calling
// goroutine, until ln is closed (it then returns nil), stop is closed
// during a backoff pause (nil), or accept fails in a way no retry can
// mend (that error). A passing error (Temporary) is retried after a pause
// of acceptBackoffMin doubling to acceptBackoffMax; failed, if set, is
// told of it and of the pause first. Every accept loop of the server
// runs through it, so all of them back off alike.
func AcceptLoop(ln net.Listener, stop <-chan struct{}, failed func(err error, pause time.Duration), handle func(net.Conn)) error {
	pause := time.Duration(0)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if !Temporary(err) {
				return err // the listener itself is broken: retrying cannot help
			}
			pause = min(max(2*pause, acceptBackoffMin), acceptBackoffMax)
			if failed != nil {
				failed(err, pause)
			}
			select {
			case <-stop:
				return nil
			case <-time.After(pause):
			}
			continue
		}
		pause = 0
		handle(conn)
	}
}

func (a *Acceptor) admit(conn net.Conn) {
	peer := AddrPortOf(conn.RemoteAddr())
	t, r := a.Gate.Admit(peer, a.Trusted.Contains(peer.Addr()))
	if t == nil {
		a.refuse(conn, peer, r)
		return
	}
	if err := a.Admit(conn, t); err != nil {
		_ = conn.Close()
		t.Release()
	}
}

func (a *Acceptor) refuse(conn net.Conn, peer netip.AddrPort, r Reason) {
	if a.Refused != nil {
		a.Refused(peer, r)
	}
	Refuse(conn, refusals[r])
}

// Refuse reads what already arrived of conn's request (up to
// refuseDrainBytes, without waiting), writes resp without waiting and
// closes conn. It never blocks: a fresh socket's send buffer holds a
// short response.
func Refuse(conn net.Conn, resp []byte) {
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) {
				var scratch [4096]byte
				for n := 0; n < refuseDrainBytes; {
					m, _, err := unix.Recvfrom(int(fd), scratch[:], unix.MSG_DONTWAIT)
					if err != nil || m <= 0 {
						break
					}
					n += m
				}
				_, _ = unix.Write(int(fd), resp)
			})
		}
	}
	_ = conn.Close()
}

// AddrPortOf returns a TCP address as a netip.AddrPort (zero for others).
func AddrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// Temporary reports whether an accept error is a passing shortage or a
// connection that went away before it was accepted, after which accepting
// again can succeed: out of descriptors (EMFILE, ENFILE), of kernel
// memory (ENOBUFS, ENOMEM), a connection aborted or reset in the queue, a
// firewall refusal (EPERM), an interrupted call. Anything else (EINVAL
// after the socket was shut down, EBADF, ENOTSOCK) means the listener
// itself is gone.
func Temporary(err error) bool {
	for _, e := range []error{unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM, unix.ECONNABORTED,
		unix.ECONNRESET, unix.EPERM, unix.EINTR, unix.EAGAIN, unix.EPROTO, unix.ETIMEDOUT} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
