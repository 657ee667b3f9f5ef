package redis

import (
	"context"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fraised/fraised/broker"
)

// markPrefix is the key prefix of an event source's marks (a hash: part
// -> last seq published), written by fraised_publish_once.
const markPrefix = "fraised:src:"

var _ broker.OncePublisher = (*Broker)(nil)

// PublishOnce runs fraised_publish_once: the event is published as
// Publish would, unless o.Seq is at or below the seq recorded for o's
// Stream and Part (dup true: it was published before, nothing is done),
// and the seq is recorded in the same call. Errors as Publish's. Safe
// for concurrent use.
func (b *Broker) PublishOnce(ctx context.Context, topic, payload []byte, o broker.Origin) (broker.Receipt, bool, error) {
	if o.Seq < 0 {
		return broker.Receipt{}, false, fmt.Errorf("publish once: origin seq %d is negative (BUG in the source)", o.Seq)
	}
	var rc broker.Receipt
	var dup bool
	err := b.call(ctx, func() (err error) {
		rc, dup, err = b.publishOnce(ctx, topic, payload, o)
		return err
	})
	return rc, dup, err
}

func (b *Broker) publishOnce(ctx context.Context, topic, payload []byte, o broker.Origin) (broker.Receipt, bool, error) {
	t := string(topic)
	keys := []string{metaPrefix + t, streamPrefix + t, markPrefix + o.Stream}
	size, ttl := b.streamOf(topic)
	cmd := b.rdb.FCall(ctx, "fraised_publish_once", keys, channelPrefix+t, payload,
		size, ttl.Milliseconds(), max(MetaTTL, 2*ttl).Milliseconds(), o.Part, strconv.FormatInt(o.Seq, 10))
	return receiptOnce(cmd)
}

// receiptOnce reads fraised_publish_once's answer {receivers, offset,
// epoch, published}.
func receiptOnce(cmd *goredis.Cmd) (broker.Receipt, bool, error) {
	res, err := cmd.Slice()
	if err != nil {
		return broker.Receipt{}, false, err
	}
	if len(res) != 4 {
		return broker.Receipt{}, false, fmt.Errorf("fraised_publish_once answered %d values, want 4 (an older fraised.lua?)", len(res))
	}
	n, _ := res[0].(int64)
	off, _ := res[1].(int64)
	epoch, _ := res[2].(string)
	published, _ := res[3].(int64)
	return broker.Receipt{Receivers: n, Pos: broker.Position{Offset: uint64(off), Epoch: epoch}}, published == 0, nil
}
