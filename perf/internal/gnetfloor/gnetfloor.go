// Package gnetfloor is the gnet "floor" server of the perf harness: one gnet
// event loop that upgrades WebSocket connections (gobwas/ws), acks
// graphql-transport-ws, keeps subscriptions by topic, and on each batch of
// pipelined RESP PUBLISH commands appends a pre-built `next` frame to each
// subscriber and writes once per connection per batch. No GraphQL: it is the
// cost of the sockets themselves.
//
// Everything runs on the single event loop, so the server state needs no
// locks; Run is the only exported entry point.
package gnetfloor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/perf/internal/floorproto"
	"github.com/fraised/fraised/perf/internal/respw"
	"github.com/fraised/fraised/perf/internal/wsframe"
)

const (
	// maxRequest bounds the HTTP upgrade request.
	maxRequest = 8 << 10
	// maxMessage bounds a client WebSocket message and a published event.
	maxMessage = 64 << 10
	// DefaultMaxPending is the outbound bytes a subscriber may have queued
	// before it is cut off as a slow consumer.
	DefaultMaxPending = 4 << 20
	// keepPending is the largest per-connection batch buffer kept for reuse.
	keepPending = 64 << 10
	// tick is how often the loop checks for cancellation.
	tick = 100 * time.Millisecond
)

// Config says where the floor listens. Listen is required; PublishListen
// and PublishUnix are optional RESP listeners.
type Config struct {
	Listen        string // host:port of the WebSocket listener (path ignored)
	PublishListen string // host:port for RESP publishing
	PublishUnix   string // Unix socket path for RESP publishing
	MaxPending    int    // 0 means DefaultMaxPending
	Logger        *slog.Logger
}

// Run serves until ctx is cancelled or a listener fails.
func Run(ctx context.Context, cfg Config) error {
	if cfg.MaxPending == 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &server{cfg: cfg, topics: make(map[string][]subscriber)}
	addrs := []string{"tcp://" + cfg.Listen}
	if cfg.PublishListen != "" {
		addrs = append(addrs, "tcp://"+cfg.PublishListen)
		_, port, err := net.SplitHostPort(cfg.PublishListen)
		if err != nil {
			return fmt.Errorf("cannot parse --publish-listen %q: %w", cfg.PublishListen, err)
		}
		s.pubPort = port
	}
	if cfg.PublishUnix != "" {
		_ = os.Remove(cfg.PublishUnix)
		addrs = append(addrs, "unix://"+cfg.PublishUnix)
		s.pubUnix = true
	}
	s.ctx = ctx
	err := gnet.Rotate(s, addrs, gnet.WithMulticore(false), gnet.WithNumEventLoop(1),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithTicker(true), gnet.WithReadBufferCap(256<<10))
	if err != nil {
		return fmt.Errorf("cannot run the gnet floor on %v: %w", addrs, err)
	}
	return nil
}

type subscriber struct {
	conn *wsConn
	id   string
}

type wsConn struct {
	c        gnet.Conn
	upgraded bool
	closed   bool
	subs     []subscriber
	topics   []string // topics[i] is the topic of subs[i]
	pending  []byte   // frames of the current publish batch
	scratch  []byte   // unmasked client message
}

type pubConn struct {
	args [][]byte
	out  []byte
}

type server struct {
	gnet.BuiltinEventEngine
	cfg     Config
	ctx     context.Context
	eng     gnet.Engine
	pubPort string
	pubUnix bool
	topics  map[string][]subscriber
	dirty   []*wsConn
	free    [][]byte // pending buffers for reuse
	frames  []cachedFrame
}

type cachedFrame struct {
	id    string
	frame []byte
}

func (s *server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	s.cfg.Logger.Info("gnet floor listening", "ws", s.cfg.Listen, "publish", s.cfg.PublishListen, "unix", s.cfg.PublishUnix)
	return gnet.None
}

// OnTick stops the engine once ctx is done.
func (s *server) OnTick() (delay time.Duration, action gnet.Action) {
	if s.ctx.Err() != nil {
		return 0, gnet.Shutdown
	}
	return tick, gnet.None
}

func (s *server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if s.isPublisher(c) {
		c.SetContext(&pubConn{})
	} else {
		c.SetContext(&wsConn{c: c})
	}
	return nil, gnet.None
}

func (s *server) isPublisher(c gnet.Conn) bool {
	la := c.LocalAddr()
	if la == nil {
		return false
	}
	if la.Network() == "unix" {
		return s.pubUnix
	}
	_, port, err := net.SplitHostPort(la.String())
	return err == nil && port == s.pubPort
}

func (s *server) OnClose(c gnet.Conn, _ error) gnet.Action {
	if wc, ok := c.Context().(*wsConn); ok {
		s.unsubscribeAll(wc)
	}
	return gnet.None
}

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	switch cc := c.Context().(type) {
	case *pubConn:
		return s.onPublish(c, cc)
	case *wsConn:
		if !cc.upgraded {
			return s.onUpgrade(c, cc)
		}
		return s.onFrames(c, cc)
	}
	return gnet.Close
}

// onUpgrade buffers the HTTP request until its end, then lets gobwas/ws
// answer it (Upgrader reads blocking, so it gets the whole request).
func (s *server) onUpgrade(c gnet.Conn, wc *wsConn) gnet.Action {
	buf, _ := c.Peek(-1)
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > maxRequest {
			return gnet.Close
		}
		return gnet.None
	}
	req := buf[:end+4]
	u := ws.Upgrader{Protocol: func(p []byte) bool { return string(p) == floorproto.Subprotocol }}
	if _, err := u.Upgrade(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(req), c}); err != nil {
		s.cfg.Logger.Debug("upgrade failed", "err", err)
		return gnet.Close
	}
	_, _ = c.Discard(len(req))
	wc.upgraded = true
	if c.InboundBuffered() > 0 {
		return s.onFrames(c, wc)
	}
	return gnet.None
}

// onFrames handles every complete client frame in the inbound buffer.
func (s *server) onFrames(c gnet.Conn, wc *wsConn) gnet.Action {
	buf, _ := c.Peek(-1)
	used := 0
	for {
		h, hl, err := wsframe.ParseHeader(buf[used:], maxMessage)
		if err != nil {
			return gnet.Close
		}
		if hl == 0 || len(buf)-used < hl+h.Len {
			break
		}
		wc.scratch = append(wc.scratch[:0], buf[used+hl:used+hl+h.Len]...)
		used += hl + h.Len
		if h.Masked {
			wsframe.Mask(wc.scratch, h.Mask, 0)
		}
		if act := s.onMessage(c, wc, h.Op, wc.scratch); act != gnet.None {
			return act
		}
	}
	_, _ = c.Discard(used)
	if cap(wc.scratch) > 4<<10 {
		wc.scratch = nil
	}
	return gnet.None
}

func (s *server) onMessage(c gnet.Conn, wc *wsConn, op byte, msg []byte) gnet.Action {
	switch op {
	case wsframe.OpClose:
		return gnet.Close
	case wsframe.OpPing:
		_, _ = c.Write(wsframe.AppendFrame(nil, wsframe.OpPong, msg, false, [4]byte{}))
		return gnet.None
	case wsframe.OpText:
	default:
		return gnet.None
	}
	m := floorproto.Parse(msg)
	switch m.Kind {
	case floorproto.Init:
		_, _ = c.Write(floorproto.AckFrame)
	case floorproto.Ping:
		_, _ = c.Write(floorproto.PongFrame)
	case floorproto.Subscribe:
		s.topics[m.Topic] = append(s.topics[m.Topic], subscriber{conn: wc, id: m.ID})
		wc.subs = append(wc.subs, subscriber{conn: wc, id: m.ID})
		wc.topics = append(wc.topics, m.Topic)
	case floorproto.Complete:
		s.unsubscribe(wc, m.ID)
	}
	return gnet.None
}

func (s *server) unsubscribe(wc *wsConn, id string) {
	for i := 0; i < len(wc.subs); i++ {
		if wc.subs[i].id == id {
			s.removeFromTopic(wc.topics[i], wc, id)
			wc.subs = append(wc.subs[:i], wc.subs[i+1:]...)
			wc.topics = append(wc.topics[:i], wc.topics[i+1:]...)
			i--
		}
	}
}

func (s *server) unsubscribeAll(wc *wsConn) {
	wc.closed = true
	for i, sub := range wc.subs {
		s.removeFromTopic(wc.topics[i], wc, sub.id)
	}
	wc.subs, wc.topics = nil, nil
}

func (s *server) removeFromTopic(topic string, wc *wsConn, id string) {
	list := s.topics[topic]
	for i := range list {
		if list[i].conn == wc && list[i].id == id {
			list[i] = list[len(list)-1]
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(s.topics, topic)
		return
	}
	s.topics[topic] = list
}

// onPublish handles every complete PUBLISH in the buffer, then writes each
// touched subscriber once and the replies once.
func (s *server) onPublish(c gnet.Conn, pc *pubConn) gnet.Action {
	buf, _ := c.Peek(-1)
	used := 0
	pc.out = pc.out[:0]
	for {
		args, n, err := respw.ParseCommand(buf[used:], pc.args, maxMessage)
		pc.args = args
		if err != nil {
			pc.out = respw.AppendError(pc.out, err.Error())
			_, _ = c.Write(pc.out)
			return gnet.Close
		}
		if n == 0 {
			break
		}
		used += n
		if len(args) != 3 || !strings.EqualFold(string(args[0]), "PUBLISH") {
			pc.out = respw.AppendError(pc.out, "only PUBLISH topic payload is supported")
			continue
		}
		pc.out = respw.AppendInt(pc.out, int64(s.fanOut(args[1], args[2])))
	}
	s.flush()
	_, _ = c.Discard(used)
	if len(pc.out) > 0 {
		_, _ = c.Write(pc.out)
	}
	return gnet.None
}

// fanOut appends the event's frame to each subscriber's pending batch.
func (s *server) fanOut(topic, event []byte) int {
	list := s.topics[string(topic)]
	s.frames = s.frames[:0]
	for _, sub := range list {
		wc := sub.conn
		if wc.pending == nil {
			wc.pending = s.getBuf()
			s.dirty = append(s.dirty, wc)
		}
		wc.pending = append(wc.pending, s.frame(sub.id, event)...)
	}
	return len(list)
}

// frame returns the next frame for id, built once per publish and id.
func (s *server) frame(id string, event []byte) []byte {
	for i := range s.frames {
		if s.frames[i].id == id {
			return s.frames[i].frame
		}
	}
	var f []byte
	if len(s.frames) < cap(s.frames) {
		f = s.frames[:len(s.frames)+1][len(s.frames)].frame[:0]
	}
	f = floorproto.AppendNext(f, id, event)
	s.frames = append(s.frames, cachedFrame{id: id, frame: f})
	return f
}

// flush writes each dirty connection's batch with one write and cuts off
// connections whose outbound queue passed the cap.
func (s *server) flush() {
	for _, wc := range s.dirty {
		if !wc.closed {
			_, _ = wc.c.Write(wc.pending)
			if wc.c.OutboundBuffered() > s.cfg.MaxPending {
				wc.closed = true
				_ = wc.c.Close()
			}
		}
		s.putBuf(wc.pending)
		wc.pending = nil
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
}

func (s *server) getBuf() []byte {
	if n := len(s.free); n > 0 {
		b := s.free[n-1]
		s.free = s.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, 1024)
}

func (s *server) putBuf(b []byte) {
	if cap(b) <= keepPending && len(s.free) < 4096 {
		s.free = append(s.free, b)
	}
}
