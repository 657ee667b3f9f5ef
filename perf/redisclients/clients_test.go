package redisclients

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// The arguments of broker/redis's fcallPublish with its defaults.
const (
	metaPrefix    = "fraised:m:"
	streamPrefix  = "fraised:s:"
	channelPrefix = "fraised:c:"
	streamSize    = 1000                   // DefaultRepairWindow
	streamTTLms   = 60_000                 // DefaultRepairTTL
	metaTTLms     = 86_400_000             // MetaTTL
	commandTO     = 2 * time.Second        // broker/redis commandTimeout
	receivePoll   = 250 * time.Millisecond // broker/redis receivePoll
)

// payload is the event the benchmarks publish: ~150 bytes, as in
// broker/redis's benchmarks.
var payload = []byte(`{"seq":123456,"ts":1732740000.123,"body":"` + fmt.Sprintf("%0100d", 0) + `"}`)

// receipt is fraised_publish's answer.
type receipt struct {
	receivers, offset int64
	epoch             string
}

// client is what the broker needs of a Redis client.
type client interface {
	// publish runs one fraised_publish.
	publish(ctx context.Context, topic, payload []byte) (receipt, error)
	// publishBatch runs fraised_publish for each payload in one pipeline;
	// out[i] is the i-th receipt.
	publishBatch(ctx context.Context, topic []byte, payloads [][]byte, out []receipt) error
	// subscribe delivers every message of channel to fn (on the client's
	// goroutine) until ctx ends; it returns once the SUBSCRIBE was sent,
	// the caller waits for the confirmation with PUBSUB NUMSUB.
	subscribe(ctx context.Context, channel string, fn func(channel, data string)) error
	close()
}

// clients lists the clients under test, as fraised would configure them.
var clients = []struct {
	name string
	dial func(addr string) (client, error)
}{
	// go-redis as broker/redis configures it (config.go: RESP2, no retry).
	{"go-redis", dialGoRedis},
	// rueidis with its defaults: RESP3, pub/sub pushes on the shared
	// auto-pipelined connection.
	{"rueidis", func(addr string) (client, error) { return dialRueidis(addr, false) }},
	// rueidis on RESP2: pub/sub on a dedicated connection.
	{"rueidis-resp2", func(addr string) (client, error) { return dialRueidis(addr, true) }},
}

type goRedis struct{ rdb *goredis.Client }

func dialGoRedis(addr string) (client, error) {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		ContextTimeoutEnabled: true, DialTimeout: commandTO, ReadTimeout: commandTO, WriteTimeout: commandTO,
		PoolTimeout: commandTO})
	return &goRedis{rdb}, rdb.Ping(context.Background()).Err()
}

// fcall is broker/redis's fcallPublish.
func (c *goRedis) fcall(ctx context.Context, cmd goredis.Cmdable, topic, payload []byte) *goredis.Cmd {
	t := string(topic)
	keys := []string{metaPrefix + t, streamPrefix + t}
	return cmd.FCall(ctx, "fraised_publish", keys, channelPrefix+t, payload, streamSize, int64(streamTTLms), int64(metaTTLms))
}

func (c *goRedis) publish(ctx context.Context, topic, payload []byte) (receipt, error) {
	return goRedisReceipt(c.fcall(ctx, c.rdb, topic, payload))
}

// goRedisReceipt is broker/redis's receipt.
func goRedisReceipt(cmd *goredis.Cmd) (receipt, error) {
	res, err := cmd.Slice()
	if err != nil {
		return receipt{}, err
	}
	if len(res) != 3 {
		return receipt{}, fmt.Errorf("fraised_publish answered %d values, want 3", len(res))
	}
	n, _ := res[0].(int64)
	off, _ := res[1].(int64)
	epoch, _ := res[2].(string)
	return receipt{n, off, epoch}, nil
}

func (c *goRedis) publishBatch(ctx context.Context, topic []byte, payloads [][]byte, out []receipt) error {
	cmds := make([]*goredis.Cmd, len(payloads)) // as PublishBatch does
	_, err := c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, pl := range payloads {
			cmds[i] = c.fcall(ctx, p, topic, pl)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, cmd := range cmds {
		if out[i], err = goRedisReceipt(cmd); err != nil {
			return err
		}
	}
	return nil
}

func (c *goRedis) subscribe(ctx context.Context, channel string, fn func(channel, data string)) error {
	ps := c.rdb.Subscribe(ctx, channel)
	go func() {
		defer ps.Close()
		for ctx.Err() == nil { // the broker's receiver loop
			msg, err := ps.ReceiveTimeout(context.Background(), receivePoll)
			if err != nil {
				continue
			}
			if m, ok := msg.(*goredis.Message); ok {
				fn(m.Channel, m.Payload) // the broker parses the header from m.Payload
			}
		}
	}()
	return nil
}

func (c *goRedis) close() { _ = c.rdb.Close() }

type rueidisClient struct{ c rueidis.Client }

func dialRueidis(addr string, resp2 bool) (client, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, ForceSingleClient: true,
		DisableCache: true, DisableRetry: true, AlwaysRESP2: resp2, ConnWriteTimeout: commandTO,
		Dialer: net.Dialer{Timeout: commandTO}})
	if err != nil {
		return nil, err
	}
	return &rueidisClient{c}, nil
}

func (c *rueidisClient) fcall(topic, payload []byte) rueidis.Completed {
	t := string(topic)
	return c.c.B().Fcall().Function("fraised_publish").Numkeys(2).Key(metaPrefix+t, streamPrefix+t).
		Arg(channelPrefix+t, rueidis.BinaryString(payload), strconv.Itoa(streamSize),
			strconv.FormatInt(streamTTLms, 10), strconv.FormatInt(metaTTLms, 10)).Build()
}

func (c *rueidisClient) publish(ctx context.Context, topic, payload []byte) (receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTO) // go-redis' ReadTimeout, per command
	defer cancel()
	return rueidisReceipt(c.c.Do(ctx, c.fcall(topic, payload)))
}

func rueidisReceipt(r rueidis.RedisResult) (receipt, error) {
	res, err := r.ToArray()
	if err != nil {
		return receipt{}, err
	}
	if len(res) != 3 {
		return receipt{}, fmt.Errorf("fraised_publish answered %d values, want 3", len(res))
	}
	n, err1 := res[0].AsInt64()
	off, err2 := res[1].AsInt64()
	epoch, err3 := res[2].ToString()
	return receipt{n, off, epoch}, errors.Join(err1, err2, err3)
}

func (c *rueidisClient) publishBatch(ctx context.Context, topic []byte, payloads [][]byte, out []receipt) error {
	ctx, cancel := context.WithTimeout(ctx, commandTO)
	defer cancel()
	cmds := make(rueidis.Commands, len(payloads))
	for i, pl := range payloads {
		cmds[i] = c.fcall(topic, pl)
	}
	for i, r := range c.c.DoMulti(ctx, cmds...) {
		var err error
		if out[i], err = rueidisReceipt(r); err != nil {
			return err
		}
	}
	return nil
}

func (c *rueidisClient) subscribe(ctx context.Context, channel string, fn func(channel, data string)) error {
	go func() {
		_ = c.c.Receive(ctx, c.c.B().Subscribe().Channel(channel).Build(), func(m rueidis.PubSubMessage) {
			fn(m.Channel, m.Message)
		})
		// Receive returns when ctx ends but stays subscribed at Redis:
		// leaving the channel takes an explicit UNSUBSCRIBE.
		uctx, cancel := context.WithTimeout(context.Background(), commandTO)
		defer cancel()
		_ = c.c.Do(uctx, c.c.B().Unsubscribe().Channel(channel).Build()).Error()
	}()
	return nil
}

func (c *rueidisClient) close() { c.c.Close() }

// dial connects one client for tb, closed when tb ends.
func dial(tb testing.TB, s *server, d func(string) (client, error)) client {
	tb.Helper()
	c, err := d(s.Addr)
	if err != nil {
		tb.Fatalf("connect to %s: %v", s.Addr, err)
	}
	tb.Cleanup(c.close)
	return c
}
