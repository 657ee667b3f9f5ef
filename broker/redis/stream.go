package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// streamRead is one fraised_read answer: the topic's epoch ("" when it
// has none) and last offset, and the stream entries asked for, in order.
type streamRead struct {
	epoch   string
	latest  uint64
	entries []streamEntry
}

// streamEntry is one event of a topic's repair stream.
type streamEntry struct {
	off     uint64
	payload string
}

// fcallRead queues (in a pipeline) or runs fraised_read for topic: the
// position, and up to count entries from offset from on (count 0: the
// position only).
func fcallRead(ctx context.Context, c goredis.Cmdable, topic string, from, count uint64) *goredis.Cmd {
	return c.FCallRo(ctx, "fraised_read", []string{metaPrefix + topic, streamPrefix + topic}, from, count)
}

// readStream runs fraised_read for topic within commandTimeout.
func (b *Broker) readStream(topic string, from, count uint64) (streamRead, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return parseRead(fcallRead(ctx, b.rdb, topic, from, count))
}

// parseRead checks and reads fraised_read's answer {epoch, last, offset1,
// payload1, ...}. A malformed answer (another library loaded under
// fraised's name) is an error, never a panic: the receiver then
// reconnects, which loads fraised's functions again.
func parseRead(cmd *goredis.Cmd) (streamRead, error) {
	res, err := cmd.Slice()
	if err != nil {
		return streamRead{}, err
	}
	if len(res) < 2 || len(res)%2 != 0 {
		return streamRead{}, fmt.Errorf("fraised_read answered %d values, want 2 and pairs (another library replaced fraised.lua?)", len(res))
	}
	epoch, ok1 := res[0].(string)
	latest, ok2 := res[1].(int64)
	if !ok1 || !ok2 || latest < 0 {
		return streamRead{}, fmt.Errorf("fraised_read answered position %v %v, want an epoch and an offset (another library replaced fraised.lua?)", res[0], res[1])
	}
	out := streamRead{epoch: epoch, latest: uint64(latest), entries: make([]streamEntry, 0, (len(res)-2)/2)}
	for i := 2; i < len(res); i += 2 {
		off, ok1 := res[i].(int64)
		payload, ok2 := res[i+1].(string)
		if !ok1 || !ok2 || off < 1 {
			return streamRead{}, fmt.Errorf("fraised_read answered entry %v, want an offset and a payload (another library replaced fraised.lua?)", res[i])
		}
		out.entries = append(out.entries, streamEntry{off: uint64(off), payload: payload})
	}
	return out, nil
}
