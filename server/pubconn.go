package server

import (
	"bytes"
	"fmt"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/resp"
)

// pubConn is a Redis-protocol publisher connection (TCP or Unix socket).
// It lives on its gnet event loop.
type pubConn struct {
	publisher
	box    outbox
	parser resp.Parser
	srv    *Server
	bucket ratelimit.Bucket
	quit   bool
	remote string
}

var (
	replyPong = resp.AppendSimple(nil, "PONG")
	replyOK   = resp.AppendSimple(nil, "OK")
)

func newPubConn(s *Server, gc gnet.Conn) *pubConn {
	p := &pubConn{srv: s}
	p.box.fd = gc.Fd()
	if a := gc.RemoteAddr(); a != nil {
		p.remote = a.String()
	}
	p.publisher = publisher{out: &p.box, gc: gc, d: s.d, w: s.w}
	p.parser.MaxBulk = s.opts.MaxPayload
	return p
}

// onTraffic parses and runs every complete command in the inbound buffer.
// A command the ring cannot take yet stays unconsumed; the dispatcher
// wakes the connection when there is room.
func (p *pubConn) onTraffic(gc gnet.Conn) gnet.Action {
	buf, _ := gc.Peek(-1)
	off := 0
	for off < len(buf) && !p.quit {
		args, n, err := p.parser.Next(buf[off:])
		if n == 0 && err == nil {
			break
		}
		if err != nil {
			if !p.reply(resp.AppendError(nil, err.Error())) {
				break
			}
		} else if args != nil && !p.run(args) {
			break
		}
		off += n
		p.parser.Commit()
	}
	discard(gc, off)
	if off > 0 {
		p.d.handOff()
	}
	if p.quit && p.inflight.Load() == 0 {
		return gnet.Close
	}
	return gnet.None
}

// run executes one command; false means it must be retried later.
func (p *pubConn) run(args [][]byte) bool {
	name := args[0]
	g := p.srv.guard
	if lim := g.Limits.PublishesPerConn; !lim.Unlimited() && !p.bucket.Allow(lim, time.Now().UnixNano()) {
		g.rateTrips.Add(1)
		g.audit(audit.EventRateLimit, nil, audit.Record{Reason: "publish commands per connection", Remote: p.remote})
		return p.reply(resp.AppendError(nil, "ERR rate limit exceeded: publish commands on this connection"))
	}
	switch {
	case bytes.EqualFold(name, []byte("PUBLISH")):
		return p.runPublish(args)
	case bytes.EqualFold(name, []byte("PING")):
		if len(args) > 1 {
			return p.reply(resp.AppendBulk(nil, args[1]))
		}
		return p.reply(replyPong)
	case bytes.EqualFold(name, []byte("ECHO")) && len(args) == 2:
		return p.reply(resp.AppendBulk(nil, args[1]))
	case bytes.EqualFold(name, []byte("QUIT")):
		if p.reply(replyOK) {
			p.quit = true
			return true
		}
		return false
	}
	return p.reply(resp.AppendError(nil, fmt.Sprintf("ERR unknown command '%.64s'", name)))
}

func (p *pubConn) runPublish(args [][]byte) bool {
	if len(args) != 3 {
		return p.reply(resp.AppendError(nil, "ERR wrong number of arguments for 'publish' command"))
	}
	if err := validatePublish(args[1], args[2], p.srv.opts.MaxPayload); err != nil {
		return p.reply(resp.AppendError(nil, "ERR "+err.Error()))
	}
	return p.publish(args[1], args[2], replyRESP)
}

// onClose releases the connection's output.
func (p *pubConn) onClose() {
	p.box.close(p.w)
}
