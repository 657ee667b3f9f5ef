// Package netfloor is the goroutines+net "floor" server of the perf harness:
// two goroutines per WebSocket connection (reader, writer) on the standard
// net package, gobwas/ws for the upgrade and frames, subscriptions by topic
// behind one RWMutex, and on each batch of pipelined RESP PUBLISH commands a
// pre-built `next` frame appended to each subscriber's queue, written with
// one write per connection per batch. No GraphQL.
//
// Run is the only exported entry point.
package netfloor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/perf/internal/floorproto"
	"github.com/fraised/fraised/perf/internal/respw"
	"github.com/fraised/fraised/perf/internal/wsframe"
)

const (
	maxMessage = 64 << 10
	// DefaultMaxPending is the queued outbound bytes past which a
	// subscriber is cut off as a slow consumer.
	DefaultMaxPending = 4 << 20
	readBuf           = 64 << 10
)

// Config says where the floor listens. Listen is required; PublishListen
// and PublishUnix are optional RESP listeners.
type Config struct {
	Listen        string
	PublishListen string
	PublishUnix   string
	MaxPending    int // 0 means DefaultMaxPending
	Logger        *slog.Logger
}

type server struct {
	cfg    Config
	mu     sync.RWMutex
	topics map[string][]subscriber
	wg     sync.WaitGroup
	conns  sync.Map // *conn → struct{}, to close on shutdown
}

type subscriber struct {
	c  *conn
	id string
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
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}
	listen := func(network, addr string, serve func(net.Conn)) error {
		ln, err := net.Listen(network, addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("cannot listen on %s %s: %w", network, addr, err)
		}
		lns = append(lns, ln)
		s.wg.Go(func() { s.accept(ln, serve) })
		return nil
	}
	if err := listen("tcp", cfg.Listen, s.serveWS); err != nil {
		return err
	}
	if cfg.PublishListen != "" {
		if err := listen("tcp", cfg.PublishListen, s.servePublish); err != nil {
			return err
		}
	}
	if cfg.PublishUnix != "" {
		_ = os.Remove(cfg.PublishUnix)
		if err := listen("unix", cfg.PublishUnix, s.servePublish); err != nil {
			return err
		}
	}
	cfg.Logger.Info("net floor listening", "ws", cfg.Listen, "publish", cfg.PublishListen, "unix", cfg.PublishUnix)
	<-ctx.Done()
	closeAll()
	s.conns.Range(func(k, _ any) bool { _ = k.(io.Closer).Close(); return true })
	s.wg.Wait()
	return nil
}

func (s *server) accept(ln net.Listener, serve func(net.Conn)) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.cfg.Logger.Warn("accept failed", "err", err)
			}
			return
		}
		s.conns.Store(nc, struct{}{})
		s.wg.Go(func() {
			defer s.conns.Delete(nc)
			defer nc.Close()
			serve(nc)
		})
	}
}

// conn is one WebSocket connection; mu guards pending and closed.
type conn struct {
	nc      net.Conn
	mu      sync.Mutex
	pending []byte
	closed  bool
	wake    chan struct{}
	max     int
}

// enqueue appends frames under the lock and reports whether the queue was
// empty (the caller then wakes the writer once per batch).
func (c *conn) enqueue(frames ...[]byte) (wasEmpty bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	wasEmpty = len(c.pending) == 0
	for _, f := range frames {
		c.pending = append(c.pending, f...)
	}
	if len(c.pending) > c.max {
		c.closed = true
		_ = c.nc.Close() // slow consumer
		return false
	}
	return wasEmpty
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes whatever is queued, one write per wake-up.
func (c *conn) writeLoop(done <-chan struct{}) {
	var spare []byte
	for {
		select {
		case <-done:
			return
		case <-c.wake:
		}
		c.mu.Lock()
		spare, c.pending = c.pending, spare[:0]
		c.mu.Unlock()
		if len(spare) == 0 {
			continue
		}
		if _, err := c.nc.Write(spare); err != nil {
			_ = c.nc.Close()
			return
		}
		if cap(spare) > 64<<10 {
			spare = nil
		}
	}
}

func (s *server) serveWS(nc net.Conn) {
	u := ws.Upgrader{Protocol: func(p []byte) bool { return string(p) == floorproto.Subprotocol }}
	if _, err := u.Upgrade(nc); err != nil {
		return
	}
	c := &conn{nc: nc, wake: make(chan struct{}, 1), max: s.cfg.MaxPending}
	done := make(chan struct{})
	s.wg.Go(func() { c.writeLoop(done) })
	subs := map[string]string{} // id → topic
	defer func() {
		close(done)
		for id, topic := range subs {
			s.remove(topic, c, id)
		}
	}()
	br := bufio.NewReaderSize(nc, 2048)
	for {
		h, err := ws.ReadHeader(br)
		if err != nil || h.Length > maxMessage {
			return
		}
		msg := make([]byte, h.Length)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		if h.Masked {
			ws.Cipher(msg, h.Mask, 0)
		}
		if !s.onMessage(c, h.OpCode, msg, subs) {
			return
		}
	}
}

func (s *server) onMessage(c *conn, op ws.OpCode, msg []byte, subs map[string]string) bool {
	switch op {
	case ws.OpClose:
		return false
	case ws.OpPing:
		if c.enqueue(wsframe.AppendFrame(nil, wsframe.OpPong, msg, false, [4]byte{})) {
			c.signal()
		}
		return true
	case ws.OpText:
	default:
		return true
	}
	m := floorproto.Parse(msg)
	switch m.Kind {
	case floorproto.Init:
		if c.enqueue(floorproto.AckFrame) {
			c.signal()
		}
	case floorproto.Ping:
		if c.enqueue(floorproto.PongFrame) {
			c.signal()
		}
	case floorproto.Subscribe:
		subs[m.ID] = m.Topic
		s.mu.Lock()
		s.topics[m.Topic] = append(s.topics[m.Topic], subscriber{c: c, id: m.ID})
		s.mu.Unlock()
	case floorproto.Complete:
		if t, ok := subs[m.ID]; ok {
			delete(subs, m.ID)
			s.remove(t, c, m.ID)
		}
	}
	return true
}

func (s *server) remove(topic string, c *conn, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.topics[topic]
	for i := range list {
		if list[i].c == c && list[i].id == id {
			list[i] = list[len(list)-1]
			list[len(list)-1] = subscriber{}
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

type cachedFrame struct {
	id    string
	frame []byte
}

// servePublish parses pipelined PUBLISH commands; per read it fans every
// command out, then wakes each touched writer once and replies once.
func (s *server) servePublish(nc net.Conn) {
	buf := make([]byte, 0, readBuf)
	var (
		args   [][]byte
		out    []byte
		dirty  []*conn
		frames []cachedFrame
	)
	for {
		if len(buf) == cap(buf) {
			return // a command longer than the buffer
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		if err != nil {
			return
		}
		buf = buf[:len(buf)+n]
		used := 0
		out = out[:0]
		for {
			a, k, err := respw.ParseCommand(buf[used:], args, maxMessage)
			args = a
			if err != nil {
				_, _ = nc.Write(respw.AppendError(out, err.Error()))
				return
			}
			if k == 0 {
				break
			}
			used += k
			if len(args) != 3 || !strings.EqualFold(string(args[0]), "PUBLISH") {
				out = respw.AppendError(out, "only PUBLISH topic payload is supported")
				continue
			}
			var delivered int
			dirty, frames, delivered = s.fanOut(string(args[1]), args[2], dirty, frames)
			out = respw.AppendInt(out, int64(delivered))
		}
		for i, c := range dirty {
			c.signal()
			dirty[i] = nil
		}
		dirty = dirty[:0]
		buf = buf[:copy(buf, buf[used:])]
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

func (s *server) fanOut(topic string, event []byte, dirty []*conn, frames []cachedFrame) ([]*conn, []cachedFrame, int) {
	frames = frames[:0]
	s.mu.RLock()
	list := s.topics[topic]
	for _, sub := range list {
		var f []byte
		for i := range frames {
			if frames[i].id == sub.id {
				f = frames[i].frame
				break
			}
		}
		if f == nil {
			f = floorproto.AppendNext(nil, sub.id, event)
			frames = append(frames, cachedFrame{id: sub.id, frame: f})
		}
		if sub.c.enqueue(f) {
			dirty = append(dirty, sub.c)
		}
	}
	s.mu.RUnlock()
	return dirty, frames, len(list)
}
