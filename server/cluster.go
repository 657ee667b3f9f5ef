package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/resp"
)

// Cluster mode (Options.Cluster set): every publish, RESP or HTTP, goes
// to the broker, the ordering authority; this node's dispatcher is fed
// only by the broker's receiver, with the events of the topics its
// clients subscribe to (the dispatcher's interest hook tells the broker
// which). Without Options.Cluster none of this runs and the publish paths
// are the single-node ones.

// clusterPublishTimeout bounds a RESP publish waiting for the broker's
// answer (normally one round trip to Redis).
const clusterPublishTimeout = broker.AsyncTimeout

// clusterInterest returns the dispatcher's interest hook: the cluster
// broker, or nil in single-node mode.
func (s *Server) clusterInterest() dispatch.Interest {
	if s.opts.Cluster == nil {
		return nil
	}
	return s.opts.Cluster
}

// clusterFiller returns the dispatcher's history filler: the cluster
// broker when it can read a topic's history (the Redis broker), so a
// resume this node cannot serve is filled from the authority; nil on one
// node.
func (s *Server) clusterFiller() dispatch.HistoryFiller {
	f, _ := s.opts.Cluster.(dispatch.HistoryFiller)
	return f
}

// startCluster starts the broker's receiver into the dispatcher and the
// HTTP publish workers, before the listeners serve.
func (s *Server) startCluster() error {
	if s.opts.Cluster == nil {
		return nil
	}
	s.async = broker.NewAsync(s.opts.Cluster)
	if err := s.opts.Cluster.Start(broker.FeedInlet{Feed: dispatch.NewFeed(s.d)}); err != nil {
		return fmt.Errorf("cannot start the cluster broker: %w", err)
	}
	return nil
}

// stopCluster stops the HTTP publish workers and the broker, once.
func (s *Server) stopCluster() {
	if s.opts.Cluster == nil {
		return
	}
	s.clusterStop.Do(func() {
		if s.async != nil { // nil: Run failed before startCluster
			s.async.Close()
		}
		s.opts.Cluster.Stop()
	})
}

// maxClusterBatch bounds the publishes of one read sent to the broker in
// one round trip: a pipelining publisher's burst goes to Redis as one
// pipeline instead of one round trip per event, and the first reply waits
// for at most this many. The events stay in the read buffer meanwhile, so
// the batch costs no copy.
const maxClusterBatch = 256

// clusterBatch is a RESP publisher's cluster publishes waiting to be sent
// together; the events are sub-slices of the read buffer (or of a MULTI's
// copies), valid until the batch is flushed.
type clusterBatch struct {
	evs []broker.Event
	out []broker.Result
	pos []bool // FPUBLISH: answer [nodes, offset, epoch]
}

// clusterPublish queues a publish for the broker; the batch goes out when
// it is full, before any other reply, and at the end of each read, and
// every publish is answered with the number of nodes that received it
// (Redis' PUBLISH answer), with position [nodes, offset, epoch] for an
// FPUBLISH, or -ERR. Called on the publisher's reader goroutine, which
// waits for the answers: replies stay in command order.
func (c *pubConn) clusterPublish(topic, payload []byte, position bool) {
	c.cbatch.evs = append(c.cbatch.evs, broker.Event{Topic: topic, Payload: payload})
	c.cbatch.pos = append(c.cbatch.pos, position)
	if len(c.cbatch.evs) == maxClusterBatch {
		c.flushCluster()
	}
}

// flushCluster publishes the batch and answers each event in order.
func (c *pubConn) flushCluster() {
	evs := c.cbatch.evs
	if len(evs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterPublishTimeout)
	out := c.cbatch.out[:0]
	for range evs {
		out = append(out, broker.Result{})
	}
	if b, ok := c.srv.opts.Cluster.(broker.Batcher); ok {
		b.PublishBatch(ctx, evs, out)
	} else {
		for i, ev := range evs {
			out[i].Receipt, out[i].Err = c.srv.opts.Cluster.Publish(ctx, ev.Topic, ev.Payload)
		}
	}
	cancel()
	clear(evs)
	c.cbatch.evs = evs[:0]
	for i, r := range out {
		switch {
		case r.Err != nil:
			c.replyNow(resp.AppendError(nil, "ERR "+publishError(r.Err)))
		case c.cbatch.pos[i]:
			b := resp.AppendInt(append(c.reply3[:0], "*3\r\n"...), r.Receivers)
			b = resp.AppendInt(b, int64(r.Pos.Offset))
			c.reply3 = resp.AppendBulk(b, []byte(r.Pos.Epoch))
			c.replyNow(c.reply3)
		default:
			c.replyNow(resp.AppendInt(nil, r.Receivers))
		}
		out[i] = broker.Result{}
	}
	c.cbatch.out = out[:0]
	c.cbatch.pos = c.cbatch.pos[:0]
}

// publishError is the message a publisher gets for a refused cluster
// publish.
func publishError(err error) string {
	switch {
	case errors.Is(err, broker.ErrUnavailable):
		return "cluster unavailable, event not published: " + err.Error() + " (retry, or publish to another node)"
	case errors.Is(err, broker.ErrOutcomeUnknown):
		return "cluster publish outcome unknown: " + err.Error() + " (publishing it again may deliver it twice; check Redis' health)"
	}
	return "event not published: " + err.Error()
}

// publishStatus is the HTTP status of a refused cluster publish: 504
// when Redis never answered (the event may have been published), else
// 503 (it was not; retry).
func publishStatus(err error) int {
	if errors.Is(err, broker.ErrOutcomeUnknown) {
		return http.StatusGatewayTimeout
	}
	return http.StatusServiceUnavailable
}

// clusterHTTP is an HTTP connection's publish waiting for the broker: the
// event loop hands it to an Async worker and leaves the request unread;
// the worker stores the answer and wakes the loop, which serves the same
// request again and this time answers it.
type clusterHTTP struct {
	state atomic.Int32 // chIdle, chPending, chDone
	rc    broker.Receipt
	err   error
}

const (
	chIdle int32 = iota
	chPending
	chDone
)

// clusterPublish serves POST /publish/{topic} in cluster mode; false: the
// answer is not there yet (the request stays buffered). Called on the
// event loop.
func (c *httpConn) clusterPublish(topic string, body []byte) bool {
	h := c.cpub
	if h == nil {
		h = &clusterHTTP{}
		c.cpub = h
	}
	switch h.state.Load() {
	case chPending:
		return false
	case chDone:
		rc, err := h.rc, h.err
		h.rc, h.err = broker.Receipt{}, nil
		h.state.Store(chIdle)
		if err != nil {
			return c.respond(publishStatus(err), publishError(err)+"\n")
		}
		c.send(appendClusterReceipt(nil, rc, c.edge.closeAfter))
		return true
	}
	h.state.Store(chPending)
	gc := c.gc
	ok := c.srv.async.Go([]byte(topic), body, func(rc broker.Receipt, err error) {
		h.rc, h.err = rc, err
		h.state.Store(chDone)
		_ = gc.Wake(nil)
	})
	if !ok {
		h.state.Store(chIdle)
		return c.respond(http.StatusServiceUnavailable, publishError(broker.ErrBusy)+"\n")
	}
	// The request arrived whole: the broker's time (at most AsyncTimeout)
	// is not the client's, so its read deadline starts after it.
	c.edge.setDeadline(deadlineAt(time.Now().UnixNano()+int64(broker.AsyncTimeout+c.srv.opts.HTTPReadTimeout), true))
	return false
}

// appendClusterReceipt appends the 200 answer to a cluster publish:
// {"nodes":n,"offset":k,"epoch":"E"}, n being the nodes that received the
// event.
func appendClusterReceipt(dst []byte, rc broker.Receipt, last bool) []byte {
	var body []byte
	body = append(body, `{"nodes":`...)
	body = strconv.AppendInt(body, rc.Receivers, 10)
	body = append(body, `,"offset":`...)
	body = strconv.AppendUint(body, rc.Pos.Offset, 10)
	body = append(body, `,"epoch":"`...)
	body = append(body, rc.Pos.Epoch...) // [0-9A-Za-z]: no escaping
	body = append(body, `"}`...)
	return appendHTTP(dst, http.StatusOK, jsonHeader, body, last)
}

// jsonHeader is the header of a JSON answer built by the server itself.
var jsonHeader = [][2]string{{"Content-Type", "application/json"}}
