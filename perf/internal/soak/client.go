package soak

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fraised/fraised/perf/internal/wsframe"
)

// Client-side bounds.
const (
	// dialTimeout bounds one connect plus upgrade on loopback.
	dialTimeout = 5 * time.Second
	// maxClientFrame bounds a frame the driver will read: the largest
	// event it publishes (1 MiB) plus the envelope.
	maxClientFrame = 2 << 20
	// firstSource and lastSource are the loopback source addresses
	// abusive clients spread over, to pass per-address limits.
	firstSource, lastSource = 2, 250
)

// sources hands out loopback source addresses round robin.
type sources struct{ n atomic.Uint32 }

func (s *sources) next() net.IP {
	i := s.n.Add(1) - 1
	return net.IPv4(127, 0, 0, byte(firstSource+int(i)%(lastSource-firstSource+1)))
}

// dialTCP connects from src (nil: the default) with a receive buffer of
// rcvbuf bytes (0: the default), set before connect so the window is small
// from the start.
func dialTCP(src net.IP, addr string, rcvbuf int) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: dialTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			if rcvbuf > 0 {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
			}
		})
	}}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s from %v: %w", addr, src, err)
	}
	return c.(*net.TCPConn), nil
}

// wsClient is a blocking graphql-transport-ws client, one goroutine at a
// time.
type wsClient struct {
	conn *net.TCPConn
	r    *bufio.Reader
	wbuf []byte
	mask uint32
}

func upgradeRequest(host string) string {
	return "GET /graphql HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
}

// dialWS connects and upgrades.
func dialWS(src net.IP, addr string, rcvbuf int) (*wsClient, error) {
	conn, err := dialTCP(src, addr, rcvbuf)
	if err != nil {
		return nil, err
	}
	c := &wsClient{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), mask: uint32(time.Now().UnixNano())}
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	if _, err := io.WriteString(conn, upgradeRequest(addr)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot send the upgrade: %w", err)
	}
	status, err := c.r.ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("no upgrade response: %w", err)
	}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("truncated upgrade response: %w", err)
		}
		if line == "\r\n" {
			break
		}
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		conn.Close()
		return nil, fmt.Errorf("upgrade refused: %s", strings.TrimSpace(status))
	}
	_ = conn.SetDeadline(time.Time{})
	return c, nil
}

func (c *wsClient) key() [4]byte {
	c.mask = c.mask*1664525 + 1013904223
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], c.mask)
	return k
}

// appendMsg appends one masked text frame.
func (c *wsClient) appendMsg(dst []byte, msg string) []byte {
	return wsframe.AppendFrame(dst, wsframe.OpText, []byte(msg), true, c.key())
}

// send writes one text message.
func (c *wsClient) send(msg string) error {
	return c.sendFrame(wsframe.OpText, []byte(msg))
}

func (c *wsClient) sendFrame(op byte, payload []byte) error {
	c.wbuf = wsframe.AppendFrame(c.wbuf[:0], op, payload, true, c.key())
	_ = c.conn.SetWriteDeadline(time.Now().Add(dialTimeout))
	_, err := c.conn.Write(c.wbuf)
	return err
}

// frame is one server frame; payload is valid until the next read.
type frame struct {
	op      byte
	payload []byte
}

var errTruncated = errors.New("soak: connection ended inside a frame")

// readFrame reads one frame. A read that fails in the middle of a frame
// (the connection ended, or a read deadline expired: isTimeout tells)
// returns errTruncated wrapping the cause; the connection is then out of
// step and must be closed.
func (c *wsClient) readFrame(buf []byte) (frame, []byte, error) {
	var hdr [wsframe.MaxHeaderLen]byte
	if n, err := io.ReadFull(c.r, hdr[:2]); err != nil {
		if n > 0 { // a frame started: its first byte is lost
			err = fmt.Errorf("%w: %w", errTruncated, err)
		}
		return frame{}, buf, err
	}
	n := 2
	switch hdr[1] & 0x7F {
	case 126:
		n = 4
	case 127:
		n = 10
	}
	if _, err := io.ReadFull(c.r, hdr[2:n]); err != nil {
		return frame{}, buf, fmt.Errorf("%w: %w", errTruncated, err)
	}
	h, hn, err := wsframe.ParseHeader(hdr[:n], maxClientFrame)
	if err != nil || hn != n {
		return frame{}, buf, fmt.Errorf("bad frame header from the server: %v", err)
	}
	if cap(buf) < h.Len {
		buf = make([]byte, h.Len)
	}
	buf = buf[:h.Len]
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return frame{}, buf, fmt.Errorf("%w: %w", errTruncated, err)
	}
	return frame{op: h.Op, payload: buf}, buf, nil
}

// pollFrame waits up to poll for a frame to start, then reads all of it
// within dialTimeout: a short poll never expires inside a frame, where it
// would lose the bytes already read and look like a server that cut the
// frame (readFrame's errTruncated). It returns a timeout error, and has
// consumed nothing, when no frame started within poll.
func (c *wsClient) pollFrame(buf []byte, poll time.Duration) (frame, []byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(poll))
	if _, err := c.r.Peek(1); err != nil {
		return frame{}, buf, err
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(dialTimeout))
	return c.readFrame(buf)
}

// closeCode returns a close frame's status code (1005 when it has none).
func closeCode(payload []byte) int {
	if len(payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(payload))
}

// initAck sends connection_init and waits for connection_ack.
func (c *wsClient) initAck() error {
	if err := c.send(`{"type":"connection_init","payload":{}}`); err != nil {
		return fmt.Errorf("cannot send connection_init: %w", err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(dialTimeout))
	defer c.conn.SetReadDeadline(time.Time{})
	var buf []byte
	for {
		f, b, err := c.readFrame(buf)
		buf = b
		if err != nil {
			return fmt.Errorf("no connection_ack: %w", err)
		}
		switch {
		case f.op == wsframe.OpClose:
			return fmt.Errorf("closed %d before connection_ack", closeCode(f.payload))
		case f.op == wsframe.OpText && bytes.Contains(f.payload, []byte(`"connection_ack"`)):
			return nil
		}
	}
}

// subscribeMsg is a subscribe message for id on topic selecting fields.
func subscribeMsg(id int, topic, fields string) string {
	return fmt.Sprintf(`{"id":"%d","type":"subscribe","payload":{"query":"subscription { events(topic: \"%s\") { %s } }"}}`, id, topic, fields)
}

// subscriber dials, inits and subscribes to topic with id 1.
func subscriber(src net.IP, addr string, rcvbuf int, topic, fields string) (*wsClient, error) {
	c, err := dialWS(src, addr, rcvbuf)
	if err != nil {
		return nil, err
	}
	if err := c.initAck(); err != nil {
		c.conn.Close()
		return nil, err
	}
	if err := c.send(subscribeMsg(1, topic, fields)); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("cannot subscribe: %w", err)
	}
	return c, nil
}

// pong answers a server ping frame or graphql-transport-ws ping message;
// it reports whether f was one.
func (c *wsClient) pong(f frame) bool {
	switch {
	case f.op == wsframe.OpPing:
		_ = c.sendFrame(wsframe.OpPong, f.payload)
		return true
	case f.op == wsframe.OpText && bytes.Equal(wsframe.Type(f.payload), []byte("ping")):
		_ = c.send(`{"type":"pong"}`)
		return true
	}
	return false
}
