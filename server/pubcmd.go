package server

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/resp"
)

// The Redis commands a publisher may send. PUBLISH (and FPUBLISH, which
// also answers the event's history position) is the one that does
// anything; the rest are what common clients (redis-py, go-redis,
// ioredis, node-redis, redis-cli) send around it: the HELLO and CLIENT
// handshake, SELECT 0, PING and ECHO health checks, INFO for ready checks,
// MULTI/EXEC/DISCARD for transactional pipelines, and QUIT.

// protoVersion is the Redis version fraised reports in HELLO and INFO: the
// protocol it speaks (RESP2 and RESP3, HELLO) is Redis 7's.
const protoVersion = "7.0.0"

// Transaction limits: a MULTI queues copies of its commands until EXEC.
const (
	// maxTxCommands bounds the commands one MULTI may queue: a client's
	// transactional pipeline of 10,000 publishes is already unusual.
	maxTxCommands = 10_000
	// maxTxBytes bounds the bytes one MULTI may queue (at least one command
	// of the largest size is always allowed): 4 MiB per publisher keeps 256
	// publishers in a transaction each under 1 GiB in total.
	maxTxBytes = 4 << 20
)

var (
	replyPong      = resp.AppendSimple(nil, "PONG")
	replyOK        = resp.AppendSimple(nil, "OK")
	replyQueued    = resp.AppendSimple(nil, "QUEUED")
	replyNull2     = []byte("$-1\r\n")
	replyNull3     = []byte("_\r\n")
	replyDraining  = resp.AppendError(nil, "ERR server is draining (shutting down): publish to another instance or retry after it restarts")
	replyExecAbort = resp.AppendError(nil, "EXECABORT Transaction discarded because of previous errors.")
	replyRateLimit = resp.AppendError(nil, "ERR rate limit exceeded: publish commands on this connection")
	replyInfo      = resp.AppendBulk(nil, []byte("# Server\r\nredis_version:"+protoVersion+"\r\nredis_mode:standalone\r\nserver_name:fraised\r\n\r\n# Persistence\r\nloading:0\r\n"))
)

// txState is a transaction being queued (MULTI until EXEC or DISCARD).
type txState struct {
	cmds    [][][]byte // copies of the queued commands
	bytes   int
	aborted bool // a command was refused while queuing: EXEC answers EXECABORT
}

// run executes one command, charging the publish rate limit once.
func (c *pubConn) run(args [][]byte) {
	g := c.srv.guard
	if lim := g.Limits.PublishesPerConn; !lim.Unlimited() && !c.bucket.Allow(lim, time.Now().UnixNano()) {
		g.rateTrips.Add(1)
		g.audit(audit.EventRateLimit, nil, audit.Record{Reason: "publish commands per connection", Remote: c.remote})
		c.refuse(replyRateLimit)
		return
	}
	name := args[0]
	if c.tx != nil && !isTxControl(name) {
		c.queue(args)
		return
	}
	c.exec(args)
}

// rejected answers a command the parser refused. A protocol error means
// the stream cannot be trusted any more (the rest of a hidden command
// would run as commands): the connection ends after the reply, as Redis
// does.
func (c *pubConn) rejected(err error) {
	c.refuse(resp.AppendError(nil, err.Error()))
	if errors.Is(err, resp.ErrProtocol) {
		c.stop = true
	}
}

// refuse answers a refused command; inside MULTI the refusal aborts the
// transaction, as in Redis.
func (c *pubConn) refuse(reply []byte) {
	if c.tx != nil {
		c.tx.aborted = true
	}
	c.reply(reply)
}

func isTxControl(name []byte) bool {
	return bytes.EqualFold(name, []byte("EXEC")) || bytes.EqualFold(name, []byte("DISCARD")) ||
		bytes.EqualFold(name, []byte("MULTI")) || bytes.EqualFold(name, []byte("QUIT"))
}

// exec executes a command now.
func (c *pubConn) exec(args [][]byte) {
	name := args[0]
	switch {
	case bytes.EqualFold(name, []byte("PUBLISH")):
		c.publishCmd(args, dispatch.ReplyRESP)
	case bytes.EqualFold(name, []byte("FPUBLISH")):
		c.publishCmd(args, dispatch.ReplyRESPPosition)
	case bytes.EqualFold(name, []byte("PING")):
		c.ping(args)
	case bytes.EqualFold(name, []byte("ECHO")):
		if len(args) != 2 {
			c.refuse(arityError(name))
			return
		}
		c.reply(resp.AppendBulk(nil, args[1]))
	case bytes.EqualFold(name, []byte("MULTI")):
		c.multi()
	case bytes.EqualFold(name, []byte("EXEC")):
		c.execTx()
	case bytes.EqualFold(name, []byte("DISCARD")):
		c.discard()
	case bytes.EqualFold(name, []byte("QUIT")):
		c.reply(replyOK)
		c.stop = true
	default:
		c.handshake(args)
	}
}

// handshake executes the connection-setup commands clients send.
func (c *pubConn) handshake(args [][]byte) {
	name := args[0]
	switch {
	case bytes.EqualFold(name, []byte("HELLO")):
		c.hello(args)
	case bytes.EqualFold(name, []byte("CLIENT")):
		c.client(args)
	case bytes.EqualFold(name, []byte("SELECT")):
		c.selectDB(args)
	case bytes.EqualFold(name, []byte("COMMAND")):
		c.command(args)
	case bytes.EqualFold(name, []byte("INFO")):
		c.reply(replyInfo)
	case bytes.EqualFold(name, []byte("UNWATCH")):
		c.reply(replyOK)
	default:
		c.refuse(appendErrorf(nil, "ERR unknown command '%.64s' (fraised accepts PUBLISH, FPUBLISH and the connection commands of Redis clients)", name))
	}
}

// checkPublish returns the error reply for an invalid PUBLISH, or nil.
func (c *pubConn) checkPublish(args [][]byte) []byte {
	if len(args) != 3 {
		return arityError(args[0])
	}
	if err := validatePublish(args[1], args[2], c.srv.opts.MaxPayload); err != nil {
		return resp.AppendError(nil, "ERR "+err.Error())
	}
	return nil
}

// publishCmd pushes an event into the ring, waiting for room; its reply,
// the number of subscriptions it was queued to (PUBLISH), or that and
// the event's position, [delivered, offset, epoch] (FPUBLISH; nulls for
// a topic without @history), comes from the dispatcher.
func (c *pubConn) publishCmd(args [][]byte, rk dispatch.ReplyKind) {
	if r := c.checkPublish(args); r != nil {
		c.refuse(r)
		return
	}
	if c.srv.draining.Load() {
		c.reply(replyDraining)
		return
	}
	if c.srv.opts.Cluster != nil {
		c.clusterPublish(args[1], args[2], rk == dispatch.ReplyRESPPosition)
		return
	}
	c.publishWait(args[1], args[2], rk)
}

func (c *pubConn) ping(args [][]byte) {
	switch len(args) {
	case 1:
		c.reply(replyPong)
	case 2:
		c.reply(resp.AppendBulk(nil, args[1]))
	default:
		c.refuse(arityError(args[0]))
	}
}

// queue queues a command of a transaction, after checking it as EXEC
// would, so that a command that would fail aborts the transaction.
func (c *pubConn) queue(args [][]byte) {
	name := args[0]
	var r []byte
	switch {
	case bytes.EqualFold(name, []byte("PUBLISH")), bytes.EqualFold(name, []byte("FPUBLISH")):
		r = c.checkPublish(args)
	case bytes.EqualFold(name, []byte("PING")):
		if len(args) > 2 {
			r = arityError(name)
		}
	case bytes.EqualFold(name, []byte("ECHO")):
		if len(args) != 2 {
			r = arityError(name)
		}
	default:
		r = appendErrorf(nil, "ERR '%.64s' is not supported inside MULTI (queue PUBLISH, FPUBLISH, PING or ECHO)", name)
	}
	size := 0
	for _, a := range args {
		size += len(a)
	}
	if r == nil && (len(c.tx.cmds) == maxTxCommands || (c.tx.bytes+size > max(maxTxBytes, c.maxBuf) && len(c.tx.cmds) > 0)) {
		r = appendErrorf(nil, "ERR transaction too large (limit %d commands, %d bytes): EXEC smaller batches", maxTxCommands, max(maxTxBytes, c.maxBuf))
	}
	if r != nil {
		c.refuse(r)
		return
	}
	c.tx.cmds = append(c.tx.cmds, copyArgs(args, size))
	c.tx.bytes += size
	c.reply(replyQueued)
}

// copyArgs copies a command's arguments into one allocation.
func copyArgs(args [][]byte, size int) [][]byte {
	data := make([]byte, 0, size)
	out := make([][]byte, len(args))
	for i, a := range args {
		start := len(data)
		data = append(data, a...)
		out[i] = data[start:len(data):len(data)]
	}
	return out
}

func (c *pubConn) multi() {
	if c.tx != nil {
		c.reply(resp.AppendError(nil, "ERR MULTI calls can not be nested"))
		return
	}
	c.tx = &txState{}
	c.reply(replyOK)
}

// execTx runs the queued commands in order; their replies form one array.
func (c *pubConn) execTx() {
	tx := c.tx
	c.tx = nil
	switch {
	case tx == nil:
		c.reply(resp.AppendError(nil, "ERR EXEC without MULTI"))
	case tx.aborted:
		c.reply(replyExecAbort)
	default:
		c.reply(appendArrayHeader(nil, len(tx.cmds)))
		for _, cmd := range tx.cmds {
			if c.stop {
				return
			}
			c.exec(cmd)
		}
	}
}

func (c *pubConn) discard() {
	if c.tx == nil {
		c.reply(resp.AppendError(nil, "ERR DISCARD without MULTI"))
		return
	}
	c.tx = nil
	c.reply(replyOK)
}

// hello answers HELLO [protover [AUTH user pass] [SETNAME name]]: it
// switches to RESP2 or RESP3 and describes the server.
func (c *pubConn) hello(args [][]byte) {
	resp3 := c.resp3
	if len(args) > 1 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil {
			c.refuse(resp.AppendError(nil, "ERR Protocol version is not an integer or out of range"))
			return
		}
		if v != 2 && v != 3 {
			c.refuse(resp.AppendError(nil, "NOPROTO unsupported protocol version"))
			return
		}
		resp3 = v == 3
	}
	name := c.name
	for i := 2; i < len(args); i++ {
		switch opt := args[i]; {
		case bytes.EqualFold(opt, []byte("AUTH")) && i+2 < len(args):
			c.refuse(resp.AppendError(nil, "ERR AUTH is not supported: fraised publishers are trusted backends (keep --publish-listen on a private address)"))
			return
		case bytes.EqualFold(opt, []byte("SETNAME")) && i+1 < len(args):
			if !validClientName(args[i+1]) {
				c.refuse(errClientName)
				return
			}
			name = string(args[i+1])
			i++
		default:
			c.refuse(appendErrorf(nil, "ERR Syntax error in HELLO option '%.64s'", opt))
			return
		}
	}
	c.resp3, c.name = resp3, name
	c.reply(c.appendHello(nil))
}

// appendHello appends HELLO's reply: a map in RESP3, a flat array of
// keys and values in RESP2, as Redis sends.
func (c *pubConn) appendHello(dst []byte) []byte {
	proto := int64(2)
	if c.resp3 {
		proto = 3
		dst = append(dst, "%7\r\n"...)
	} else {
		dst = append(dst, "*14\r\n"...)
	}
	dst = resp.AppendBulk(dst, []byte("server"))
	dst = resp.AppendBulk(dst, []byte("fraised"))
	dst = resp.AppendBulk(dst, []byte("version"))
	dst = resp.AppendBulk(dst, []byte(protoVersion))
	dst = resp.AppendBulk(dst, []byte("proto"))
	dst = resp.AppendInt(dst, proto)
	dst = resp.AppendBulk(dst, []byte("id"))
	dst = resp.AppendInt(dst, c.id)
	dst = resp.AppendBulk(dst, []byte("mode"))
	dst = resp.AppendBulk(dst, []byte("standalone"))
	dst = resp.AppendBulk(dst, []byte("role"))
	dst = resp.AppendBulk(dst, []byte("master"))
	dst = resp.AppendBulk(dst, []byte("modules"))
	return append(dst, "*0\r\n"...)
}

var errClientName = resp.AppendError(nil, "ERR Client names cannot contain spaces, newlines or special characters.")

// maxClientName bounds a CLIENT SETNAME name, kept for the connection's life.
const maxClientName = 256

func validClientName(b []byte) bool {
	if len(b) > maxClientName {
		return false
	}
	for _, ch := range b {
		if ch <= ' ' || ch > '~' {
			return false
		}
	}
	return true
}

// client answers CLIENT SETNAME, SETINFO, GETNAME and ID.
func (c *pubConn) client(args [][]byte) {
	if len(args) < 2 {
		c.refuse(arityError(args[0]))
		return
	}
	sub := args[1]
	switch {
	case bytes.EqualFold(sub, []byte("SETNAME")) && len(args) == 3:
		if !validClientName(args[2]) {
			c.refuse(errClientName)
			return
		}
		c.name = string(args[2])
		c.reply(replyOK)
	case bytes.EqualFold(sub, []byte("SETINFO")) && len(args) == 4:
		c.reply(replyOK) // LIB-NAME, LIB-VER: accepted, not kept
	case bytes.EqualFold(sub, []byte("GETNAME")) && len(args) == 2:
		switch {
		case c.name != "":
			c.reply(resp.AppendBulk(nil, []byte(c.name)))
		case c.resp3:
			c.reply(replyNull3)
		default:
			c.reply(replyNull2)
		}
	case bytes.EqualFold(sub, []byte("ID")) && len(args) == 2:
		c.reply(resp.AppendInt(nil, c.id))
	default:
		c.refuse(appendErrorf(nil, "ERR unknown subcommand or wrong number of arguments for '%.64s'. Try CLIENT HELP.", sub))
	}
}

// selectDB accepts SELECT 0: fraised has one namespace of topics, and
// Redis's pub/sub ignores the database too.
func (c *pubConn) selectDB(args [][]byte) {
	if len(args) != 2 {
		c.refuse(arityError(args[0]))
		return
	}
	n, err := strconv.ParseInt(string(args[1]), 10, 64)
	switch {
	case err != nil:
		c.refuse(resp.AppendError(nil, "ERR value is not an integer or out of range"))
	case n != 0:
		c.refuse(resp.AppendError(nil, "ERR DB index is out of range (fraised has only database 0)"))
	default:
		c.reply(replyOK)
	}
}

// command answers COMMAND, COMMAND DOCS and COMMAND INFO with no entries
// (clients that ask only use them to learn optional details) and COMMAND
// COUNT with 0.
func (c *pubConn) command(args [][]byte) {
	switch {
	case len(args) == 1 || bytes.EqualFold(args[1], []byte("INFO")):
		c.reply([]byte("*0\r\n"))
	case bytes.EqualFold(args[1], []byte("DOCS")) && c.resp3:
		c.reply([]byte("%0\r\n"))
	case bytes.EqualFold(args[1], []byte("DOCS")):
		c.reply([]byte("*0\r\n"))
	case bytes.EqualFold(args[1], []byte("COUNT")):
		c.reply(resp.AppendInt(nil, 0))
	default:
		c.refuse(appendErrorf(nil, "ERR unknown subcommand '%.64s'. Try COMMAND HELP.", args[1]))
	}
}

func arityError(name []byte) []byte {
	return appendErrorf(nil, "ERR wrong number of arguments for '%.64s' command", bytes.ToLower(name))
}

// appendErrorf appends an error reply built with fmt.
func appendErrorf(dst []byte, format string, a ...any) []byte {
	return resp.AppendError(dst, fmt.Sprintf(format, a...))
}

// appendArrayHeader appends "*<n>\r\n".
func appendArrayHeader(dst []byte, n int) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}
