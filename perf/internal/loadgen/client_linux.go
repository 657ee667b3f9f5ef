package loadgen

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/fraised/fraised/perf/internal/wsframe"
)

// Connection states, in order.
const (
	stConnecting = iota
	stUpgrading  // request sent, waiting for 101
	stIniting    // connection_init sent, waiting for connection_ack
	stSubscribed // subscribes + ping sent, waiting for pong
	stReady
	stClosed
)

// maxFrame bounds a server frame; the scenarios' frames are ~200 bytes.
const maxFrame = 1 << 20

// conn is one client WebSocket connection. It is owned by one receiver
// goroutine once handed over; nothing else touches it until the receivers
// stop.
type conn struct {
	fd       int
	state    uint8
	slow     bool
	paused   bool
	closedBy string // why it closed: "eof", "reset", "protocol", "error"
	firstSub int32  // global index of subscription id "1"
	nsubs    int32
	carry    []byte // an incomplete frame carried to the next read
	out      []byte // bytes not written yet
	mask     uint32
}

// dialer opens non-blocking sockets from round-robin source addresses.
type dialer struct {
	dst    unix.SockaddrInet4
	srcs   []netip.Addr
	next   int
	rcvbuf int
}

func newDialer(dst netip.AddrPort, srcs []netip.Addr) (*dialer, error) {
	if !dst.Addr().Is4() {
		return nil, fmt.Errorf("cannot dial %v: only IPv4 loopback addresses are supported", dst)
	}
	for _, s := range srcs {
		if !s.Is4() || !s.IsLoopback() {
			return nil, fmt.Errorf("source address %v is not IPv4 loopback: pass 127.x.y.z addresses", s)
		}
	}
	return &dialer{dst: unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}, srcs: srcs}, nil
}

// dial starts a non-blocking connect; rcvbuf > 0 shrinks the receive
// buffer (slow consumers).
func (d *dialer) dial(rcvbuf int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cannot open a socket (open-files limit?): %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	// Receive timestamps: each read also says when its bytes reached the
	// socket (receiver.hk), apart from when this harness got to them.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	if rcvbuf > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	if len(d.srcs) > 0 {
		src := d.srcs[d.next%len(d.srcs)]
		d.next++
		// Let connect pick the port per 4-tuple, so each source address
		// has the whole ephemeral range per destination.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("cannot bind to source %v: %w", src, err)
		}
	}
	err = unix.Connect(fd, &d.dst)
	if err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return -1, fmt.Errorf("cannot connect to %d.%d.%d.%d:%d: %w",
			d.dst.Addr[0], d.dst.Addr[1], d.dst.Addr[2], d.dst.Addr[3], d.dst.Port, err)
	}
	return fd, nil
}

// handshake builds the HTTP upgrade request.
func handshake(host string) []byte {
	return []byte("GET /graphql HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n")
}

var (
	msgInit = []byte(`{"type":"connection_init","payload":{}}`)
	msgPing = []byte(`{"type":"ping"}`)
	msgPong = []byte(`{"type":"pong"}`)
)

// appendSubscribe appends the masked subscribe frame for id and topic.
func appendSubscribe(dst []byte, id int, topic []byte, key [4]byte) []byte {
	var p [256]byte
	msg := append(p[:0], `{"id":"`...)
	msg = strconv.AppendInt(msg, int64(id), 10)
	msg = append(msg, `","type":"subscribe","payload":{"query":"subscription($t:String!){events(topic:$t){seq ts body}}","variables":{"t":"`...)
	msg = append(msg, topic...)
	msg = append(msg, `"}}}`...)
	return wsframe.AppendFrame(dst, wsframe.OpText, msg, true, key)
}

func (c *conn) key() [4]byte {
	c.mask = c.mask*1664525 + 1013904223
	return [4]byte{byte(c.mask), byte(c.mask >> 8), byte(c.mask >> 16), byte(c.mask >> 24)}
}

// httpResponseEnd returns the length of a complete HTTP response head in b
// and whether its status is 101; n == 0 means incomplete.
func httpResponseEnd(b []byte) (n int, ok bool) {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return 0, false
	}
	return i + 4, bytes.HasPrefix(b, []byte("HTTP/1.1 101"))
}
